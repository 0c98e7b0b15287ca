package conversation

import (
	"encoding/json"
	"slices"
	"time"
)

// State is a conversation's stored state: put a field of this type in your
// session type T and give [Config.State] the way to it. Its zero value is
// "no conversation". Its fields are exported so that codecs can store
// them; change them only through a [Flow] (Handle, Start, Move, Cancel).
//
// With the JSON codec it is stored as readable JSON inside the session's
// envelope, for instance:
//
//	{"frames":[{"flow":"signup","step":"AskAge","data":{"name":"Ann"},
//	  "history":[{"step":"AskName","data":{}}],"started":"2026-12-07T09:00:00Z",
//	  "step_deadline":"2026-12-07T09:05:00Z"}],
//	 "deadline":"2026-12-07T09:05:00Z","last_update":913447,"recent":[913446,913447]}
type State struct {
	// Frames is the stack of running flows: Frames[0] is the root flow,
	// the last one the flow whose step is current (a sub-conversation
	// above its parent). Empty: no conversation.
	Frames []Frame `json:"frames,omitempty"`
	// Deadline is the earliest deadline of the conversation (the frames'
	// conversation deadlines and the current step's deadline), in UTC with
	// millisecond precision; the zero time means none. The due-index
	// lists the key at this instant.
	Deadline time.Time `json:"deadline,omitzero"`
	// LastUpdate is the highest ID of an update applied (Telegram's
	// update_id). Zero: none yet.
	LastUpdate int64 `json:"last_update,omitempty"`
	// Recent holds the IDs of the last updates applied, ascending, at
	// most RecentUpdates of them: an update whose ID is in it is a
	// duplicate and is not applied again, and so is one older than all
	// of them when it is full (too old to tell). Updates that arrive out
	// of order (a bot's workers take a chat's updates in any order) are
	// applied as long as they are newer than the window's oldest.
	Recent []int64 `json:"recent,omitempty"`
}

// RecentUpdates is how many update IDs State.Recent keeps.
const RecentUpdates = 16

// seen reports whether the update id was applied already (or is too old
// to tell).
func (s *State) seen(id int64) bool {
	return slices.Contains(s.Recent, id) || (len(s.Recent) >= RecentUpdates && id < s.Recent[0])
}

// record notes the update id as applied.
func (s *State) record(id int64) {
	i, _ := slices.BinarySearch(s.Recent, id)
	s.Recent = slices.Insert(slices.Clip(s.Recent), i, id)
	if over := len(s.Recent) - RecentUpdates; over > 0 {
		s.Recent = slices.Clone(s.Recent[over:])
	}
	s.LastUpdate = max(s.LastUpdate, id)
}

// Frame is one running flow of a [State]: its current step and that
// step's data, and the steps it came from.
type Frame struct {
	// Flow is the flow's Config.Name.
	Flow string `json:"flow"`
	// Step is the current step's name: the name of its Go type.
	Step string `json:"step"`
	// Data is the current step's data, encoded as JSON.
	Data json.RawMessage `json:"data,omitempty"`
	// History holds the steps left with a Goto, oldest first, at most
	// Config.MaxHistory of them: what Back returns to.
	History []Past `json:"history,omitempty"`
	// Started is when the flow began (UTC).
	Started time.Time `json:"started,omitzero"`
	// Deadline is when the flow's own Config.Timeout runs out (UTC,
	// milliseconds); zero: no timeout.
	Deadline time.Time `json:"deadline,omitzero"`
	// StepDeadline is when the current step's timeout runs out (UTC,
	// milliseconds); zero: no timeout. Only the last frame's counts: a
	// parent's step waits without a clock while its sub-conversation
	// runs, and gets a new one when it resumes.
	StepDeadline time.Time `json:"step_deadline,omitzero"`
}

// Past is a step left with a Goto: its name and its data as it was left.
type Past struct {
	Step string          `json:"step"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Active reports whether a conversation is running.
func (s *State) Active() bool { return len(s.Frames) > 0 }

// top returns the current frame, or nil.
func (s *State) top() *Frame {
	if len(s.Frames) == 0 {
		return nil
	}
	return &s.Frames[len(s.Frames)-1]
}

// recompute sets Deadline from the frames.
func (s *State) recompute() { s.Deadline = s.due() }

// due is the earliest deadline of s's frames and of its top frame's step,
// or the zero time: what recompute sets Deadline to, without setting it.
func (s *State) due() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for i := range s.Frames {
		earlier(s.Frames[i].Deadline)
	}
	if f := s.top(); f != nil {
		earlier(f.StepDeadline)
	}
	return d
}

// at returns now+d in UTC at millisecond precision, or the zero time when
// d is not positive.
func at(now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return ms(now.Add(d))
}

// ms rounds t down to the millisecond, in UTC: the precision of stored
// deadlines and of the index.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
