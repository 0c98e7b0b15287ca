package webtest

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/typedsession/session/middleware"
)

// Bench measures what the index of devices costs a request: for each case,
// per operation (one HTTP request, or one call of the index), the store
// round trips and bytes (values and keys sent, values received) on the
// sessions' keys and on the index's, as the metrics session-rt/op,
// session-B/op, index-rt/op and index-B/op, besides the time. "n" in a
// case's name is the number of the user's sessions the index lists; every
// request carries a 90-byte User-Agent, which the index records.
//
//	request            a logged-in session's request, without an index
//	request+index      the same with an index, within SeenEvery (no record)
//	seen               a request that records the session as seen (once
//	                   per SeenEvery of use)
//	login              a login, without an index
//	login+index        a login with an index
//	logout+index       a logout (Destroy) with an index
//	end-all            log out everywhere: all n sessions of the user
func Bench(b *testing.B, env Env) {
	const agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"
	setup := func(b *testing.B, index bool, n int) (*world, []*device) {
		var dopts *middleware.DevicesOptions
		if index {
			dopts = &middleware.DevicesOptions{UserAgent: true, SeenEvery: 5 * time.Minute, Max: 50}
		}
		w := newWorld(b, env, middleware.HTTPOptions{AbsoluteTimeout: 8 * time.Hour}, dopts)
		w.opts.OnError = nil
		var ds []*device
		for i := range n {
			d := w.device(fmt.Sprint("D", i), 0)
			d.agent = agent
			w.login(d, "ann")
			ds = append(ds, d)
		}
		w.stats()
		return w, ds
	}
	report := func(b *testing.B, w *world) {
		s := w.stats()
		per := func(v int) float64 { return float64(v) / float64(b.N) }
		b.ReportMetric(per(s["session"].Calls), "session-rt/op")
		b.ReportMetric(per(s["session"].Sent+s["session"].Received), "session-B/op")
		b.ReportMetric(per(s["index"].Calls), "index-rt/op")
		b.ReportMetric(per(s["index"].Sent+s["index"].Received), "index-B/op")
	}
	// paused runs fn with the timer stopped and its store traffic not
	// counted.
	paused := func(b *testing.B, w *world, fn func()) {
		b.StopTimer()
		before := w.stats()
		fn()
		w.stats()
		w.tap.mu.Lock()
		for k, v := range before {
			v := v
			w.tap.stats[k] = &v
		}
		w.tap.mu.Unlock()
		b.StartTimer()
	}
	ok := func(b *testing.B, r response) {
		if r.StatusCode != http.StatusOK {
			b.Fatalf("%d %s", r.StatusCode, r.body)
		}
	}
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("request/n=%d", n), func(b *testing.B) {
			w, ds := setup(b, false, n)
			for b.Loop() {
				ok(b, ds[0].do("GET", "/show"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("request+index/n=%d", n), func(b *testing.B) {
			w, ds := setup(b, true, n)
			for b.Loop() {
				ok(b, ds[0].do("GET", "/show"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("seen/n=%d", n), func(b *testing.B) {
			w, ds := setup(b, true, n)
			for b.Loop() {
				paused(b, w, func() {
					w.age(ds[0].key(), func(v *Visit) { v.Web.Seen = v.Web.Seen.Add(-6 * time.Minute) })
					w.ageIndex("ann", func(ix *indexDoc) {
						for i := range ix.Sessions {
							if slices.Contains(ix.Sessions[i].Keys, ds[0].key()) {
								ix.Sessions[i].Seen = ix.Sessions[i].Seen.Add(-6 * time.Minute)
							}
						}
					})
				})
				ok(b, ds[0].do("GET", "/show"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("login/n=%d", n), func(b *testing.B) {
			w, ds := setup(b, false, n-1)
			_ = ds
			var d *device
			for b.Loop() {
				paused(b, w, func() {
					if d != nil {
						d.do("POST", "/logout")
					}
					d = w.device("L", 1)
					d.agent = agent
				})
				ok(b, d.do("POST", "/login", "user", "ann"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("login+index/n=%d", n), func(b *testing.B) {
			w, _ := setup(b, true, n-1)
			var d *device
			for b.Loop() {
				paused(b, w, func() {
					if d != nil {
						d.do("POST", "/logout")
					}
					d = w.device("L", 1)
					d.agent = agent
				})
				ok(b, d.do("POST", "/login", "user", "ann"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("logout+index/n=%d", n), func(b *testing.B) {
			w, _ := setup(b, true, n-1)
			var d *device
			for b.Loop() {
				paused(b, w, func() {
					d = w.device("L", 1)
					d.agent = agent
					w.login(d, "ann")
				})
				ok(b, d.do("POST", "/logout"))
			}
			report(b, w)
		})
		b.Run(fmt.Sprintf("end-all/n=%d", n), func(b *testing.B) {
			w, _ := setup(b, true, 0)
			for b.Loop() {
				paused(b, w, func() {
					for i := range n {
						d := w.device(fmt.Sprint("D", i), 0)
						d.agent = agent
						w.login(d, "ann")
					}
				})
				if err := w.d.EndAll(bg, "ann"); err != nil {
					b.Fatal(err)
				}
			}
			report(b, w)
		})
	}
}
