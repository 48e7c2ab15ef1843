//go:build integration

package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedProxy forwards HTTP to a server, unless it is closed: then every request waits, unanswered, until
// it opens again. It plays an InfluxDB that hangs, or a Data Plane API that does not answer.
type gatedProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	gate chan struct{} // closed: requests go through
}

func newGatedProxy(t *testing.T, target string) *gatedProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedProxy{gate: make(chan struct{})}
	close(g.gate)
	rp := httputil.NewSingleHostReverseProxy(u)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { g.open(); g.srv.Close() })
	return g
}

// hang holds every request from now on until open.
func (g *gatedProxy) hang() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.gate:
		g.gate = make(chan struct{})
	default:
	}
}

func (g *gatedProxy) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

// waitLines waits until n lines of the output hold every part, and returns the last of them.
func (p *proc) waitLines(timeout time.Duration, n int, parts ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var found []string
		for _, line := range strings.Split(p.out.String(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				found = append(found, line)
			}
		}
		if len(found) >= n {
			return found[len(found)-1]
		}
		select {
		case <-p.done:
			p.t.Fatalf("fridaymorning exited %d with %d of %d lines with %q:\n%s", p.code, len(found), n, parts, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%d of %d lines with %q within %s:\n%s", len(found), n, parts, timeout, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHeadlessOutputNeverGoesSilent: while InfluxDB hangs during a step's analysis, and while HAProxy's
// Data Plane API does not answer a shift, the headless output says every few seconds what the release
// waits for and since when; once they answer, the release carries on and promotes.
func TestHeadlessOutputNeverGoesSilent(t *testing.T) {
	s := newStack(t)
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	api := regexp.MustCompile(`url: (http://127\.0\.0\.1:\d+)/v2`).FindStringSubmatch(cfg)
	influx := regexp.MustCompile(`url: (http://127\.0\.0\.1:` + bedEnv(t, "FM_INFLUX_PORT") + `)\n`).FindStringSubmatch(cfg)
	if api == nil || influx == nil {
		t.Fatalf("no Data Plane API or InfluxDB URL in %s", cfg)
	}
	dp, db := newGatedProxy(t, api[1]), newGatedProxy(t, influx[1])
	cfg = strings.Replace(cfg, api[0], "url: "+dp.srv.URL+"/v2\n  timeout: 2m", 1)
	cfg = strings.Replace(cfg, influx[0], "url: "+db.srv.URL+"\n  timeout: 2m\n", 1)
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	stop := s.startLoad(50)
	defer stop()
	p := s.start("release", "--config", s.configPath, "--image", s.image+":v2")

	// Once step 1 bakes, InfluxDB hangs: the bake's next look at the canary waits for it, and says so.
	// Then the Data Plane API stops answering too, and InfluxDB answers again: what the release does
	// next with HAProxy (re-reading its weights, its counters, the next shift) waits for it, and says so.
	p.waitLine(90*time.Second, "event=bake", "step=1/2")
	db.hang()
	line := p.waitLines(60*time.Second, 2, "event=progress", "waiting for InfluxDB at "+db.srv.URL+" (", "step 1) since")
	t.Logf("while InfluxDB hangs: %s", line)
	dp.hang()
	db.open()
	line = p.waitLines(60*time.Second, 2, "event=progress", "waiting for HAProxy's Data Plane API at "+dp.srv.URL+"/v2 (", ") since")
	t.Logf("while the Data Plane API does not answer: %s", line)
	dp.open()

	if code := p.wait(3 * time.Minute); code != exitPromoted {
		t.Fatalf("exit %d once both answered again, want %d (promoted)", code, exitPromoted)
	}
}
