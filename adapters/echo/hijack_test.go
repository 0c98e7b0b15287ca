package echosession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	session "github.com/typedsession/session"
	echosession "github.com/typedsession/session/adapters/echo"
	"github.com/typedsession/session/internal/hijacktest"
	"github.com/typedsession/session/middleware"
)

// TestHijack (issue 23): a WebSocket-style upgrade through Echo's
// c.Response().Hijack() commits the session at the hijack and releases
// the user's lock: a plain request with the same cookie is answered while
// the connection is open. (Echo's Response.Hijack goes through
// http.ResponseController to middleware.HTTP's writer, which commits.)
func TestHijack(t *testing.T) {
	m, _ := newManager(t)
	e := echo.New()
	e.Use(echosession.Middleware(m, middleware.HTTPOptions{Insecure: true}))
	count := func(c echo.Context, add int) (*session.Session[visits], error) {
		s, err := echosession.From[visits](c)
		if err == nil {
			s.Data.N += add
		}
		return s, err
	}
	e.GET("/inc", func(c echo.Context) error {
		s, err := count(c, 1)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprint(s.Data.N))
	})
	e.GET("/count", func(c echo.Context) error {
		s, err := count(c, 0)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprint(s.Data.N))
	})
	e.GET("/ws", func(c echo.Context) error {
		s, err := count(c, 1)
		if err != nil {
			return err
		}
		conn, brw, err := c.Response().Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n")
		c.Response().Header().Write(brw)
		brw.WriteString("\r\n")
		brw.Flush()
		s.Data.N++ // after the hijack: not saved
		io.Copy(io.Discard, brw)
		return nil
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	hijacktest.Run(t, srv.URL)
}
