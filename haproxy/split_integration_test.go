//go:build integration

package haproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
)

// topology is a real HAProxy whose backend be_app has nStable stable and nCanary canary servers, each a
// tiny Go server that answers with its name, reachable through the Data Plane API test server and the
// admin socket.
type topology struct {
	*bed
	stable, canary []string
}

// topoConfig is what the options of newTopology change.
type topoConfig struct {
	cohorts bool
	params  string
}

// topoOption changes the topology newTopology builds.
type topoOption func(*topoConfig)

// withCohorts adds stacks/haproxy/cohorts.cfg to the backend and a cookie value to every server.
func withCohorts(c *topoConfig) { c.cohorts = true }

// withServerParams adds params (such as "slowstart 60s") to every server line.
func withServerParams(params string) topoOption {
	return func(c *topoConfig) { c.params = " " + params }
}

// newTopology starts the topology; template uses server-template lines (stable1..N, canary1..M).
func newTopology(t testing.TB, nStable, nCanary int, template bool, opts ...topoOption) *topology {
	t.Helper()
	var tc topoConfig
	for _, o := range opts {
		o(&tc)
	}
	tp := &topology{bed: &bed{backends: map[string]*httptest.Server{}}}
	var lines strings.Builder
	add := func(group string, n, weight int) {
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("%s%d", group, i)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
			t.Cleanup(srv.Close)
			tp.backends[name] = srv
			if group == "stable" {
				tp.stable = append(tp.stable, name)
			} else {
				tp.canary = append(tp.canary, name)
			}
			if !template {
				cookie := ""
				if tc.cohorts {
					cookie = " cookie " + name
				}
				fmt.Fprintf(&lines, "    server %s 127.0.0.1:%s weight %d%s%s\n", name, port(srv), weight, cookie, tc.params)
			}
		}
		if template {
			// A template gives every slot one address; real ones resolve tasks.<service> through DNS.
			fmt.Fprintf(&lines, "    server-template %s 1-%d 127.0.0.1:%s weight %d%s\n", group, n, port(tp.backends[group+"1"]), weight, tc.params)
		}
	}
	if tc.cohorts {
		snippet, err := os.ReadFile("../stacks/haproxy/cohorts.cfg")
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(snippet)
	}
	add("stable", nStable, 100)
	add("canary", nCanary, 0)
	dir := haproxyDir(t)
	fe := haproxytest.FreePort(t)
	cfg := fmt.Sprintf(`global
    stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
    pidfile %[1]s/haproxy.pid

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_app
    bind 127.0.0.1:%[2]d
    default_backend be_app

backend be_app
    balance roundrobin
    option httpchk GET /
    default-server check inter 200ms fall 1 rise 1
%[3]s`, dir, fe, lines.String())
	tp.hap = haproxytest.Start(t, dir, cfg)
	tp.dp, tp.api = tp.serve(t, dataplanetest.Config{})
	tp.frontend = fmt.Sprintf("http://127.0.0.1:%d/", fe)
	return tp
}

// haproxyDir is a short directory for HAProxy's sockets: unix socket paths are limited to 108 bytes,
// and subtest names make t.TempDir long.
func haproxyDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fmhap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ways are the ways of reaching HAProxy the tests run through.
var ways = []string{"dataplane-v2", "dataplane-v3", haproxy.ModeRuntime}

// by returns a client for the topology that reaches it the way named (one of ways), starting a v3
// test server over the topology's HAProxy for dataplane-v3.
func (tp *topology) by(t testing.TB, way string, mods ...func(*haproxy.Config)) *haproxy.Client {
	t.Helper()
	c, _ := tp.byAt(t, way, mods...)
	return c
}

// byAt is by, also returning the Data Plane API's root URL.
func (tp *topology) byAt(t testing.TB, way string, mods ...func(*haproxy.Config)) (*haproxy.Client, string) {
	t.Helper()
	mode, root := haproxy.ModeDataplane, tp.api.URL+"/v2"
	switch way {
	case "dataplane-v3":
		_, api := tp.serve(t, dataplanetest.Config{Major: 3})
		root = api.URL + "/v3"
	case haproxy.ModeRuntime:
		mode = way
	}
	return tp.clientAt(t, mode, root, mods...), root
}

// client returns a client for the topology in mode, waiting until both groups are up.
func (tp *topology) client(t testing.TB, mode string) *haproxy.Client {
	t.Helper()
	return tp.clientAt(t, mode, tp.api.URL+"/v2")
}

// clientAt is client with the Data Plane API at url.
func (tp *topology) clientAt(t testing.TB, mode, url string, mods ...func(*haproxy.Config)) *haproxy.Client {
	t.Helper()
	cfg := haproxy.Config{Mode: mode, URL: url, User: "admin", Password: password,
		RuntimeSocket: tp.hap.AdminSocket, Backend: "be_app",
		StableServers: []string{"stable*"}, CanaryServers: []string{"canary*"}, PollInterval: 50 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := haproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"stable", "canary"} {
		if err := c.WaitUp(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// load sends n requests through HAProxy with a few concurrent keep-alive clients and counts the answers
// by server name.
func (tp *topology) load(t testing.TB, n int) map[string]int {
	t.Helper()
	const workers = 8
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var failed error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for range jobs {
				resp, err := hc.Get(tp.frontend)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[string(body)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	return counts
}

// TestTrafficSplitsExactly: for 1/1, 3/1 and 2/2 stable/canary servers and shares of 5, 25 and 50%,
// 10,000 requests through a real HAProxy split within a percentage point of the requested share,
// counted from HAProxy's own statistics, through the Data Plane API and through the runtime socket.
func TestTrafficSplitsExactly(t *testing.T) {
	const requests = 10000
	for _, way := range ways {
		for _, topo := range [][2]int{{1, 1}, {3, 1}, {2, 2}} {
			t.Run(fmt.Sprintf("%s %d-%d", way, topo[0], topo[1]), func(t *testing.T) {
				tp := newTopology(t, topo[0], topo[1], false)
				c := tp.by(t, way)
				ctx := context.Background()
				for _, pct := range []float64{5, 25, 50} {
					weights, achieved, err := c.Shift(ctx, pct)
					if err != nil {
						t.Fatal(err)
					}
					before, err := c.Requests(ctx)
					if err != nil {
						t.Fatal(err)
					}
					counts := tp.load(t, requests)
					after, err := c.Requests(ctx)
					if err != nil {
						t.Fatal(err)
					}
					dc, ds := after["canary"]-before["canary"], after["stable"]-before["stable"]
					observed := 100 * float64(dc) / float64(dc+ds)
					// The client's own count must agree with HAProxy's.
					client := 0
					for _, n := range tp.canary {
						client += counts[n]
					}
					t.Logf("%g%%: weights %v, achieved %.2f%%, observed %.2f%% (HAProxy: %d canary of %d; client: %d)", pct, weights, achieved, observed, dc, dc+ds, client)
					if dc+ds != requests || int64(client) != dc {
						t.Errorf("HAProxy counted %d responses (%d canary), the client %d (%d canary)", dc+ds, dc, requests, client)
					}
					if d := observed - pct; d > 1 || d < -1 {
						t.Errorf("requested %g%%, HAProxy served %.2f%% to the canary", pct, observed)
					}
				}
			})
		}
	}
}

// TestServerTemplateGroups: groups given as patterns over server-template slots; slots in maintenance
// (no address, as when DNS has fewer tasks than slots) are left out of the share. Through the runtime
// socket: the Data Plane API v2 has no per-slot weights (see dataplane.setWeight).
func TestServerTemplateGroups(t *testing.T) {
	tp := newTopology(t, 3, 3, true)
	// canary2 and canary3 have no task behind them: HAProxy puts such slots in maintenance.
	for _, s := range []string{"canary2", "canary3"} {
		runtime(t, tp.hap.AdminSocket, "set server be_app/"+s+" state maint")
	}
	c := tp.client(t, haproxy.ModeRuntime)
	weights, achieved, err := c.Shift(context.Background(), 25)
	if err != nil {
		t.Fatal(err)
	}
	if achieved != 25 || len(weights) != 6 {
		t.Fatalf("weights %v, achieved %g: want 25%% over stable1..3 against canary1 alone", weights, achieved)
	}
	// All slots point at the same address, so HAProxy's statistics count, not the answers.
	tp.load(t, 4000)
	req, err := c.Requests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dp := tp.client(t, haproxy.ModeDataplane)
	if _, _, err := dp.Shift(context.Background(), 10); err == nil || !strings.Contains(err.Error(), "server-template") || !strings.Contains(err.Error(), "haproxy.mode runtime") {
		t.Errorf("a template slot's weight through the Data Plane API: %v, want an error saying to use the runtime socket", err)
	}
	if got := 100 * float64(req["canary"]) / float64(req["canary"]+req["stable"]); got < 24 || got > 26 {
		t.Fatalf("canary served %.2f%% of requests, want 25±1 (%v)", got, req)
	}
}

// BenchmarkShiftLive measures a traffic decision until HAProxy runs it: Shift reads the servers, writes
// the weights and reads them back from HAProxy's runtime, through each way of reaching HAProxy. Each
// sub-benchmark also times, in the same run, what the way costs at the least (ref-µs):
//
//   - runtime: one bare `set server … weight` round trip on the admin socket (its own connection);
//   - dataplane-v2/v3: the test server's own cost of one weight PUT plus one statistics read, as raw
//     HTTP calls on a kept-alive connection.
//
// and reports the shift's cost over it (x-ref). The reference is timed before and after the shifts and
// the two averaged, so that a change of the machine's load during the run weighs on both alike. Each
// shift here changes the canary's weight alone (2 stable servers stay at 100 and 1 canary goes 22, 67,
// 200 for 10 → 25 → 50%: see SplitWeights), so through the Data Plane API it needs one PUT and two
// reads at the least: x-floor is the shift's cost over that floor.
func BenchmarkShiftLive(b *testing.B) {
	for _, way := range ways {
		b.Run(way, func(b *testing.B) {
			tp := newTopology(b, 2, 1, false)
			c, root := tp.byAt(b, way)
			ctx := context.Background()
			var ref, floor time.Duration
			reference := func() {
				if way == haproxy.ModeRuntime {
					r := timeOf(200, func(i int) { runtime(b, tp.hap.AdminSocket, fmt.Sprintf("set server be_app/canary1 weight %d", i%2)) })
					ref, floor = ref+r/2, floor+r/2
					return
				}
				put, stats := rawAPICost(b, root, 100)
				ref, floor = ref+(put+stats)/2, floor+(put+2*stats)/2
				b.Logf("%s: one weight PUT %s, one statistics read %s", way, put, stats)
			}
			reference()
			shares := []float64{10, 25, 50}
			i := 0
			start := time.Now()
			for b.Loop() {
				if _, _, err := c.Shift(ctx, shares[i%len(shares)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			per := time.Since(start) / time.Duration(i)
			reference()
			b.ReportMetric(float64(ref.Microseconds()), "ref-µs")
			b.ReportMetric(float64(per)/float64(ref), "x-ref")
			b.ReportMetric(float64(per)/float64(floor), "x-floor")
			b.Logf("%s: shift %s, reference %s (x%.2f), floor %s (x%.2f)", way, per, ref, float64(per)/float64(ref), floor, float64(per)/float64(floor))
		})
	}
}

// timeOf is the mean duration of n calls of f.
func timeOf(n int, f func(i int)) time.Duration {
	start := time.Now()
	for i := range n {
		f(i)
	}
	return time.Since(start) / time.Duration(n)
}

// rawAPICost times the Data Plane API at root: one PUT of canary1's weight (the whole
// server, with the version the previous answer gave) and one statistics read, each over n raw calls.
func rawAPICost(b *testing.B, root string, n int) (put, stats time.Duration) {
	b.Helper()
	hc := &http.Client{}
	do := func(method, path string, body []byte) (http.Header, []byte) {
		req, _ := http.NewRequest(method, root+path, bytes.NewReader(body))
		req.SetBasicAuth("admin", password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return resp.Header, raw
	}
	srv, q := "/services/haproxy/configuration/backends/be_app/servers/canary1", "?"
	if strings.HasSuffix(root, "/v2") {
		srv, q = "/services/haproxy/configuration/servers/canary1", "?backend=be_app&"
	}
	hdr, raw := do("GET", srv+strings.TrimSuffix(q, "&"), nil)
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(raw, &obj)
	if d, ok := obj["data"]; ok { // v2's envelope
		var env struct {
			Version int64 `json:"_version"`
		}
		_ = json.Unmarshal(raw, &env)
		hdr.Set("Configuration-Version", strconv.FormatInt(env.Version, 10))
		obj = nil
		_ = json.Unmarshal(d, &obj)
	}
	version := hdr.Get("Configuration-Version")
	put = timeOf(n, func(i int) {
		obj["weight"] = json.RawMessage(strconv.Itoa(10 + i%2))
		body, _ := json.Marshal(obj)
		h, _ := do("PUT", srv+q+"version="+version, body)
		version = h.Get("Configuration-Version")
	})
	stats = timeOf(n, func(int) { do("GET", "/services/haproxy/stats/native?type=server&parent=be_app", nil) })
	return put, stats
}
