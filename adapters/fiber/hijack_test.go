package fibersession_test

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"

	session "github.com/typedsession/session"
	fibersession "github.com/typedsession/session/adapters/fiber"
	"github.com/typedsession/session/internal/hijacktest"
	"github.com/typedsession/session/middleware"
)

// TestHijack (issue 23): fasthttp runs a hijacked connection's handler
// (c.Context().Hijack, what gofiber/contrib/websocket uses) after the
// Fiber handlers returned, so after the commit: the user's lock is free
// while the connection lives, and a plain request with the same cookie is
// answered meanwhile. The hijack handler finds no session in the request's
// context.
func TestHijack(t *testing.T) {
	m, _ := newManager(t)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(fibersession.Middleware(m, middleware.HTTPOptions{Insecure: true}))
	count := func(c *fiber.Ctx, add int) error {
		s, err := fibersession.From[visits](c)
		if err != nil {
			return err
		}
		s.Data.N += add
		return c.SendString(fmt.Sprint(s.Data.N))
	}
	app.Get("/inc", func(c *fiber.Ctx) error { return count(c, 1) })
	app.Get("/count", func(c *fiber.Ctx) error { return count(c, 0) })
	after := make(chan error, 1)
	app.Get("/ws", func(c *fiber.Ctx) error {
		s, err := fibersession.From[visits](c)
		if err != nil {
			return err
		}
		s.Data.N++
		c.Status(fiber.StatusSwitchingProtocols)
		c.Set("Connection", "Upgrade")
		c.Set("Upgrade", "test")
		ctx := c.UserContext() // c itself is Fiber's again once the handler returned
		c.Context().Hijack(func(conn net.Conn) {
			_, err := session.From[visits](ctx)
			after <- err
			s.Data.N++ // after the commit: not saved
			io.Copy(io.Discard, conn)
		})
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	hijacktest.Run(t, "http://"+ln.Addr().String())
	if err := <-after; err == nil {
		t.Error("fibersession.From in the hijack handler found a session; want none (the commit came first)")
	}
}
