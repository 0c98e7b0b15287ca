package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// HoldProxy is a TCP proxy to a server that can go down (every connection
// through it cut, new ones closed at once) and come back: an outage as a
// client sees it, without touching the shared server.
type HoldProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// StartHoldProxy starts a proxy to target (host:port), stopped when tb
// ends.
func StartHoldProxy(tb testing.TB, target string) *HoldProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &HoldProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close(); c.Close() }()
			go func() { io.Copy(c, s); s.Close(); c.Close() }()
		}
	}()
	tb.Cleanup(func() { ln.Close(); p.SetDown(true) })
	return p
}

// Addr is the proxy's address, host:port.
func (p *HoldProxy) Addr() string { return p.ln.Addr().String() }

// SetDown takes the proxy down (cutting every connection) or up.
func (p *HoldProxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}
