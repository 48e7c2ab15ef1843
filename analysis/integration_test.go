//go:build integration

package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// These tests run against a real InfluxDB 1.8.10 with Flux enabled and authentication on, started for
// this package in a temporary directory on free loopback ports. The binary is $FM_INFLUXD, else the test
// bed's .testbed/tools/influxd (make testbed builds it).

const (
	influxUser     = "fmadmin"
	influxPassword = "s3cret-Passw0rd"
	influxToken    = influxUser + ":" + influxPassword
)

var influxURL string

func TestMain(m *testing.M) {
	os.Exit(runWithInfluxDB(m))
}

func runWithInfluxDB(m *testing.M) int {
	bin := os.Getenv("FM_INFLUXD")
	if bin == "" {
		bin, _ = filepath.Abs("../.testbed/tools/influxd")
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "analysis integration tests: no influxd at %s: run make testbed (it builds InfluxDB 1.8.10) or set FM_INFLUXD to an influxd 1.8 binary\n", bin)
		return 1
	}
	dir, err := os.MkdirTemp("", "fm-analysis-influxdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	httpAddr, rpcAddr := freeAddr(), freeAddr()
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = %q
  auth-enabled = true
  log-enabled = false
  flux-enabled = true
[logging]
  level = "warn"
`, rpcAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logPath := filepath.Join(dir, "influxd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-config", confPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary that dies (timeout, SIGQUIT) takes its InfluxDB with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "start %s: %v\n", bin, err)
		return 1
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	influxURL = "http://" + httpAddr
	fail := func(format string, args ...any) int {
		log, _ := os.ReadFile(logPath)
		fmt.Fprintf(os.Stderr, "analysis integration tests: "+format+"\ninfluxd log:\n%s\n", append(args, log)...)
		return 1
	}
	// influxd 1.8 type-checks Flux's standard library before it listens: several seconds of CPU.
	if err := waitUp(exited, 90*time.Second); err != nil {
		return fail("%v", err)
	}
	// The first user may be created without credentials; after that, authentication is on.
	if err := influxQL("", fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", influxUser, influxPassword)); err != nil {
		return fail("create user: %v", err)
	}
	if err := influxQL(influxToken, "CREATE DATABASE fridaymorning"); err != nil {
		return fail("create database: %v", err)
	}
	return m.Run()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUp(exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(influxURL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("influxd exited before it answered /ping")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("influxd did not answer %s/ping within %s", influxURL, within)
		}
	}
}

// influxQL runs an InfluxQL statement through the v1 /query API.
func influxQL(token, q string) error {
	req, _ := http.NewRequest(http.MethodPost, influxURL+"/query", strings.NewReader(url.Values{"q": {q}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user, pw, ok := strings.Cut(token, ":"); ok {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Error   string
		Results []struct{ Error string }
	}
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || out.Error != "" || len(out.Results) > 0 && out.Results[0].Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

// write stores line-protocol points with millisecond timestamps through the v1 write API.
func write(t testing.TB, lines []string) { writePrecision(t, lines, "ms") }

// writeNS stores line-protocol points with nanosecond timestamps.
func writeNS(t testing.TB, lines []string) { writePrecision(t, lines, "ns") }

func writePrecision(t testing.TB, lines []string, precision string) {
	t.Helper()
	for len(lines) > 0 {
		n := min(len(lines), 5000)
		req, _ := http.NewRequest(http.MethodPost, influxURL+"/write?db=fridaymorning&precision="+precision, strings.NewReader(strings.Join(lines[:n], "\n")))
		req.SetBasicAuth(influxUser, influxPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s: %s", resp.Status, body)
		}
		lines = lines[n:]
	}
}

// lpTag escapes a line-protocol tag value.
func lpTag(s string) string {
	return strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `).Replace(s)
}

// point is one request as HAProxy logs it, with a latency of lat ms: ta = lat, tr = lat/2 and
// tt = lat+5000 (keep-alive idle time), so that a test sees which timer was used. A negative lat is a
// request without a response: every timer -1.
func point(backend, server string, status, lat float64, at time.Time) string {
	tr, tt := lat/2, lat+5000
	if lat < 0 {
		tr, tt = -1, -1
	}
	return fmt.Sprintf("haproxy_request,frontend=fe_demo,backend=%s,server=%s status=%g,tr=%g,tt=%g,ta=%g %d",
		lpTag(backend), lpTag(server), status, tr, tt, lat, at.UnixMilli())
}

func testConfig(backend string, canary ...string) Config {
	if len(canary) == 0 {
		canary = []string{"canary1"}
	}
	return Config{URL: influxURL, Token: influxToken, Bucket: "fridaymorning/autogen", Backend: backend,
		StableServers: []string{"stable1", "stable2"}, CanaryServers: canary, Timeout: 5 * time.Second}
}

// languages are the query backends every test runs against.
var languages = []string{LanguageFlux, LanguageInfluxQL}

func newStore(t testing.TB, lang string, cfg Config) Store {
	t.Helper()
	cfg.Language = lang
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// uniqueBackend gives each test its own backend tag, so that tests share one database without
// seeing each other's points.
func uniqueBackend(t testing.TB) string {
	return fmt.Sprintf("be_%s_%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), time.Now().UnixNano())
}

func TestMetricsOfKnownDistributions(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	var lines []string
	var canaryLat, stableLat []float64
	var canaryErrors int64
	// Canary: 1000 requests with latencies of 1..1000 ms in random order, every 8th a 503 (125), and
	// 3 aborted ones (status -1, no timers, no response, so failed too): 1003 requests, 128 errors, 125 of
	// them 5xx.
	for i, p := range rng.Perm(1000) {
		status := 200.0
		if i%8 == 0 {
			status = 503
			canaryErrors++
		}
		canaryLat = append(canaryLat, float64(p+1))
		lines = append(lines, point(backend, "canary1", status, float64(p+1), start.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := range 3 {
		lines = append(lines, point(backend, "canary1", -1, -1, start.Add(time.Duration(2000+i)*time.Millisecond)))
	}
	// canary2: 997 requests, so that q·n is a whole number for no percentile: InfluxQL's percentile()
	// rounds the rank where nearest-rank takes its ceiling, which the InfluxQL backend corrects.
	var oddLat []float64
	for i := range 997 {
		lat := float64(int(rng.NormFloat64()*15+60) | 1)
		oddLat = append(oddLat, lat)
		lines = append(lines, point(backend, "canary2", 200, lat, start.Add(time.Duration(i)*time.Millisecond)))
	}
	// Stable: 3000 requests over two servers, exponential latencies, 4xx but no 5xx.
	for i := range 3000 {
		lat := float64(int(rng.ExpFloat64()*40) + 1)
		stableLat = append(stableLat, lat)
		status := 200.0
		if i%10 == 0 {
			status = 404
		}
		lines = append(lines, point(backend, fmt.Sprintf("stable%d", 1+i%2), status, lat, start.Add(time.Duration(i)*time.Millisecond+time.Millisecond/2)))
	}
	// Points that must not be counted: another server of the backend, another backend, a point without
	// a backend tag, and points outside the window.
	for i := range 100 {
		at := start.Add(time.Duration(i) * time.Millisecond)
		lines = append(lines,
			point(backend, "other1", 500, 9999, at),
			point(backend+"x", "canary1", 500, 9999, at),
			fmt.Sprintf("haproxy_request,server=canary1 status=500,tr=9999,tt=9999,ta=9999 %d", at.UnixMilli()),
			point(backend, "canary1", 500, 9999, start.Add(-time.Second-time.Duration(i)*time.Millisecond)),
			point(backend, "canary1", 500, 9999, start.Add(time.Minute+time.Duration(i)*time.Millisecond)))
	}
	write(t, lines)
	slices.Sort(canaryLat)
	slices.Sort(stableLat)
	slices.Sort(oddLat)

	for _, lang := range languages {
		for _, timer := range []struct {
			name  string
			scale float64
		}{{"", 1}, {"ta", 1}, {"tr", 0.5}} {
			t.Run(lang+" timer "+orDefault(timer.name, "default"), func(t *testing.T) {
				knownDistributions(t, lang, timer.name, timer.scale, backend, start, canaryErrors, canaryLat, stableLat, oddLat)
			})
		}
	}
}

func knownDistributions(t *testing.T, lang, timer string, scale float64, backend string, start time.Time, canaryErrors int64, canaryLat, stableLat, oddLat []float64) {
	{
		{
			cfg := testConfig(backend)
			cfg.Timer = timer
			canary, stable, queries, err := newStore(t, lang, cfg).Metrics(context.Background(), start, start.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if canary.Requests != 1003 || canary.Errors != canaryErrors+3 || canary.Errors5xx != canaryErrors || canary.Timed != 1000 ||
				stable.Requests != 3000 || stable.Errors != 0 || stable.Timed != 3000 {
				t.Fatalf("counts: canary %+v, stable %+v", canary, stable)
			}
			if want := 100 * 128.0 / 1003; canary.ErrorRate != want || stable.ErrorRate != 0 {
				t.Errorf("error rates %g and %g, want %g and 0", canary.ErrorRate, stable.ErrorRate, want)
			}
			// Both backends give the nearest-rank percentiles exactly: of 1..1000 ms, 500, 900, 950 and 990.
			for _, c := range []struct {
				name string
				got  time.Duration
				want float64
			}{
				{"canary p50", canary.P50, 500}, {"canary p90", canary.P90, 900}, {"canary p95", canary.P95, 950}, {"canary p99", canary.P99, 990},
				{"stable p50", stable.P50, nearestRank(stableLat, 0.5)}, {"stable p90", stable.P90, nearestRank(stableLat, 0.9)},
				{"stable p95", stable.P95, nearestRank(stableLat, 0.95)}, {"stable p99", stable.P99, nearestRank(stableLat, 0.99)},
				{"canary p95 by nearest rank", canary.P95, nearestRank(canaryLat, 0.95)},
			} {
				if want := ms(c.want * scale); c.got != want {
					t.Errorf("%s = %s, want %s", c.name, c.got, want)
				}
			}
			// Every latency is in the sample (fewer than SampleSize), scaled to the timer.
			for _, g := range []struct {
				name      string
				got, want []float64
			}{{"canary", canary.Latencies, canaryLat}, {"stable", stable.Latencies, stableLat}} {
				got := slices.Sorted(slices.Values(g.got))
				want := make([]float64, len(g.want))
				for i, v := range g.want {
					want[i] = v * scale
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s sample: %d latencies, want all %d", g.name, len(got), len(want))
				}
			}
			if len(queries) != 2 || !strings.Contains(queries[0], backend) {
				t.Errorf("queries %q", queries)
			}
			if lang == LanguageFlux && !strings.Contains(queries[0], `method: "exact_selector"`) {
				t.Errorf("flux query without exact_selector: %s", queries[0])
			}

			oddCfg := testConfig(backend, "canary2")
			oddCfg.Timer = timer
			odd, _, _, err := newStore(t, lang, oddCfg).Metrics(context.Background(), start, start.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				q   float64
				got time.Duration
			}{{0.5, odd.P50}, {0.9, odd.P90}, {0.95, odd.P95}, {0.99, odd.P99}} {
				if want := ms(nearestRank(oddLat, c.q) * scale); c.got != want {
					t.Errorf("997 requests: p%g = %s, want %s (rank ceil(q·n))", 100*c.q, c.got, want)
				}
			}
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestHostileNames writes points whose server and backend tags hold quotes, backslashes, "${…}" and
// the like, and asks for each: every name must match exactly its own points, no more, no fewer.
func TestHostileNames(t *testing.T) {
	backend := uniqueBackend(t) + ` "${r.backend}\x`
	start := time.Now().Add(-7 * time.Minute).Truncate(time.Second)
	names := []string{
		`canary9" or r.server != "`,
		`x\" or true or r.a == "\y`,
		`${r.server}`,
		`$${"a"}`,
		`"; drop() //`,
		`back\slash`,
		`a b,c=d`,
		`"`,
		"ünïcødé-канарейка",
	}
	var lines []string
	for i, name := range names {
		for j := range 10 * (i + 1) {
			lines = append(lines, point(backend, name, 200, 5, start.Add(time.Duration(100*i+j)*time.Millisecond)))
		}
	}
	for j := range 500 {
		lines = append(lines, point(backend, "stable1", 200, 5, start.Add(time.Duration(j)*time.Millisecond)))
	}
	write(t, lines)
	for _, lang := range languages {
		for i, name := range names {
			canary, stable, _, err := newStore(t, lang, testConfig(backend, name)).Metrics(context.Background(), start, start.Add(time.Minute))
			if err != nil {
				t.Errorf("%s %q: %v", lang, name, err)
				continue
			}
			if want := int64(10 * (i + 1)); canary.Requests != want || stable.Requests != 500 || canary.Timed != want {
				t.Errorf("%s %q: %d canary and %d stable requests, want %d and 500", lang, name, canary.Requests, stable.Requests, want)
			}
		}
	}
}

// TestServerPatterns: "stable*" and "canary*" match the server-template slots they name (as they do in
// haproxy/), in both backends, and nothing else: the pattern's characters are literal, however odd.
func TestServerPatterns(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-8 * time.Minute).Truncate(time.Second)
	counts := map[string]int{"stable1": 50, "stable2": 60, "stable10": 70, "canary1": 11, "canary2": 12,
		"s.t$(1": 13, "sXt$(1": 14, "other1": 15, "xstable1": 16}
	var lines []string
	i := 0
	for name, n := range counts {
		for range n {
			lines = append(lines, point(backend, name, 200, 5, start.Add(time.Duration(i)*time.Millisecond)))
			i++
		}
	}
	write(t, lines)
	for _, lang := range languages {
		for _, c := range []struct {
			stable, canary []string
			wantStable     int64
			wantCanary     int64
		}{
			{[]string{"stable*"}, []string{"canary*"}, 180, 23},
			{[]string{"stable1", "stable2"}, []string{"canary*"}, 110, 23},
			{[]string{"stable*"}, []string{"s.t$(*"}, 180, 13},
		} {
			cfg := testConfig(backend)
			cfg.StableServers, cfg.CanaryServers = c.stable, c.canary
			canary, stable, _, err := newStore(t, lang, cfg).Metrics(context.Background(), start, start.Add(time.Minute))
			if err != nil {
				t.Errorf("%s %v/%v: %v", lang, c.stable, c.canary, err)
				continue
			}
			if canary.Requests != c.wantCanary || stable.Requests != c.wantStable {
				t.Errorf("%s %v/%v: %d canary and %d stable requests, want %d and %d", lang, c.stable, c.canary, canary.Requests, stable.Requests, c.wantCanary, c.wantStable)
			}
		}
	}
}

// TestWindowBoundaries: a window is [from, to), so that consecutive steps' windows share no request,
// although InfluxDB 1.8 returns points at exactly range's stop.
func TestWindowBoundaries(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-4 * time.Minute).Truncate(time.Second)
	var lines []string
	for i := range 180 {
		at := start.Add(time.Duration(i) * time.Second)
		lines = append(lines, point(backend, "canary1", 200, 1, at), point(backend, "stable1", 200, 1, at))
	}
	write(t, lines)
	for _, lang := range languages {
		windowBoundaries(t, newStore(t, lang, testConfig(backend)), start)
	}
}

func windowBoundaries(t *testing.T, f Store, start time.Time) {
	total := int64(0)
	for _, w := range [][2]time.Duration{{0, time.Minute}, {time.Minute, 2 * time.Minute}, {2 * time.Minute, 3 * time.Minute}} {
		canary, stable, _, err := f.Metrics(context.Background(), start.Add(w[0]), start.Add(w[1]))
		if err != nil {
			t.Fatal(err)
		}
		if canary.Requests != 60 || stable.Requests != 60 {
			t.Errorf("window %s..%s: %d canary and %d stable requests, want 60 each", w[0], w[1], canary.Requests, stable.Requests)
		}
		total += canary.Requests
	}
	if total != 180 {
		t.Errorf("consecutive windows count %d requests, want 180", total)
	}
}

func TestFailsClosed(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	var lines []string
	for i := range 500 {
		lines = append(lines, point(backend, "stable1", 200, 5, start.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := range 10 {
		lines = append(lines, point(backend, "canary1", 200, 5, start.Add(time.Duration(i)*time.Millisecond)))
	}
	// canary2's requests all lack a response time (tr = -1): its latency is unknown, not 0 ms.
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("haproxy_request,frontend=fe_demo,backend=%s,server=canary2 status=-1,tr=-1,tt=900,ta=900 %d", backend, start.Add(time.Duration(i)*time.Millisecond).UnixMilli()))
	}
	// Points without a backend tag.
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("haproxy_request,server=canary3 status=200,tr=1,tt=1,ta=1 %d", start.Add(time.Duration(i)*time.Millisecond).UnixMilli()))
	}
	write(t, lines)
	for _, lang := range languages {
		for _, fixed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fixed=%v", lang, fixed), func(t *testing.T) { failsClosed(t, lang, backend, start, fixed) })
		}
	}
}

// failsClosed runs the fail-closed cases through the sequential analysis, or through the fixed-sample
// tests of each window.
func failsClosed(t *testing.T, lang, backend string, start time.Time, fixed bool) {
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, FixedSample: fixed}
	ctx := context.Background()
	newFlux := func(t *testing.T, cfg Config) Store { return newStore(t, lang, cfg) }
	win := func(from, to time.Time) verdict.Window { return verdict.Window{From: from, To: to, Share: 10} }
	window := func(f Store) (verdict.Verdict, error) {
		return NewAnalyzer(f, th).Analyze(ctx, win(start, start.Add(time.Minute)))
	}
	notPass := func(t *testing.T, v verdict.Verdict, err error, want error, reason ...string) {
		t.Helper()
		if v.Result == verdict.ResultPass || !errors.Is(err, want) {
			t.Fatalf("verdict %s (%s), error %v: want no pass and %v", v.Result, v.Reason, err, want)
		}
		t.Logf("%s: %s", v.Result, v.Reason)
		for _, r := range reason {
			if !strings.Contains(v.Reason, r) || !strings.Contains(err.Error(), r) {
				t.Errorf("reason %q or error %q lacks %q", v.Reason, err, r)
			}
		}
		if strings.Contains(v.Reason, influxPassword) || strings.Contains(err.Error(), influxPassword) {
			t.Errorf("the password shows in %q", err)
		}
	}

	t.Run("no canary points: inconclusive, ErrNoData", func(t *testing.T) {
		v, err := window(newFlux(t, testConfig(backend, "canary9")))
		notPass(t, v, err, ErrNoData, "no requests of the canary servers canary9")
		if v.Result != verdict.ResultInconclusive || v.Stable.Requests != 500 || len(v.Queries) == 0 {
			t.Errorf("verdict %+v", v)
		}
	})
	t.Run("empty window: inconclusive, ErrNoData", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, testConfig(backend)), th).Analyze(ctx, win(start.Add(-time.Hour), start.Add(-59*time.Minute)))
		notPass(t, v, err, ErrNoData)
	})
	t.Run("window ending before it starts: ErrNoData", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, testConfig(backend)), th).Analyze(ctx, win(start, start))
		notPass(t, v, err, ErrNoData, "is empty")
	})
	t.Run("too few canary requests: inconclusive", func(t *testing.T) {
		v, err := window(newFlux(t, testConfig(backend)))
		if v.Result != verdict.ResultInconclusive || err != nil || !strings.Contains(v.Reason, "canary has 10 requests") {
			t.Fatalf("%s (%s), %v", v.Result, v.Reason, err)
		}
	})
	t.Run("points without the backend tag are not counted", func(t *testing.T) {
		v, err := window(newFlux(t, testConfig(backend, "canary3")))
		notPass(t, v, err, ErrNoData)
	})
	t.Run("no latency at all: ErrNoData, not 0ms", func(t *testing.T) {
		cfg := testConfig(backend, "canary2")
		cfg.Timer = "tr"
		v, err := window(newFlux(t, cfg))
		// Every one of those requests went without a response: no latency, and each one failed.
		if v.Result != verdict.ResultFail || !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "none of the canary's 100 requests") ||
			!strings.Contains(v.Reason, "canary error rate 100%") {
			t.Fatalf("verdict %s (%s), error %v: want a fail for 100%% failed requests and ErrNoData for the latency", v.Result, v.Reason, err)
		}
	})
	t.Run("a server name that tries to match every server matches none", func(t *testing.T) {
		_, _, _, err := newFlux(t, testConfig(backend, `canary9" or r.server != "`)).Metrics(ctx, start, start.Add(time.Minute))
		if !errors.Is(err, ErrNoData) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("InfluxDB not running: ErrUnreachable, names the URL, never the token", func(t *testing.T) {
		cfg := testConfig(backend)
		cfg.URL = "http://" + freeAddr()
		f := newFlux(t, cfg)
		v, err := window(f)
		notPass(t, v, err, ErrUnreachable, "InfluxDB at "+cfg.URL+": connect: connection refused: check influxdb.url")
		if cv := f.Custom(ctx, CustomMetric{Name: "x", Query: "SELECT 1"}, start, start.Add(time.Minute)); cv.Err == "" || strings.Contains(cv.Err, influxPassword) {
			t.Errorf("custom metric with InfluxDB down: %+v", cv)
		}
		if err := f.Ping(ctx); !errors.Is(err, ErrUnreachable) {
			t.Errorf("Ping = %v", err)
		}
	})
	t.Run("wrong password: ErrUnreachable, says check the token, never shows it", func(t *testing.T) {
		cfg := testConfig(backend)
		cfg.Token = influxUser + ":wrong-" + influxPassword
		v, err := window(newFlux(t, cfg))
		notPass(t, v, err, ErrUnreachable, "credentials refused", "FRIDAYMORNING_INFLUXDB_TOKEN")
		if strings.Contains(err.Error(), "wrong-") {
			t.Errorf("error %q shows the token", err)
		}
	})
	t.Run("no token while InfluxDB wants one: ErrUnreachable", func(t *testing.T) {
		cfg := testConfig(backend)
		cfg.Token = ""
		v, err := window(newFlux(t, cfg))
		notPass(t, v, err, ErrUnreachable, "credentials refused")
	})
	for _, bucket := range []string{"nodb/autogen", "fridaymorning/norp"} {
		t.Run("bucket "+bucket+" missing: ErrUnreachable, says check the bucket", func(t *testing.T) {
			cfg := testConfig(backend)
			cfg.Bucket = bucket
			f := newFlux(t, cfg)
			v, err := window(f)
			notPass(t, v, err, ErrUnreachable, "influxdb.bucket")
			if err := f.Ping(ctx); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "influxdb.bucket") {
				t.Errorf("Ping = %v", err)
			}
		})
	}
	t.Run("URL with a wrong path: ErrUnreachable, says check the URL", func(t *testing.T) {
		cfg := testConfig(backend)
		cfg.URL = influxURL + "/influx"
		v, err := window(newFlux(t, cfg))
		notPass(t, v, err, ErrUnreachable, "influxdb.url")
	})
	t.Run("ping", func(t *testing.T) {
		if err := newFlux(t, testConfig(backend)).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// canaryPoints are n requests each of canary1 (healthy), canary2 (every other one answered 500) and
// canary3 (40 ms slower), one every 100 ms from start, with latencies drawn by lat.
func canaryPoints(backend string, start time.Time, n int, lat func(base, tail float64) float64) []string {
	var lines []string
	for i := range n {
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		lines = append(lines, point(backend, "canary1", 200, lat(3, 3), at))
		status := 200.0
		if i%2 == 0 {
			status = 500
		}
		lines = append(lines, point(backend, "canary2", status, lat(3, 3), at))
		lines = append(lines, point(backend, "canary3", 200, lat(40, 20), at))
	}
	return lines
}

func TestAnalyzeJudgesRealData(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(8, 9))
	lat := func(base, tail float64) float64 { return math.Round(base + rng.ExpFloat64()*tail) }
	var lines []string
	for i := range 2000 {
		lines = append(lines, point(backend, "stable1", 200, lat(3, 3), start.Add(time.Duration(i)*10*time.Millisecond)))
	}
	lines = append(lines, canaryPoints(backend, start, 200, lat)...)
	for i := range 200 {
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		tail := lat(3, 3)
		if i%5 == 0 {
			tail = lat(150, 30)
		}
		lines = append(lines, point(backend, "canary4", 200, tail, at))
		lines = append(lines, point(backend+"_alone", "canary1", 200, lat(3, 3), at))
	}
	write(t, lines)
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5), FixedSample: true}
	for _, tt := range []struct {
		name, backend, canary string
		share                 float64
		want                  verdict.Result
		reason                string
	}{
		{"healthy canary passes", backend, "canary1", 10, verdict.ResultPass, "checks pass (canary 200 requests, 0% errors"},
		{"half the canary's requests failing fails", backend, "canary2", 10, verdict.ResultFail, "canary error rate 50% > 1% (100 of 200 requests); exact binomial p = "},
		{"a slower canary fails against stable", backend, "canary3", 10, verdict.ResultFail, "Mann-Whitney U p = "},
		{"a fatter tail fails against stable", backend, "canary4", 10, verdict.ResultFail, "canary p95"},
		{"at 100% with no stable traffic the absolute checks decide", backend + "_alone", "canary1", 100, verdict.ResultPass, "checks pass (canary 200 requests, 0% errors"},
		{"below 100% with no stable traffic is inconclusive", backend + "_alone", "canary1", 50, verdict.ResultInconclusive, "stable has 0 requests"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var verdicts []verdict.Verdict
			for _, lang := range languages {
				v, err := NewAnalyzer(newStore(t, lang, testConfig(tt.backend, tt.canary)), th).Analyze(context.Background(), verdict.Window{From: start, To: start.Add(time.Minute), Share: tt.share})
				if err != nil || v.Result != tt.want || !strings.Contains(v.Reason, tt.reason) {
					t.Fatalf("%s: %s (%s), %v: want %s (%s)\n%s", lang, v.Result, v.Reason, err, tt.want, tt.reason, dumpChecks(v.Checks))
				}
				if len(v.Queries) == 0 {
					t.Errorf("%s: no query as evidence", lang)
				}
				verdicts = append(verdicts, v)
			}
			// Same data, same verdict: every check's numbers agree between the backends.
			a, b := verdicts[0], verdicts[1]
			if a.Reason != b.Reason || len(a.Checks) != len(b.Checks) {
				t.Fatalf("backends disagree: %q vs %q", a.Reason, b.Reason)
			}
			for i := range a.Checks {
				ca, cb := a.Checks[i], b.Checks[i]
				if ca.Name != cb.Name || ca.Result != cb.Result || ca.Detail != cb.Detail || ca.Canary != cb.Canary || ca.Stable != cb.Stable {
					t.Errorf("check %d differs:\n flux     %+v\n influxql %+v", i, ca, cb)
				}
			}
		})
	}
}

// TestBackendsAgree: on the same points the two backends return the same metrics, sample included
// (every latency, fewer than SampleSize).
func TestBackendsAgree(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-6 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(12, 13))
	var lines []string
	for i := range 4321 {
		server := []string{"stable1", "stable2", "canary1"}[i%3]
		status := []float64{200, 200, 200, 302, 404, 429, 500, 503}[rng.IntN(8)]
		lat := math.Round(rng.ExpFloat64() * 30)
		if rng.IntN(50) == 0 {
			lat = -1
		}
		lines = append(lines, point(backend, server, status, lat, start.Add(time.Duration(i)*7*time.Millisecond)))
	}
	write(t, lines)
	statuses, err := ParseStatuses([]string{"5xx", "429"})
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]verdict.Metrics
	for _, lang := range languages {
		cfg := testConfig(backend)
		cfg.ErrorStatuses = statuses
		c, s, _, err := newStore(t, lang, cfg).Metrics(context.Background(), start, start.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(c.Latencies)
		slices.Sort(s.Latencies)
		got = append(got, [2]verdict.Metrics{c, s})
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("flux and influxql disagree:\n flux     %s\n influxql %s", summary(got[0]), summary(got[1]))
	}
	if c := got[0][0]; c.Errors <= c.Errors5xx || c.Requests != 1440 {
		t.Errorf("429 not counted as an error, or requests lost: %s", summary(got[0]))
	}
}

func summary(m [2]verdict.Metrics) string {
	f := func(x verdict.Metrics) string {
		return fmt.Sprintf("{req %d err %d 5xx %d timed %d p50 %s p90 %s p95 %s p99 %s sample %d}", x.Requests, x.Errors, x.Errors5xx, x.Timed, x.P50, x.P90, x.P95, x.P99, len(x.Latencies))
	}
	return "canary " + f(m[0]) + " stable " + f(m[1])
}

// TestCustomMetrics runs a user's query template through each backend, with names that try to break
// out of the literals they are put into.
func TestCustomMetrics(t *testing.T) {
	backend := uniqueBackend(t) + ` '"${x}\\y`
	canaryName := `canary' OR "server" != 'x`
	start := time.Now().Add(-8 * time.Minute).Truncate(time.Second)
	var lines []string
	for i := range 100 {
		at := start.Add(time.Duration(i) * time.Millisecond)
		lines = append(lines, point(backend, canaryName, 200, 10, at), point(backend, "stable1", 200, 4, at), point(backend, "stable2", 200, 8, at))
	}
	write(t, lines)
	queries := map[string]string{
		// The mean server response time (tr is half of ta in these points).
		LanguageFlux: `from(bucket: {{.Bucket}})
  |> range(start: {{.Start}}, stop: {{.Stop}})
  |> filter(fn: (r) => r._measurement == {{.Measurement}} and r.backend == {{.Backend}} and r._field == "tr")
  |> filter(fn: (r) => {{.Servers}})
  |> group()
  |> mean()`,
		LanguageInfluxQL: `SELECT mean("tr") FROM {{.Measurement}} WHERE time >= {{.Start}} AND time < {{.Stop}} AND "backend" = {{.Backend}} AND {{.Servers}}`,
	}
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			q := newStore(t, lang, testConfig(backend, canaryName))
			cm := CustomMetric{Name: "tr_mean", Query: queries[lang], Max: ptr(4.0)}
			cv := q.Custom(context.Background(), cm, start, start.Add(time.Minute))
			if cv.Err != "" || cv.Canary != 5 || cv.Stable != 3 || len(cv.Queries) != 2 {
				t.Fatalf("custom metric: %+v", cv)
			}
			v := Judge(Input{Canary: verdict.Metrics{Requests: 100}, Stable: verdict.Metrics{Requests: 200}, Custom: []CustomValue{cv}, Window: verdict.Window{Share: 10}}, Thresholds{Custom: []CustomMetric{cm}})
			if c := v.Checks[len(v.Checks)-1]; c.Name != "custom_tr_mean" || c.Result != verdict.ResultFail || !strings.Contains(c.Detail, "canary 5 > 4") {
				t.Errorf("custom check: %+v", c)
			}
			// An empty window has no number: no data, never a pass.
			if cv := q.Custom(context.Background(), cm, start.Add(-time.Hour), start.Add(-59*time.Minute)); !strings.Contains(cv.Err, "no data") {
				t.Errorf("empty window: %+v", cv)
			}
			if cv := q.Custom(context.Background(), CustomMetric{Name: "bad", Query: "{{.Nope}}"}, start, start.Add(time.Minute)); !strings.Contains(cv.Err, "template") {
				t.Errorf("bad template: %+v", cv)
			}
			if cv := q.Custom(context.Background(), CustomMetric{Name: "bad", Query: "this is no query"}, start, start.Add(time.Minute)); cv.Err == "" {
				t.Errorf("bad query: %+v", cv)
			}
		})
	}
}

// BenchmarkAnalyze measures one step's full analysis (both queries, the sample, every test of the
// verdict) over a window of 1,000,000 requests: 10 minutes at about 1,667 requests a second, a tenth of
// them on the canary. Writing the points takes about a minute before the first iteration.
func BenchmarkAnalyze(b *testing.B) {
	backend := uniqueBackend(b)
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	const n = 1_000_000
	// 10 minutes = 600,000 ms: about 1.67 points per millisecond.
	writeLoad(b, backend, start, n, 600*time.Microsecond, rand.New(rand.NewPCG(3, 4)))
	th := Thresholds{MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5)}
	for _, lang := range languages {
		b.Run(lang, func(b *testing.B) {
			cfg := testConfig(backend)
			cfg.Timeout = 2 * time.Minute
			a := NewAnalyzer(newStore(b, lang, cfg), th)
			for b.Loop() {
				v, err := a.Analyze(context.Background(), verdict.Window{From: start, To: start.Add(10 * time.Minute), Share: 10})
				if err != nil {
					b.Fatal(err)
				}
				if total := v.Canary.Requests + v.Stable.Requests; total != n {
					b.Fatalf("%d requests in the window, want %d", total, n)
				}
			}
		})
	}
}

// writeLoad writes n requests, one every `every` from start, a tenth of them on canary1 and the rest
// on stable1 and stable2, one in a thousand answered 503, latencies exponential around 20 ms. The
// nanosecond timestamps keep points of one series from landing on the same time (which would overwrite
// one another).
func writeLoad(b *testing.B, backend string, start time.Time, n int, every time.Duration, rng *rand.Rand) {
	lines := make([]string, 0, 50_000)
	for i := range n {
		server := []string{"stable1", "stable2"}[i%2]
		if i%10 == 0 {
			server = "canary1"
		}
		status := 200.0
		if rng.IntN(1000) == 0 {
			status = 503
		}
		at := start.Add(time.Duration(i) * every)
		lines = append(lines, fmt.Sprintf("haproxy_request,frontend=fe_demo,backend=%s,server=%s status=%g,tr=%g,tt=%g,ta=%g %d",
			lpTag(backend), server, status, 1.0, 1.0, math.Round(rng.ExpFloat64()*20)+1, at.UnixNano()))
		if len(lines) == cap(lines) || i == n-1 {
			writeNS(b, lines)
			lines = lines[:0]
		}
	}
}

// TestAnnotate writes release events through each backend and reads them back as a dashboard would.
func TestAnnotate(t *testing.T) {
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			service := uniqueBackend(t)
			s := newStore(t, lang, testConfig("be"))
			at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			a := Annotation{At: at, Release: "r1", Service: service, Kind: "traffic", Phase: "baking", Text: `canary gets 10% "of" requests, a=b`, CanaryPercent: 10}
			if err := s.Annotate(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			q := fmt.Sprintf(`SELECT "text", "canary_percent", "kind" FROM "autogen"."%s" WHERE "service" = '%s'`, EventMeasurement, service)
			req, _ := http.NewRequest(http.MethodGet, influxURL+"/query?db=fridaymorning&q="+url.QueryEscape(q), nil)
			req.SetBasicAuth(influxUser, influxPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `canary gets 10% \"of\" requests, a=b`) || !strings.Contains(string(body), `"traffic"`) || !strings.Contains(string(body), `,10,`) {
				t.Errorf("the event did not come back: %s", body)
			}
		})
	}
	t.Run("InfluxDB down", func(t *testing.T) {
		cfg := testConfig("be")
		cfg.URL = "http://" + freeAddr()
		if err := newStore(t, LanguageInfluxQL, cfg).Annotate(context.Background(), Annotation{At: time.Now(), Text: "x"}); !errors.Is(err, ErrUnreachable) {
			t.Errorf("error %v", err)
		}
	})
}
