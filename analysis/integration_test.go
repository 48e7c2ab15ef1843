//go:build integration

package analysis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// These tests run against a real InfluxDB 1.8.10 with Flux enabled, started for this package on free
// loopback ports (the binary from the test bed: $FM_INFLUXD or .testbed/tools/influxd).

var influxURL string

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestMain(m *testing.M) {
	bin := os.Getenv("FM_INFLUXD")
	if bin == "" {
		bin, _ = filepath.Abs("../.testbed/tools/influxd")
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "no influxd at %s: run make testbed (it builds InfluxDB 1.8.10) or set FM_INFLUXD\n", bin)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "fm-influx")
	if err != nil {
		panic(err)
	}
	httpPort := freePort()
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = "%[2]s/meta"
[data]
  dir = "%[2]s/data"
  wal-dir = "%[2]s/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:%[3]d"
  log-enabled = false
  flux-enabled = true
[logging]
  level = "warn"
`, freePort(), dir, httpPort)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		panic(err)
	}
	cmd := exec.Command(bin, "-config", confPath)
	logFile, _ := os.Create(filepath.Join(dir, "influxd.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	influxURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	up := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(influxURL + "/ping"); err == nil {
			resp.Body.Close()
			up = true
			break
		}
	}
	code := 1
	if up {
		resp, err := http.PostForm(influxURL+"/query", url.Values{"q": {"CREATE DATABASE fridaymorning"}})
		if err == nil {
			resp.Body.Close()
			code = m.Run()
		}
	} else {
		log, _ := os.ReadFile(filepath.Join(dir, "influxd.log"))
		fmt.Fprintf(os.Stderr, "influxd did not come up:\n%s\n", log)
	}
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
	os.RemoveAll(dir)
	os.Exit(code)
}

// write stores points through the v1 write API, ms precision.
func write(t testing.TB, lines []string) {
	t.Helper()
	for len(lines) > 0 {
		n := min(len(lines), 5000)
		resp, err := http.Post(influxURL+"/write?db=fridaymorning&precision=ms", "text/plain", strings.NewReader(strings.Join(lines[:n], "\n")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s", resp.Status)
		}
		lines = lines[n:]
	}
}

func point(backend, server string, status, tt float64, at time.Time) string {
	return fmt.Sprintf("haproxy_request,frontend=fe,backend=%s,server=%s status=%g,tr=%g,tt=%g,ta=%g %d", backend, server, status, tt, tt, tt, at.UnixMilli())
}

func newFlux(t testing.TB, backend string, canary ...string) *Flux {
	t.Helper()
	if len(canary) == 0 {
		canary = []string{"canary1"}
	}
	f, err := NewFlux(Config{URL: influxURL, Bucket: "fridaymorning/autogen", Backend: backend,
		StableServers: []string{"stable1", "stable2"}, CanaryServers: canary})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// nearestRank is the exact percentile exact_selector returns: the value at rank ceil(q·n).
func nearestRank(sorted []float64, q float64) float64 {
	i := int(float64(len(sorted))*q+0.999999999) - 1
	return sorted[max(i, 0)]
}

func TestMetricsOfKnownDistributions(t *testing.T) {
	backend := fmt.Sprintf("be_known_%d", time.Now().UnixNano())
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	var lines []string
	var canaryLat, stableLat []float64
	var canaryErrors int64
	// Canary: 1000 requests with latencies 1..1000 ms in random order, every 8th a 503.
	perm := rng.Perm(1000)
	for i, p := range perm {
		status := 200.0
		if i%8 == 0 {
			status = 503
			canaryErrors++
		}
		lat := float64(p + 1)
		canaryLat = append(canaryLat, lat)
		lines = append(lines, point(backend, "canary1", status, lat, start.Add(time.Duration(i)*time.Millisecond)))
	}
	// Stable: 3000 requests over two servers, exponential latencies, no errors; plus requests of other
	// servers and backends that must not be counted.
	for i := 0; i < 3000; i++ {
		lat := float64(int(rng.ExpFloat64()*40) + 1)
		stableLat = append(stableLat, lat)
		lines = append(lines, point(backend, fmt.Sprintf("stable%d", 1+i%2), 200, lat, start.Add(time.Duration(i)*time.Millisecond+500*time.Microsecond)))
	}
	for i := 0; i < 100; i++ {
		lines = append(lines, point(backend, "other1", 500, 9999, start.Add(time.Duration(i)*time.Millisecond)))
		lines = append(lines, point(backend+"x", "canary1", 500, 9999, start.Add(time.Duration(i)*time.Millisecond)))
		// An aborted request: no response time; counted as a request, not as a latency.
		if i < 3 {
			lines = append(lines, point(backend, "canary1", -1, -1, start.Add(time.Duration(2000+i)*time.Millisecond)))
		}
	}
	write(t, lines)
	sort.Float64s(canaryLat)
	sort.Float64s(stableLat)

	canary, stable, queries, err := newFlux(t, backend).Metrics(context.Background(), start, start.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if canary.Requests != 1003 || canary.Errors != canaryErrors || stable.Requests != 3000 || stable.Errors != 0 {
		t.Fatalf("counts: canary %+v, stable %+v", canary, stable)
	}
	if want := 100 * float64(canaryErrors) / 1003; canary.ErrorRate != want {
		t.Errorf("canary error rate %g, want %g", canary.ErrorRate, want)
	}
	// exact_selector returns observed values: the nearest-rank percentiles, exactly.
	for _, c := range []struct {
		name   string
		got    time.Duration
		sorted []float64
		q      float64
	}{
		{"canary p50", canary.P50, canaryLat, 0.5}, {"canary p95", canary.P95, canaryLat, 0.95}, {"canary p99", canary.P99, canaryLat, 0.99},
		{"stable p50", stable.P50, stableLat, 0.5}, {"stable p95", stable.P95, stableLat, 0.95}, {"stable p99", stable.P99, stableLat, 0.99},
	} {
		want := ms(nearestRank(c.sorted, c.q))
		if c.got != want {
			t.Errorf("%s = %s, want %s", c.name, c.got, want)
		}
	}
	if canary.P95 != 950*time.Millisecond {
		t.Errorf("canary p95 of 1..1000 ms = %s, want 950ms", canary.P95)
	}
	if len(queries) != 1 || !strings.Contains(queries[0], backend) {
		t.Errorf("queries %v", queries)
	}
}

func TestFailsClosed(t *testing.T) {
	backend := fmt.Sprintf("be_closed_%d", time.Now().UnixNano())
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	var lines []string
	for i := 0; i < 500; i++ {
		lines = append(lines, point(backend, "stable1", 200, 5, start.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := 0; i < 10; i++ {
		lines = append(lines, point(backend, "canary1", 200, 5, start.Add(time.Duration(i)*time.Millisecond)))
	}
	write(t, lines)
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1}
	ctx := context.Background()

	t.Run("no canary points: inconclusive, ErrNoData", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, backend, "canary9"), th).Analyze(ctx, start, start.Add(time.Minute), 10)
		if v.Result != ResultInconclusive || !errors.Is(err, ErrNoData) {
			t.Fatalf("%s, %v", v.Result, err)
		}
	})
	t.Run("empty window: inconclusive, ErrNoData", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, backend), th).Analyze(ctx, start.Add(-time.Hour), start.Add(-59*time.Minute), 10)
		if v.Result != ResultInconclusive || !errors.Is(err, ErrNoData) {
			t.Fatalf("%s, %v", v.Result, err)
		}
	})
	t.Run("too few canary requests: inconclusive", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, backend), th).Analyze(ctx, start, start.Add(time.Minute), 10)
		if v.Result != ResultInconclusive || err != nil || !strings.Contains(v.Reason, "canary has 10 requests") {
			t.Fatalf("%s (%s), %v", v.Result, v.Reason, err)
		}
	})
	t.Run("missing backend tag: no data", func(t *testing.T) {
		v, err := NewAnalyzer(newFlux(t, "be_nobody"), th).Analyze(ctx, start, start.Add(time.Minute), 10)
		if v.Result == ResultPass || !errors.Is(err, ErrNoData) {
			t.Fatalf("%s, %v", v.Result, err)
		}
	})
	t.Run("hostile server name does not widen the query", func(t *testing.T) {
		f := newFlux(t, backend, `canary9" or r.server != "`)
		_, _, _, err := f.Metrics(ctx, start, start.Add(time.Minute))
		if !errors.Is(err, ErrNoData) {
			t.Fatalf("a name that tries to match every server matched something: %v", err)
		}
	})
	t.Run("unreachable InfluxDB: not a pass, names the URL, never the token", func(t *testing.T) {
		closed := fmt.Sprintf("http://127.0.0.1:%d", freePort())
		f, err := NewFlux(Config{URL: closed, Token: "admin:topsecret", Bucket: "fridaymorning/autogen", Backend: backend,
			StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		v, err := NewAnalyzer(f, th).Analyze(ctx, start, start.Add(time.Minute), 10)
		if v.Result == ResultPass || !errors.Is(err, ErrUnreachable) {
			t.Fatalf("%s, %v", v.Result, err)
		}
		if !strings.Contains(err.Error(), closed) || strings.Contains(err.Error(), "topsecret") || strings.Contains(v.Reason, "topsecret") {
			t.Fatalf("error %q must name the URL and not the token", err)
		}
		if err := f.Ping(ctx); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Ping = %v", err)
		}
	})
	t.Run("ping", func(t *testing.T) {
		if err := newFlux(t, backend).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAnalyzeJudgesRealData(t *testing.T) {
	backend := fmt.Sprintf("be_judge_%d", time.Now().UnixNano())
	start := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	var lines []string
	for i := 0; i < 900; i++ {
		lines = append(lines, point(backend, "stable1", 200, float64(3+i%5), start.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := 0; i < 100; i++ {
		lines = append(lines, point(backend, "canary1", 200, float64(3+i%5), start.Add(time.Duration(i)*time.Millisecond)))
		status := 200.0
		if i%2 == 0 {
			status = 500
		}
		lines = append(lines, point(backend, "canary2", status, float64(3+i%5), start.Add(time.Duration(i)*time.Millisecond)))
	}
	write(t, lines)
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, MaxP95Ratio: 1.25, LatencySlack: ms(5)}
	ctx := context.Background()
	v, err := NewAnalyzer(newFlux(t, backend, "canary1"), th).Analyze(ctx, start, start.Add(time.Minute), 10)
	if err != nil || v.Result != ResultPass {
		t.Fatalf("healthy canary: %s (%s), %v", v.Result, v.Reason, err)
	}
	v, err = NewAnalyzer(newFlux(t, backend, "canary2"), th).Analyze(ctx, start, start.Add(time.Minute), 10)
	if err != nil || v.Result != ResultFail || !strings.Contains(v.Reason, "canary error rate 50% > 1%") {
		t.Fatalf("50%% errors: %s (%s), %v", v.Result, v.Reason, err)
	}
}
