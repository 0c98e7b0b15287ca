package middleware_test

import (
	"context"
	"fmt"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// FrameworkContext is the handler argument of some other framework, which
// carries its own context.Context (as echo.Context, gin.Context and
// fiber.Ctx do, one way or another).
type FrameworkContext struct {
	Ctx    context.Context
	UserID string
}

// FrameworkHandler is that framework's handler shape.
type FrameworkHandler func(c *FrameworkContext) error

// Example_adapter adapts the middleware to a framework whose handlers do
// not take a context.Context: Wrap runs the key function, the lock, the
// load and the commit, and the adapter only moves the context in and out.
func Example_adapter() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	counters, _ := session.New(session.Config[Counter]{Store: st, Namespace: "counter"})

	mw := middleware.New(counters, func(_ context.Context, c *FrameworkContext) (string, error) {
		return c.UserID, nil
	}, middleware.Options{})
	adapt := func(next FrameworkHandler) FrameworkHandler {
		h := mw.Wrap(func(ctx context.Context, c *FrameworkContext) error {
			c.Ctx = ctx // the context that session.From reads
			return next(c)
		})
		return func(c *FrameworkContext) error { return h(c.Ctx, c) }
	}

	handler := adapt(func(c *FrameworkContext) error {
		s, err := session.From[Counter](c.Ctx)
		if err != nil {
			return err
		}
		s.Data.Messages++
		fmt.Printf("%s: %d\n", c.UserID, s.Data.Messages)
		return nil
	})
	for range 2 {
		handler(&FrameworkContext{Ctx: context.Background(), UserID: "ann"})
	}
	// Output:
	// ann: 1
	// ann: 2
}
