package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Quiz is one player's session: the whole state of the bot for that player.
// It is stored as JSON inside the session envelope and validated on every
// load and save.
type Quiz struct {
	// Active reports that a quiz is running.
	Active bool `json:"active"`
	// Question is the index of the question being asked (0 = first).
	Question int `json:"question" validate:"gte=0,lte=50"`
	// Score counts the right answers of the running (or last) quiz.
	Score int `json:"score" validate:"gte=0,lte=50"`
	// Answers holds the options chosen so far, in order.
	Answers []string `json:"answers" validate:"max=50"`
	// Best is the best score of any finished quiz.
	Best int `json:"best" validate:"gte=0,lte=50"`
}

// question is one built-in question; Right is the index of the right option.
type question struct {
	Text    string
	Options []string
	Right   int
}

var questions = []question{
	{"What is the capital of France?", []string{"Berlin", "Madrid", "Paris", "Rome"}, 2},
	{"How many continents are there?", []string{"Five", "Six", "Seven", "Eight"}, 2},
	{"Which planet is known as the Red Planet?", []string{"Venus", "Mars", "Jupiter", "Saturn"}, 1},
	{"Which gas do plants take from the air to make sugar?", []string{"Oxygen", "Nitrogen", "Carbon dioxide", "Helium"}, 2},
	{"Who wrote \"Romeo and Juliet\"?", []string{"Charles Dickens", "William Shakespeare", "Jane Austen", "Mark Twain"}, 1},
	{"What is the chemical symbol for gold?", []string{"Ag", "Au", "Gd", "Go"}, 1},
	{"Which is the largest ocean?", []string{"Atlantic", "Indian", "Arctic", "Pacific"}, 3},
	{"Who was the first person to walk on the Moon?", []string{"Yuri Gagarin", "Neil Armstrong", "Buzz Aldrin", "John Glenn"}, 1},
	{"Which programming language was announced by Google in 2009?", []string{"Rust", "Go", "Kotlin", "Swift"}, 1},
	{"How many bits are in a byte?", []string{"Four", "Eight", "Sixteen", "Thirty-two"}, 1},
}

const helpText = `Commands:
/quiz  start a new quiz (` + "%d" + ` questions)
/score show your score
/reset forget your quiz and your best score
/debug show your session as stored: version, size, TTL left
/help  this text
While a quiz runs, answer with the number of an option or its text.`

func help() string { return fmt.Sprintf(helpText, len(questions)) }

// handle is the whole bot: it applies one message to q and returns the
// reply. It is deterministic (the same q and text give the same result), so
// it may run again when the session manager retries after a conflict, and
// it changes q only through the pointer it is given.
func handle(q *Quiz, text string) string {
	text = strings.TrimSpace(text)
	cmd := strings.ToLower(text)
	if i := strings.IndexByte(cmd, '@'); strings.HasPrefix(cmd, "/") && i > 0 {
		cmd = cmd[:i] // "/quiz@MyQuizBot" in a group chat
	}
	switch cmd {
	case "/start":
		return "Hello! I am a quiz bot.\n" + help()
	case "/help":
		return help()
	case "/quiz":
		*q = Quiz{Active: true, Best: q.Best}
		return ask(q)
	case "/score":
		return score(q)
	case "/reset":
		*q = Quiz{}
		return "Forgotten. Send /quiz to start again."
	}
	if strings.HasPrefix(cmd, "/") {
		return "Unknown command " + text + ".\n" + help()
	}
	if !q.Active {
		return "No quiz is running. Send /quiz to start one."
	}
	return answer(q, text)
}

// ask returns the current question with its numbered options.
func ask(q *Quiz) string {
	qu := questions[q.Question]
	var b strings.Builder
	fmt.Fprintf(&b, "Question %d/%d: %s", q.Question+1, len(questions), qu.Text)
	for i, o := range qu.Options {
		fmt.Fprintf(&b, "\n%d. %s", i+1, o)
	}
	return b.String()
}

// choice returns the option that text picks: its number or its text.
func choice(qu question, text string) (int, bool) {
	if n, err := strconv.Atoi(text); err == nil && n >= 1 && n <= len(qu.Options) {
		return n - 1, true
	}
	for i, o := range qu.Options {
		if strings.EqualFold(o, text) {
			return i, true
		}
	}
	return 0, false
}

func answer(q *Quiz, text string) string {
	qu := questions[q.Question]
	i, ok := choice(qu, text)
	if !ok {
		return fmt.Sprintf("Please answer with a number from 1 to %d or the text of an option.\n%s", len(qu.Options), ask(q))
	}
	var b strings.Builder
	if i == qu.Right {
		q.Score++
		b.WriteString("Right!")
	} else {
		fmt.Fprintf(&b, "Wrong: it was %s.", qu.Options[qu.Right])
	}
	q.Answers = append(q.Answers, qu.Options[i])
	q.Question++
	if q.Question < len(questions) {
		b.WriteString("\n")
		b.WriteString(ask(q))
		return b.String()
	}
	q.Active = false
	q.Question = 0
	fmt.Fprintf(&b, "\nQuiz over: %d of %d right.", q.Score, len(questions))
	if q.Score > q.Best {
		q.Best = q.Score
		b.WriteString(" A new best score!")
	}
	b.WriteString(" Send /quiz to play again.")
	return b.String()
}

func score(q *Quiz) string {
	if q.Active {
		return fmt.Sprintf("Score: %d of %d answered, at question %d/%d. Best: %d.",
			q.Score, len(q.Answers), q.Question+1, len(questions), q.Best)
	}
	if len(q.Answers) == 0 {
		return fmt.Sprintf("No quiz played yet. Best: %d. Send /quiz to start.", q.Best)
	}
	return fmt.Sprintf("Last quiz: %d of %d right. Best: %d.", q.Score, len(q.Answers), q.Best)
}
