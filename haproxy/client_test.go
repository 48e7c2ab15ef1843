package haproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"
)

// stubAPI is a minimal Data Plane API for the error paths a real server cannot produce on demand (a
// write failing midway). It keeps weights in memory, applies them "live" at once, records PUTs in order
// and fails the PUTs of servers listed in failPut.
type stubAPI struct {
	mu      sync.Mutex
	weights map[string]int64
	status  map[string]string // default UP
	version int64
	puts    []string
	failPut map[string]bool
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	server := func(n string) *models.Server {
		wt := s.weights[n]
		return &models.Server{Name: n, Address: "127.0.0.1", ServerParams: models.ServerParams{Weight: &wt}}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v2/services/haproxy")
	switch {
	case r.Method == "GET" && path == "/configuration/servers":
		var list models.Servers
		for _, n := range []string{"s1", "s2", "c1"} {
			list = append(list, server(n))
		}
		json.NewEncoder(w).Encode(map[string]any{"_version": s.version, "data": list})
	case r.Method == "GET" && strings.HasPrefix(path, "/configuration/servers/"):
		json.NewEncoder(w).Encode(map[string]any{"_version": s.version, "data": server(strings.TrimPrefix(path, "/configuration/servers/"))})
	case r.Method == "PUT" && strings.HasPrefix(path, "/configuration/servers/"):
		var srv models.Server
		json.NewDecoder(r.Body).Decode(&srv)
		s.puts = append(s.puts, fmt.Sprintf("%s=%d", srv.Name, *srv.Weight))
		if s.failPut[srv.Name] {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"code":500,"message":"runtime socket gone"}`)
			return
		}
		s.weights[srv.Name] = *srv.Weight
		s.version++
		json.NewEncoder(w).Encode(&srv)
	case r.Method == "GET" && path == "/stats/native":
		var stats []*models.NativeStat
		for _, n := range []string{"s1", "s2", "c1"} {
			wt := s.weights[n]
			status := "UP"
			if st, ok := s.status[n]; ok {
				status = st
			}
			stats = append(stats, &models.NativeStat{Name: n, Type: "server", BackendName: "be", Stats: &models.NativeStatStats{Weight: &wt, Status: status, CheckStatus: "L7OK"}})
		}
		json.NewEncoder(w).Encode(models.NativeStats{{RuntimeAPI: "stub", Stats: stats}})
	default:
		w.WriteHeader(404)
	}
}

func newStub(t *testing.T, weights map[string]int64) (*stubAPI, *Client) {
	t.Helper()
	stub := &stubAPI{weights: weights, version: 1, failPut: map[string]bool{}, status: map[string]string{}}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL + "/v2", User: "u", Password: "p", Backend: "be",
		StableServers: []string{"s1", "s2"}, CanaryServers: []string{"c1"}, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return stub, c
}

func TestShiftWriteOrder(t *testing.T) {
	tests := []struct {
		name  string
		from  map[string]int64
		pct   float64
		order string
	}{
		// Going to 0 takes the canary out before stable is touched: an abort is immediate.
		{"abort: canary first", map[string]int64{"s1": 192, "s2": 192, "c1": 128}, 0, "c1=0,s1=100,s2=100"},
		// From 0 to 25% with stable below base (weights set by hand): raising the canary first would
		// overshoot (67 against 2×50), so stable goes first and the share never leaves 0..25%.
		{"raise from zero: no overshoot", map[string]int64{"s1": 50, "s2": 50, "c1": 0}, 25, "s1=100,s2=100,c1=67"},
		// From stable at base, only the canary changes.
		{"raise from base: the canary alone", map[string]int64{"s1": 100, "s2": 100, "c1": 0}, 25, "c1=67"},
		// Lowering 50% → 25%: canary down first keeps the share between the two.
		{"lower: canary first", map[string]int64{"s1": 128, "s2": 128, "c1": 256}, 25, "c1=67,s1=100,s2=100"},
		// From 25% to 100%: lowering the canary to its base first would dip below 25%, so stable goes first.
		{"to 100: no dip", map[string]int64{"s1": 192, "s2": 192, "c1": 128}, 100, "s1=0,s2=0,c1=100"},
		// Back from 100 to 0: canary to 0 first would leave no weight at all, so stable comes back first.
		{"from 100 to 0: stable first, never all zero", map[string]int64{"s1": 0, "s2": 0, "c1": 100}, 0, "s1=100,s2=100,c1=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub, c := newStub(t, tt.from)
			_, achieved, err := c.Shift(context.Background(), tt.pct)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(stub.puts, ","); got != tt.order {
				t.Fatalf("writes %s, want %s", got, tt.order)
			}
			if achieved < tt.pct-1 || achieved > tt.pct+1 {
				t.Fatalf("achieved %g", achieved)
			}
		})
	}
}

func TestShiftLeavesOutServersThatTakeNoTraffic(t *testing.T) {
	stub, c := newStub(t, map[string]int64{"s1": 100, "s2": 100, "c1": 0})
	stub.status["s2"] = "DOWN"
	w, achieved, err := c.Shift(context.Background(), 25)
	if err != nil {
		t.Fatal(err)
	}
	// One usable stable server: 25% is s1 against c1 alone (33 against 100, 24.8%); s2 gets stable's
	// weight, to rejoin in step.
	if math.Abs(achieved-25) > 0.5 || w["s2"] != w["s1"] || 100*float64(w["c1"])/float64(w["c1"]+w["s1"]) != achieved {
		t.Fatalf("weights %v, achieved %g", w, achieved)
	}
	stub.status["c1"] = "MAINT"
	if _, _, err := c.Shift(context.Background(), 50); !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "c1 (MAINT") {
		t.Fatalf("err = %v, want ErrNoServer naming c1", err)
	}
	// Going back to 0 needs no canary server and works.
	if w, _, err := c.Shift(context.Background(), 0); err != nil || w["c1"] != 0 {
		t.Fatalf("weights %v, err %v", w, err)
	}
}

func TestShiftPutsOldWeightsBackWhenAWriteFails(t *testing.T) {
	from := map[string]int64{"s1": 100, "s2": 100, "c1": 0}
	stub, c := newStub(t, map[string]int64{"s1": 100, "s2": 100, "c1": 0})
	stub.failPut["s2"] = true
	// 75% needs more than the canary's 256 against 2×100: stable is written too (c1, s1, then s2).
	_, _, err := c.Shift(context.Background(), 75)
	if err == nil || !strings.Contains(err.Error(), "runtime socket gone") || !strings.Contains(err.Error(), "old weights were put back") {
		t.Fatalf("err = %v", err)
	}
	for n, w := range from {
		if stub.weights[n] != w {
			t.Errorf("%s left at %d, want its old %d (writes: %v)", n, stub.weights[n], w, stub.puts)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := Config{URL: "http://127.0.0.1:5555/v2", Backend: "be", StableServers: []string{"s"}, CanaryServers: []string{"c"}}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"not a URL", func(c *Config) { c.URL = "127.0.0.1:5555" }, "not an http(s) URL"},
		{"credentials in the URL", func(c *Config) { c.URL = "http://admin:pw@127.0.0.1/v2" }, "must not carry credentials"},
		{"no backend", func(c *Config) { c.Backend = "" }, "haproxy.backend"},
		{"no canary servers", func(c *Config) { c.CanaryServers = nil }, "canary_servers"},
		{"server in both groups", func(c *Config) { c.CanaryServers = []string{"s"} }, "listed twice"},
		{"unknown mode", func(c *Config) { c.Mode = "ssh" }, `haproxy.mode "ssh"`},
		{"runtime mode without a socket", func(c *Config) { c.Mode = ModeRuntime }, "haproxy.runtime_socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error repeats the credentials: %v", err)
			}
		})
	}
}

// TestShiftToZeroKeepsWhatItWrote: on the way to 0 every write lowers the canary's share, so when a
// later write fails the servers already written are left as they are: putting the canary's weight
// back would undo the part of an abort that worked.
func TestShiftToZeroKeepsWhatItWrote(t *testing.T) {
	stub, c := newStub(t, map[string]int64{"s1": 192, "s2": 192, "c1": 128})
	stub.failPut["s2"] = true
	_, _, err := c.Shift(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), "runtime socket gone") || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("err = %v, want the write's error, saying the weights written are kept", err)
	}
	if stub.weights["c1"] != 0 || stub.weights["s1"] != 100 {
		t.Errorf("weights %v after writes %v: want c1 left at 0 and s1 at 100", stub.weights, stub.puts)
	}
}

// TestShiftsOfAReleaseWriteTheCanaryAlone: from stable at base, the shifts of a release (10 → 25 → 50%,
// 2 stable servers and 1 canary) write one server each, the canary: each write is a validation of
// the configuration through the Data Plane API.
func TestShiftsOfAReleaseWriteTheCanaryAlone(t *testing.T) {
	stub, c := newStub(t, map[string]int64{"s1": 100, "s2": 100, "c1": 0})
	for _, pct := range []float64{10, 25, 50} {
		stub.puts = nil
		if _, _, err := c.Shift(context.Background(), pct); err != nil {
			t.Fatal(err)
		}
		if len(stub.puts) != 1 || !strings.HasPrefix(stub.puts[0], "c1=") {
			t.Fatalf("shift to %g%% writes %q, want the canary alone", pct, stub.puts)
		}
	}
}
