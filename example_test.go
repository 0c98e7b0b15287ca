package session_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// Prefs is a user's preferences, checked on every load and save.
type Prefs struct {
	Theme    string `json:"theme" validate:"oneof=light dark"`
	Language string `json:"language" validate:"required,bcp47_language_tag"`
}

func Example() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()

	m, err := session.New(session.Config[Prefs]{
		Store:     st,
		Namespace: "prefs",
		TTL:       30 * 24 * time.Hour,
		Initial:   func() Prefs { return Prefs{Theme: "light", Language: "en"} },
	})
	if err != nil {
		panic(err)
	}

	s, _ := m.Load(ctx, "user-42") // a new session: the Initial value
	fmt.Println(s.IsNew(), s.Data.Theme)

	s.Data.Theme = "dark"
	if err := m.Save(ctx, s); err != nil {
		panic(err)
	}

	// The stored value: the schema version, the identities of the last
	// writes (random; masked here so the output is stable) and the data.
	raw, _ := st.Get(ctx, "prefs:user-42")
	fmt.Println(regexp.MustCompile(`"writes":\[[^]]*\]`).ReplaceAllString(string(raw), `"writes":[…]`))

	s.Data.Theme = "purple"
	err = m.Save(ctx, s)
	fmt.Println(errors.Is(err, session.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true light
	// {"typedsession":1,"writes":[…],"data":{"theme":"dark","language":"en"}}
	// true
	// session: save "user-42": invalid: Prefs.Theme: failed "oneof=light dark" (value "purple")
}
