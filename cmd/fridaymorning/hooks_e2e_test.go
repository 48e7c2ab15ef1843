//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
	"github.com/fridaymorning/fridaymorning/notify"
)

// hookReceiver is a local HTTP server standing in for a team's chat webhook and a change board that
// confirms promotions: it records every notification and answers the confirm gate 503 a few times
// before 200.
type hookReceiver struct {
	mu        sync.Mutex
	notified  []notify.Message
	confirms  int
	shutFirst int
	srv       *httptest.Server
}

func newHookReceiver(t *testing.T, shutFirst int) *hookReceiver {
	h := &hookReceiver{shutFirst: shutFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/notify/"):
			var m notify.Message
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("notification %q: %v", b, err)
			}
			h.notified = append(h.notified, m)
		case strings.HasPrefix(r.URL.Path, "/confirm/"):
			h.confirms++
			if h.confirms <= h.shutFirst {
				http.Error(w, "waiting for the change board", http.StatusServiceUnavailable)
				return
			}
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.notified {
		out = append(out, m.Event)
	}
	return out
}

// withHooksConfig adds notify:, gates: and a Prometheus custom check to the stack's fridaymorning.yaml,
// and reports the stack's HAProxy stats address (where its Prometheus exporter answers) in statsAddr.
func withHooksConfig(promURL, smokeLog string, statsAddr *string) stackOption {
	stats := regexp.MustCompile(`listen stats\n\s+bind (\S+)`)
	return func(cfgText, yaml *string) {
		if m := stats.FindStringSubmatch(*cfgText); m != nil {
			*statsAddr = m[1]
		}
		if !strings.Contains(*yaml, "analysis:") {
			return
		}
		// The built-in error checks are loosened so that the PromQL check alone decides.
		*yaml = strings.Replace(*yaml, "  max_error_rate: 1\n", "  max_error_rate: 100\n  max_error_rate_increase: 100\n", 1)
		*yaml += `  custom:
    - name: http_5xx
      source: prometheus
      max: 0.05
      query: sum(increase(haproxy_server_http_responses_total{proxy={{.Backend}},{{.Servers}},code="5xx"}[{{.Range}}])) / sum(increase(haproxy_server_http_responses_total{proxy={{.Backend}},{{.Servers}}}[{{.Range}}]))
prometheus:
  url: ` + promURL + `
notify:
  - name: team-chat
    kind: webhook
    url_env: FM_TEST_NOTIFY_URL
gates:
  pre_rollout:
    - name: smoke
      command: ["sh", "-c", "echo \"$FRIDAYMORNING_GATE $FRIDAYMORNING_CANARY\" >> ` + smokeLog + `"]
  confirm_promotion:
    - name: change-board
      url_env: FM_TEST_CONFIRM_URL
      interval: 200ms
      timeout: 30s
`
	}
}

// TestHooksOnRealReleases: on real releases, a pre_rollout command gate runs before the canary gets
// traffic, a confirm_promotion HTTP gate holds the promotion until it answers 200, a custom check in
// PromQL, asked of a real Prometheus scraping the stack's HAProxy exporter, fails the canary that answers
// 5xx and passes the good one, and a webhook hears every milestone.
func TestHooksOnRealReleases(t *testing.T) {
	for _, c := range []struct {
		name, image string
		want        int
		milestone   string
		customCheck string
	}{
		{"a canary answering 5xx fails the PromQL check", ":v2-errors", exitAbortedAnalysis, "aborted", "result=fail"},
		{"a healthy canary passes it and is promoted once confirmed", ":v2", exitPromoted, "promoted", "result=pass"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recv := newHookReceiver(t, 2)
			smokeLog := filepath.Join(t.TempDir(), "smoke.log")
			var statsAddr string
			promAddr := fmt.Sprintf("127.0.0.1:%d", haproxytest.FreePort(t))
			s := newStack(t, withHooksConfig("http://"+promAddr, smokeLog, &statsAddr))
			if statsAddr == "" {
				t.Fatal("the stack's HAProxy config has no stats listener")
			}
			// Prometheus on the address the config names, scraping this stack's HAProxy.
			startPrometheusAt(t, promAddr, statsAddr)
			s.env = append(s.env, "FM_TEST_NOTIFY_URL="+recv.srv.URL+"/notify/s3cret", "FM_TEST_CONFIRM_URL="+recv.srv.URL+"/confirm/s3cret")
			stop := s.startLoad(100)
			code, out := s.release("--image", s.image+c.image)
			stop()
			if code != c.want {
				t.Fatalf("exit %d, want %d", code, c.want)
			}
			if strings.Contains(out, "s3cret") {
				t.Error("a hook's secret URL shows in the output")
			}
			if !regexpLine(out, "event=check", "check=custom_http_5xx", c.customCheck) {
				t.Errorf("no event=check line for custom_http_5xx with %s", c.customCheck)
			}
			smoke, err := os.ReadFile(smokeLog)
			if err != nil || !strings.Contains(string(smoke), "pre_rollout "+s.service+"-canary") {
				t.Errorf("the pre_rollout gate did not run with the canary's name: %q, %v", smoke, err)
			}
			if first, gate := strings.Index(out, "event=traffic"), strings.Index(out, "pre_rollout gate smoke is open"); gate < 0 || first < gate {
				t.Errorf("the canary got traffic (at %d) before the pre_rollout gate opened (at %d)", first, gate)
			}
			if c.want == exitPromoted {
				recv.mu.Lock()
				confirms := recv.confirms
				recv.mu.Unlock()
				if confirms != 3 {
					t.Errorf("the confirm_promotion gate was asked %d times, want 3 (twice shut, then open)", confirms)
				}
			}
			ev := strings.Join(recv.events(), ",")
			if !strings.HasPrefix(ev, "started,traffic") || !strings.HasSuffix(ev, c.milestone) || !strings.Contains(ev, "verdict") {
				t.Errorf("the webhook heard %s", ev)
			}
		})
	}
}

// startPrometheusAt is startPrometheus on a given address.
func startPrometheusAt(t *testing.T, addr, target string) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: haproxy\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := exec.Command("prometheus", "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", addr)
	if err := p.Start(); err != nil {
		t.Fatalf("prometheus: %v (make testbed installs it)", err)
	}
	t.Cleanup(func() { _ = p.Process.Kill(); _ = p.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + "count_over_time(up[1m])%20%3E%3D%202")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"value"`) { // scraped twice: counters can be seen to increase
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus on %s did not scrape %s twice within 60s: %v", addr, target, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// regexpLine reports whether one line of out holds every one of want.
func regexpLine(out string, want ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}
