package session_test

import (
	"fmt"
	"time"

	"github.com/typedsession/session"
)

func ExampleExpiring() {
	type Login struct {
		Code session.Expiring[string] `json:"code"`
	}
	var l Login
	l.Code.Set("493817", 5*time.Minute)
	code, ok := l.Code.Get()
	fmt.Println(code, ok)

	l.Code.Set("120934", time.Nanosecond)
	time.Sleep(time.Millisecond)
	_, ok = l.Code.Get()
	fmt.Println(ok)
	// Output:
	// 493817 true
	// false
}
