package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// Quiz is one player's session: the whole state of the bot for that player.
// It is stored as JSON inside the session envelope and validated on every
// load and save. A running quiz is a conversation (package conversation)
// in Conv, whose one step, Asking, holds the question being asked and the
// score and answers so far; each question has a time limit that fires even
// if the player never writes again, after a restart, on any replica.
//
// Version 2: version 1 kept the running quiz in fields of its own (active,
// question, and score and answers while active); a migration step moves it
// into Conv.
type Quiz struct {
	// Conv is the running quiz, if any.
	Conv conversation.State `json:"conv"`
	// Score and Answers are those of the last finished quiz.
	Score   int      `json:"score" validate:"gte=0,lte=50"`
	Answers []string `json:"answers" validate:"max=50"`
	// Best is the best score of any finished quiz.
	Best int `json:"best" validate:"gte=0,lte=50"`
	// Chat is the Telegram chat of the player's last message, where the
	// message of a time limit goes (0 in the terminal).
	Chat int64 `json:"chat,omitempty"`
}

// Asking is the step of a running quiz: the index of the question being
// asked (0 = first), and the score and the options chosen so far.
type Asking struct {
	Question int      `json:"question" validate:"gte=0,lte=50"`
	Score    int      `json:"score" validate:"gte=0,lte=50"`
	Answers  []string `json:"answers" validate:"max=50"`
}

// quizV1 moves a version 1 session's running quiz into the conversation.
var quizV1 = migrate.Raw(1, func(doc map[string]any) error {
	if doc["active"] == true {
		doc["conv"] = map[string]any{"frames": []any{map[string]any{
			"flow": flowName, "step": "Asking",
			"data": map[string]any{"question": doc["question"], "score": doc["score"], "answers": doc["answers"]},
		}}}
		doc["score"], doc["answers"] = 0, []any{}
	}
	delete(doc, "active")
	delete(doc, "question")
	return nil
})

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

// flowName names the quiz's conversation in the stored state.
const flowName = "quiz"

// message is one update: its text, its Telegram chat (0 in the terminal),
// and where the reply goes.
type message struct {
	text  string
	chat  int64
	reply *string
}

type (
	quizFlow = conversation.Flow[Quiz, message, Asking]
	turn     = conversation.Turn[Quiz, message, Asking]
)

// announce delivers the message of a time limit to the player of key.
type announce func(ctx context.Context, key string, chat int64, text string) error

// newFlow returns the quiz: global commands, the Asking step, its time
// limit (0: none) and the end of a quiz. Handlers change only the session
// (they may run again on a conflict); replies go out through say.
func newFlow(m *session.Manager[Quiz], st store.Store, limit time.Duration, now func() time.Time, tell announce) (*quizFlow, error) {
	f, err := conversation.New[Quiz, message, Asking](conversation.Config[Quiz]{
		Name: flowName, Manager: m, Store: st, Now: now, MaxHistory: -1,
		State: func(q *Quiz) *conversation.State { return &q.Conv },
	})
	if err != nil {
		return nil, err
	}
	// say sends text to the player: as the reply to the update, or, in a
	// time limit's handler, through tell.
	say := func(t *turn, text string) {
		if t.TimedOut() {
			key, chat := t.Key(), t.Session().Chat
			t.Do(func(ctx context.Context) error { return tell(ctx, key, chat, text) })
			return
		}
		u, _ := t.Update()
		t.Do(func(context.Context) error { *u.reply = text; return nil })
	}
	f.Global(func(t *turn) (conversation.Next, bool, error) {
		u, _ := t.Update()
		q := t.Session()
		text := strings.TrimSpace(u.text)
		cmd := command(text)
		switch cmd {
		case "/start":
			say(t, "Hello! I am a quiz bot.\n"+help())
			return conversation.Next{}, true, nil
		case "/help":
			say(t, help())
			return conversation.Next{}, true, nil
		case "/quiz":
			q.Chat = u.chat
			say(t, ask(Asking{}))
			return conversation.Goto(Asking{}), true, nil
		case "/reset":
			*q = Quiz{Chat: q.Chat, Conv: conversation.State{LastUpdate: q.Conv.LastUpdate}}
			say(t, "Forgotten. Send /quiz to start again.")
			return t.Cancel(), true, nil
		case "/score":
			if t.Step() != "" {
				return conversation.Next{}, false, nil // the step knows the running score
			}
			say(t, score(q))
			return conversation.Next{}, true, nil
		}
		if strings.HasPrefix(cmd, "/") {
			say(t, "Unknown command "+text+".\n"+help())
			return conversation.Next{}, true, nil
		}
		if t.Step() == "" {
			say(t, "No quiz is running. Send /quiz to start one.")
			return conversation.Next{}, true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(f, func(t *turn, d *Asking) (conversation.Next, error) {
		u, _ := t.Update()
		text := strings.TrimSpace(u.text)
		if u.chat != 0 {
			t.Session().Chat = u.chat
		}
		if command(text) == "/score" {
			say(t, fmt.Sprintf("Score: %d of %d answered, at question %d/%d. Best: %d.",
				d.Score, len(d.Answers), d.Question+1, len(questions), t.Session().Best))
			return t.Stay(), nil
		}
		qu := questions[d.Question]
		i, ok := choice(qu, text)
		if !ok {
			say(t, fmt.Sprintf("Please answer with a number from 1 to %d or the text of an option.\n%s", len(qu.Options), ask(*d)))
			return t.Stay(), nil
		}
		var b strings.Builder
		if i == qu.Right {
			d.Score++
			b.WriteString("Right!")
		} else {
			fmt.Fprintf(&b, "Wrong: it was %s.", qu.Options[qu.Right])
		}
		d.Answers = append(d.Answers, qu.Options[i])
		return next(t, d, &b, say)
	})
	if limit > 0 {
		conversation.OnTimeout(f, limit, func(t *turn, d *Asking) (conversation.Next, error) {
			qu := questions[d.Question]
			var b strings.Builder
			fmt.Fprintf(&b, "Time's up: it was %s.", qu.Options[qu.Right])
			d.Answers = append(d.Answers, "")
			return next(t, d, &b, say)
		})
	}
	f.OnEnd(func(t *turn, r Asking) error {
		q := t.Session()
		q.Score, q.Answers = r.Score, r.Answers
		q.Best = max(q.Best, r.Score)
		return nil
	})
	return f, nil
}

// next goes on to the next question, or ends the quiz after the last,
// saying b and what comes next.
func next(t *turn, d *Asking, b *strings.Builder, say func(*turn, string)) (conversation.Next, error) {
	d.Question++
	if d.Question < len(questions) {
		b.WriteString("\n")
		b.WriteString(ask(*d))
		say(t, b.String())
		return conversation.Goto(*d), nil
	}
	fmt.Fprintf(b, "\nQuiz over: %d of %d right.", d.Score, len(questions))
	if d.Score > t.Session().Best {
		b.WriteString(" A new best score!")
	}
	b.WriteString(" Send /quiz to play again.")
	say(t, b.String())
	return t.End(*d), nil
}

// command returns text lowered, without a bot's name: "/quiz@MyQuizBot"
// in a group chat is "/quiz".
func command(text string) string {
	cmd := strings.ToLower(text)
	if i := strings.IndexByte(cmd, '@'); strings.HasPrefix(cmd, "/") && i > 0 {
		cmd = cmd[:i]
	}
	return cmd
}

// ask returns the current question with its numbered options.
func ask(q Asking) string {
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

// score answers /score when no quiz runs.
func score(q *Quiz) string {
	if len(q.Answers) == 0 {
		return fmt.Sprintf("No quiz played yet. Best: %d. Send /quiz to start.", q.Best)
	}
	return fmt.Sprintf("Last quiz: %d of %d right. Best: %d.", q.Score, len(q.Answers), q.Best)
}
