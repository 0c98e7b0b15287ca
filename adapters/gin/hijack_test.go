package ginsession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	ginsession "github.com/typedsession/session/adapters/gin"
	"github.com/typedsession/session/internal/hijacktest"
	"github.com/typedsession/session/middleware"
)

// TestHijack (issue 23): a WebSocket-style upgrade through Gin's
// c.Writer.Hijack() commits the session at the hijack and releases the
// user's lock: a plain request with the same cookie is answered while the
// connection is open.
func TestHijack(t *testing.T) {
	m, _ := newManager(t)
	r := gin.New()
	r.Use(ginsession.Middleware(m, middleware.HTTPOptions{Insecure: true}))
	count := func(c *gin.Context, add int) {
		s, err := ginsession.From[visits](c)
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		s.Data.N += add
		c.String(http.StatusOK, fmt.Sprint(s.Data.N))
	}
	r.GET("/inc", func(c *gin.Context) { count(c, 1) })
	r.GET("/count", func(c *gin.Context) { count(c, 0) })
	r.GET("/ws", func(c *gin.Context) {
		s, err := ginsession.From[visits](c)
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		s.Data.N++
		conn, brw, err := c.Writer.Hijack()
		if err != nil {
			c.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n")
		c.Writer.Header().Write(brw)
		brw.WriteString("\r\n")
		brw.Flush()
		s.Data.N++ // after the hijack: not saved
		io.Copy(io.Discard, brw)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	hijacktest.Run(t, srv.URL)
}
