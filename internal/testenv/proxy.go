package testenv

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy to a server, for fault tests that must not touch
// the shared server: it cuts every connection through it (Cut), goes down
// and comes back (SetDown: an outage as a client sees it), and, for
// LostReplies, loses the replies of a marked request.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	down   bool // new connections are closed at once
	closed bool
	conns  map[net.Conn]struct{}
	// inspect, when set, sees each chunk a client sends before it is
	// forwarded: drop says to drop all the server answers on that
	// connection from then on; then, when not nil, runs once the chunk
	// is forwarded, and the connection is cut after it.
	inspect func(chunk []byte) (drop bool, then func())
	wg      sync.WaitGroup
}

// StartProxy starts a proxy to target (host:port), stopped when tb ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and returns how many
// client connections it cut; new ones are accepted unless it is down.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	clear(p.conns)
	return n
}

// SetDown takes the proxy down (cutting every connection, closing new
// ones at once) or up again.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.down || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		drop := new(atomic.Bool) // set by inspect: the server's replies go nowhere
		go p.pipe(s, c, drop, true)
		go p.pipe(c, s, drop, false)
	}
}

// pipe copies src to dst until either ends, then closes both. From the
// client (request true) each chunk goes to inspect first, which may set
// drop and give a function to run after the chunk is forwarded (both ends
// are closed after it); from the server, chunks are not written while
// drop is set.
func (p *Proxy) pipe(dst, src net.Conn, drop *atomic.Bool, request bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			var then func()
			if request {
				p.mu.Lock()
				inspect := p.inspect
				p.mu.Unlock()
				if inspect != nil {
					var d bool
					if d, then = inspect(buf[:n]); d {
						drop.Store(true)
					}
				}
			}
			if request || !drop.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if then != nil {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					then()
					dst.Close()
					src.Close()
				}()
			}
		}
		if err != nil {
			return
		}
	}
}
