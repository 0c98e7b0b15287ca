// Package hijacktest is the client side of one check that the web
// adapters (middleware.HTTP, Echo, Gin, Fiber) run: a request that takes
// its connection over (a WebSocket upgrade) must not keep the user's
// session lock for the life of the connection (issue 23).
//
// The server under test keeps a counter session and serves:
//
//	/inc     adds one and answers with the count (the first request gets
//	         the session cookie)
//	/count   answers with the count
//	/ws      adds one, then takes the connection over: it answers
//	         "HTTP/1.1 101 Switching Protocols" itself, with the header of
//	         the response (w.Header() read after the hijack, where the
//	         commit put a cookie), adds one more to the session it holds,
//	         which must not be saved, and keeps the connection open until
//	         the client closes it.
package hijacktest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wait bounds each request: a request that waits for the key's lock fails
// the test instead of hanging it.
const wait = 20 * time.Second

// Run runs the check against the server at base (http://host:port): a
// plain request with the cookie is answered while the upgraded connection
// is still open, and sees the change the upgrade made before its hijack;
// the change the upgrade made after it is never saved.
func Run(t *testing.T, base string) {
	t.Helper()
	body, cookie := Get(t, base, "/inc", "")
	if body != "1" || cookie == "" {
		t.Fatalf("/inc = %q with cookie %q; want 1 and a session cookie", body, cookie)
	}
	conn, res := Upgrade(t, base, cookie)
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("/ws answered %s, want 101", res.Status)
	}
	if body, _ := Get(t, base, "/count", cookie); body != "2" {
		t.Errorf("/count while the upgraded connection is open = %q, want 2 (the upgrade's change, committed at the hijack, and no wait for the connection to close)", body)
	}
	conn.Close()
	if body, _ := Get(t, base, "/count", cookie); body != "2" {
		t.Errorf("/count after the connection closed = %q, want 2 (a change after the hijack is not saved)", body)
	}
}

// Get sends GET path with the cookie ("name=value", or "") and returns the
// body and the session cookie the response set ("name=value", or "").
func Get(t *testing.T, base, path, cookie string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b), setCookie(res)
}

// Upgrade sends GET /ws on a connection of its own, with the cookie, and
// reads the response head; the connection stays open (closed when t
// ends). SetCookie gives the session cookie the head set.
func Upgrade(t *testing.T, base, cookie string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(wait))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the upgrade's response: %v", err)
	}
	return conn, res
}

// SetCookie returns the session cookie res set, as "session=value", or "".
func SetCookie(res *http.Response) string { return setCookie(res) }

func setCookie(res *http.Response) string {
	for _, c := range res.Cookies() {
		if c.Name == "session" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}
