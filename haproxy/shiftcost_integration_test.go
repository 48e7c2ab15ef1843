//go:build integration

package haproxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
)

// socketRecorder stands between a client and HAProxy's admin socket and records, per connection, the
// commands of each write of the client (its lines, split at ';'): one write is one round trip, and a
// "prompt" line is the switch to interactive mode, which keeps the connection open.
type socketRecorder struct {
	path string
	mu   sync.Mutex
	seen [][][]string // per connection, per round trip, its commands
}

func recordSocket(t testing.TB, target string) *socketRecorder {
	t.Helper()
	r := &socketRecorder{path: filepath.Join(haproxyDir(t), "rec.sock")}
	ln, err := net.Listen("unix", r.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c, target)
		}
	}()
	return r
}

func (r *socketRecorder) serve(c net.Conn, target string) {
	defer c.Close()
	h, err := net.Dial("unix", target)
	if err != nil {
		return
	}
	defer h.Close()
	r.mu.Lock()
	conn := len(r.seen)
	r.seen = append(r.seen, nil)
	r.mu.Unlock()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				// One write of the client is one round trip: its lines, and their commands split at ';'.
				var cmds []string
				for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
					if line == "prompt" {
						r.record(conn, []string{line})
						continue
					}
					for _, cmd := range strings.Split(line, ";") {
						cmds = append(cmds, strings.TrimSpace(cmd))
					}
				}
				if len(cmds) > 0 {
					r.record(conn, cmds)
				}
				if _, err := h.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				h.(*net.UnixConn).CloseWrite()
				return
			}
		}
	}()
	_, _ = io.Copy(c, h) // until HAProxy closes the connection
}

func (r *socketRecorder) record(conn int, cmds []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if conn < len(r.seen) {
		r.seen[conn] = append(r.seen[conn], cmds)
	}
}

// take returns the connections recorded since the last take, each as its command lines without the
// switch to interactive mode.
func (r *socketRecorder) take() [][][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][][]string, 0, len(r.seen))
	for _, lines := range r.seen {
		var kept [][]string
		for _, l := range lines {
			if len(l) != 1 || l[0] != "prompt" {
				kept = append(kept, l)
			}
		}
		out = append(out, kept)
	}
	r.seen = r.seen[:0:0]
	return out
}

// TestRuntimeShiftRoundTrips: through the runtime socket a shift costs one connection and two round
// trips on it, the least it can: one reading the servers, then one writing the weights that change (and
// only those) and reading back the weight of every server of the split, without HAProxy's whole
// statistics table. A shift that changes nothing is the read alone.
func TestRuntimeShiftRoundTrips(t *testing.T) {
	tp := newTopology(t, 2, 1, false)
	rec := recordSocket(t, tp.hap.AdminSocket)
	c := tp.by(t, haproxy.ModeRuntime, func(cfg *haproxy.Config) { cfg.RuntimeSocket = rec.path })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// At 25%, 2 stable servers against 1 canary: stable stays at 100, the canary gets 67 (one write);
	// 25% again (none); 10%: 22 (one write); 75%, beyond the canary's 256 against 2×100: 43, 42 and
	// 255 (three writes in the one round trip).
	for _, pct := range []float64{25, 25, 10, 75} {
		before, err := c.Weights(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rec.take() // a line is recorded before HAProxy gets it: all of the read's are in
		w, _, err := c.Shift(ctx, pct)
		if err != nil {
			t.Fatal(err)
		}
		conns := rec.take()
		if len(conns) != 1 {
			t.Fatalf("shift to %g%%: connections %q, want one", pct, conns)
		}
		trips := conns[0]
		changed := map[string]bool{}
		for n, v := range w {
			if before[n] != v {
				changed[n] = true
			}
		}
		if len(changed) == 0 {
			if len(trips) != 1 {
				t.Errorf("shift to %g%% that changes nothing: round trips %q, want one read", pct, trips)
			}
			continue
		}
		if len(trips) != 2 {
			t.Fatalf("shift to %g%%: round trips %q, want two (read; write and read back)", pct, trips)
		}
		var set []string
		got := map[string]bool{}
		for _, cmd := range trips[1] {
			switch {
			case strings.HasPrefix(cmd, "set server be_app/"):
				set = append(set, cmd)
				name := strings.Fields(strings.TrimPrefix(cmd, "set server be_app/"))[0]
				if !changed[name] {
					t.Errorf("shift to %g%% wrote %s, whose weight does not change (%v → %v)", pct, name, before, w)
				}
			case strings.HasPrefix(cmd, "get weight be_app/"):
				got[strings.TrimPrefix(cmd, "get weight be_app/")] = true
			default:
				t.Errorf("shift to %g%%: the write round trip has %q: want only the writes and `get weight`s (%q)", pct, cmd, trips[1])
			}
		}
		if len(set) != len(changed) {
			t.Errorf("shift to %g%% wrote %q, want the %d servers whose weight changes", pct, set, len(changed))
		}
		for n := range w {
			if !got[n] {
				t.Errorf("shift to %g%% did not read back %s's weight (%q)", pct, n, trips[1])
			}
		}
	}
}

// TestDataplaneShiftRequests: through the Data Plane API (v2 and v3) a shift reads the statistics, PUTs
// the servers whose weight changes (and only those), with the configuration version the previous
// answer gave, and reads the statistics once more to see HAProxy run them: no other request, once the
// first write has read the servers' configuration. A shift that changes nothing is the read alone.
func TestDataplaneShiftRequests(t *testing.T) {
	for _, way := range []string{"dataplane-v2", "dataplane-v3"} {
		t.Run(way, func(t *testing.T) {
			tp := newTopology(t, 2, 1, false)
			root := tp.api.URL + "/v2"
			if way == "dataplane-v3" {
				_, api := tp.serve(t, dataplanetest.Config{Major: 3})
				root = api.URL + "/v3"
			}
			target, _ := url.Parse(root)
			var mu sync.Mutex
			var seen []string
			proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
			rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Method+" "+r.URL.Path)
				mu.Unlock()
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(rec.Close)
			take := func() []string {
				mu.Lock()
				defer mu.Unlock()
				out := seen
				seen = nil
				return out
			}
			c := tp.clientAt(t, haproxy.ModeDataplane, rec.URL+target.Path)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, _, err := c.Shift(ctx, 50); err != nil { // the first write reads the configuration
				t.Fatal(err)
			}
			// 25 and 10% write the canary alone; 75% stable too (several PUTs, each with the version
			// the one before gave).
			for _, pct := range []float64{25, 25, 10, 75} {
				before, err := c.Weights(ctx)
				if err != nil {
					t.Fatal(err)
				}
				take()
				w, _, err := c.Shift(ctx, pct)
				if err != nil {
					t.Fatal(err)
				}
				reqs := take()
				var puts, reads, other []string
				changed := 0
				for n, v := range w {
					if before[n] != v {
						changed++
					}
				}
				for _, r := range reqs {
					switch {
					case strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/configuration/") && strings.Contains(r, "/servers/"):
						name := r[strings.LastIndex(r, "/")+1:]
						if before[name] == w[name] {
							t.Errorf("shift to %g%% wrote %s, whose weight does not change (%v → %v)", pct, name, before, w)
						}
						puts = append(puts, r)
					case r == "GET "+target.Path+"/services/haproxy/stats/native":
						reads = append(reads, r)
					default:
						other = append(other, r)
					}
				}
				wantReads := 2
				if changed == 0 {
					wantReads = 1
				}
				if len(puts) != changed || len(reads) != wantReads || len(other) > 0 {
					t.Errorf("shift to %g%% (%d servers change): requests %q, want %d PUTs and %d statistics reads, nothing else", pct, changed, reqs, changed, wantReads)
				}
			}
		})
	}
}
