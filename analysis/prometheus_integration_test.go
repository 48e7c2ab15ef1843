//go:build integration

package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// promBed is a real HAProxy (Debian's 2.6, with its built-in Prometheus exporter) in front of two test
// servers, and a real Prometheus (Debian's 2.42) scraping it every second, each started for the test on
// free loopback ports.
type promBed struct {
	promURL, frontURL string
}

// startPromBed starts HAProxy with backend be_prom: stable1 always answers 200, canary1 answers 500 to
// every canaryBadEvery-th request (0: never).
func startPromBed(t *testing.T, canaryBadEvery int64) promBed {
	t.Helper()
	for _, bin := range []string{"haproxy", "prometheus"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: make testbed installs Debian's package", bin)
		}
	}
	stable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "stable") }))
	t.Cleanup(stable.Close)
	var n atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if canaryBadEvery > 0 && n.Add(1)%canaryBadEvery == 0 {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "canary")
	}))
	t.Cleanup(canary.Close)

	dir := t.TempDir()
	front, exporter, prom := freeAddr(), freeAddr(), freeAddr()
	cfg := fmt.Sprintf(`global
    pidfile %s/haproxy.pid
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe_prom
    bind %s
    default_backend be_prom
backend be_prom
    balance roundrobin
    server stable1 %s weight 50
    server canary1 %s weight 50
listen exporter
    bind %s
    http-request use-service prometheus-exporter if { path /metrics }
`, dir, front, strings.TrimPrefix(stable.URL, "http://"), strings.TrimPrefix(canary.URL, "http://"), exporter)
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	hap := exec.Command("haproxy", "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	hap.Stdout, hap.Stderr = os.Stderr, os.Stderr
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hap.Process.Kill(); _ = hap.Wait() })

	pcfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: haproxy\n    static_configs:\n      - targets: [%q]\n", exporter)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(pcfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := exec.Command("prometheus", "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", prom)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.Stdout, p.Stderr = logf, logf
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Process.Kill(); _ = p.Wait(); logf.Close() })
	bed := promBed{promURL: "http://" + prom, frontURL: "http://" + front}
	waitHTTP(t, bed.promURL+"/-/ready", 60*time.Second)
	waitHTTP(t, bed.frontURL+"/", 20*time.Second)
	// Counters are only seen to increase once Prometheus has scraped them before the requests: wait for
	// two scrapes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(bed.promURL + "/api/v1/query?query=" + url.QueryEscape(`count_over_time(up{job="haproxy"}[1m]) >= 2`))
		if err == nil {
			var body struct {
				Data struct{ Result []json.RawMessage }
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if len(body.Data.Result) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape HAProxy's exporter twice within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return bed
}

// waitHTTP polls url until it answers 200, or fails the test at the deadline.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errorShare is the custom check the issue asks for: the share of a group's responses that are 5xx, from
// HAProxy's own per-server counters as Prometheus scraped them.
var errorShare = CustomMetric{Name: "http_5xx", Source: SourcePrometheus, Unit: "", Max: ptr(0.05), MaxRatio: 0,
	Query: `sum(increase(haproxy_server_http_responses_total{proxy={{.Backend}},{{.Servers}},code="5xx"}[{{.Range}}])) / sum(increase(haproxy_server_http_responses_total{proxy={{.Backend}},{{.Servers}}}[{{.Range}}]))`}

// TestPrometheusCustomCheck: a custom check in PromQL, asked of a real Prometheus scraping a real
// HAProxy's exporter, fails a canary that answers 5xx to half its requests and passes a healthy one.
func TestPrometheusCustomCheck(t *testing.T) {
	for _, c := range []struct {
		name     string
		badEvery int64
		want     verdict.Result
	}{{"a canary failing half its requests fails", 2, verdict.ResultFail}, {"a healthy canary passes", 0, verdict.ResultPass}} {
		t.Run(c.name, func(t *testing.T) {
			bed := startPromBed(t, c.badEvery)
			from := time.Now()
			for i := range 200 {
				resp, err := http.Get(bed.frontURL + "/")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if i%20 == 0 {
					time.Sleep(100 * time.Millisecond) // spread over a few scrapes, as a bake is
				}
			}
			to := time.Now()
			p, err := NewPrometheus(PrometheusConfig{URL: bed.promURL, Backend: "be_prom", StableServers: []string{"stable*"}, CanaryServers: []string{"canary1"}})
			if err != nil {
				t.Fatal(err)
			}
			// Prometheus scrapes every second: poll (with a deadline) until the window's end is scraped.
			var cv CustomValue
			deadline := time.Now().Add(20 * time.Second)
			for {
				cv = p.Custom(context.Background(), errorShare, from.Add(-2*time.Second), to.Add(2*time.Second))
				if cv.Err == "" && (c.badEvery == 0 || cv.Canary > 0.3) || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if cv.Err != "" {
				t.Fatalf("no value: %s (queries %q)", cv.Err, cv.Queries)
			}
			t.Logf("canary %.3f, stable %.3f of responses 5xx; queries %q", cv.Canary, cv.Stable, cv.Queries)
			if cv.Stable != 0 {
				t.Errorf("stable's share of 5xx %g, want 0", cv.Stable)
			}
			th := Thresholds{Custom: []CustomMetric{errorShare}}
			v := Judge(Input{Canary: verdict.Metrics{}, Stable: verdict.Metrics{}, Custom: []CustomValue{cv}, Window: verdict.Window{Share: 50}}, th)
			var got verdict.Check
			for _, ch := range v.Checks {
				if ch.Name == verdict.CustomPrefix+errorShare.Name {
					got = ch
				}
			}
			if got.Result != c.want {
				t.Errorf("custom check %s (%s), want %s", got.Result, got.Detail, c.want)
			}
		})
	}
}

// TestPrometheusFailsClosed: an unreachable Prometheus, a query that returns nothing and a query that
// returns several series give no value (the check is inconclusive), with errors that name what to fix and
// never show the password.
func TestPrometheusFailsClosed(t *testing.T) {
	bed := startPromBed(t, 0)
	ctx := context.Background()
	down, err := NewPrometheus(PrometheusConfig{URL: "http://" + freeAddr(), Username: "u", Password: "hunter2-secret", Backend: "be_prom",
		StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := down.Ping(ctx); err == nil || !strings.Contains(err.Error(), "prometheus.url") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ping of nothing: %v", err)
	}
	up, err := NewPrometheus(PrometheusConfig{URL: bed.promURL, Backend: "be_prom", StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for _, q := range []string{
		`sum(no_such_metric{proxy={{.Backend}},{{.Servers}}})`,
		`haproxy_server_weight`,
	} {
		cv := up.Custom(ctx, CustomMetric{Name: "x", Source: SourcePrometheus, Query: q}, time.Now().Add(-time.Minute), time.Now())
		if cv.Err == "" {
			t.Errorf("%s: value %g/%g, want none", q, cv.Canary, cv.Stable)
		}
	}
	if _, err := NewPrometheus(PrometheusConfig{URL: "http://u:pw@x:9090", Backend: "b", StableServers: []string{"s"}, CanaryServers: []string{"c"}}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("credentials in the URL: %v", err)
	}
}
