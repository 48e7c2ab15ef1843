//go:build integration

package haproxy_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	models5 "github.com/haproxytech/client-native/v5/models"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
)

// These tests hold the Data Plane API test server's v3 to what dataplaneapi 3.3 does, and the client to
// both majors, over the same real HAProxy.

// v3 starts a v3 test server over the bed's HAProxy and returns it and its /v3 root.
func (b *bed) v3(t testing.TB, noRuntimeWeights bool) (*dataplanetest.Server, string) {
	t.Helper()
	dp, api := b.serve(t, dataplanetest.Config{Major: 3, NoRuntimeWeights: noRuntimeWeights})
	return dp, api.URL + "/v3"
}

// waitReloads polls until the server has reloaded HAProxy n times, the new worker answers HAProxy's
// admin socket and it has checked every server. The server counts a reload once the master took it,
// while the old worker may still answer the socket: a read then gets the old worker's states, and the
// next one the new worker's checks still starting (check INI), which a shift takes for servers that
// take no traffic.
func waitReloads(t testing.TB, dp *dataplanetest.Server, hap *haproxytest.Instance, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for dp.Reloads() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d reloads after 10s, want %d", dp.Reloads(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		worker, answers, stat := "", "", ""
		if procs := strings.SplitN(runtime(t, hap.MasterSocket, "show proc"), "# workers\n", 2); len(procs) == 2 {
			worker = strings.Fields(procs[1] + " ")[0]
		}
		for _, l := range strings.Split(runtime(t, hap.AdminSocket, "show info"), "\n") {
			if v, ok := strings.CutPrefix(l, "Pid: "); ok {
				answers = strings.TrimSpace(v)
			}
		}
		if worker != "" && worker == answers {
			stat = runtime(t, hap.AdminSocket, "show stat -1 4 -1")
			if !strings.Contains(stat, "INI,") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy reloaded, but its new worker %q does not answer the admin socket (%q does) with every server checked after 10s:\n%s", worker, answers, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDataPlaneAPIv3Faithfulness(t *testing.T) {
	b := newBed(t)
	dp, root := b.v3(t, false)
	call := func(method, path string, body any) (int, http.Header, []byte) {
		t.Helper()
		return apiCall(t, root, method, path, "admin", password, body)
	}
	const srvPath = "/services/haproxy/configuration/backends/be_app/servers"

	code, _, body := call("GET", "/info", nil)
	var info struct{ API struct{ Version string } }
	if code != 200 || json.Unmarshal(body, &info) != nil || !strings.HasPrefix(info.API.Version, "v3.3.1") {
		t.Fatalf("info: %d %s", code, body)
	}
	if code, _, _ := apiCall(t, strings.TrimSuffix(root, "/v3"), "GET", "/v2/info", "admin", password, nil); code != 404 {
		t.Errorf("/v2/info on a v3 API: %d, want 404", code)
	}

	code, hdr, body := call("GET", srvPath, nil)
	var list []map[string]any
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != 3 {
		t.Fatalf("servers: %d %s (want a bare array of 3)", code, body)
	}
	v0, err := strconv.Atoi(hdr.Get("Configuration-Version"))
	if err != nil {
		t.Fatalf("servers: no Configuration-Version header (%v)", hdr)
	}
	if code, _, body := call("GET", "/services/haproxy/configuration/backends/be_nope/servers", nil); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("servers of a missing backend: %d %s, want 200 []", code, body)
	}

	code, _, body = call("GET", srvPath+"/canary1", nil)
	var one map[string]any
	if code != 200 || json.Unmarshal(body, &one) != nil || one["name"] != "canary1" || one["weight"] != float64(0) || one["_version"] != nil {
		t.Fatalf("server: %d %s (want a bare object)", code, body)
	}

	one["weight"] = 42
	t.Run("weight-only PUT: 200, no Reload-ID, runtime and config changed, no reload", func(t *testing.T) {
		code, hdr, body := call("PUT", fmt.Sprintf("%s/canary1?version=%d", srvPath, v0), one)
		if code != 200 || hdr.Get("Reload-ID") != "" {
			t.Fatalf("PUT: %d %v %s", code, hdr, body)
		}
		if got := hdr.Get("Configuration-Version"); got != strconv.Itoa(v0+1) {
			t.Errorf("Configuration-Version %q, want %d", got, v0+1)
		}
		if got := runtime(t, b.hap.AdminSocket, "get weight be_app/canary1"); !strings.Contains(got, "42 (initial 0)") {
			t.Errorf("runtime weight: %s", got)
		}
		if cfg, _ := os.ReadFile(b.hap.ConfigPath); !strings.Contains(string(cfg), "server canary1 127.0.0.1:"+port(b.backends["canary1"])+" weight 42") {
			t.Errorf("config file lacks the new weight:\n%s", cfg)
		}
		if dp.Reloads() != 0 {
			t.Errorf("%d reloads", dp.Reloads())
		}
	})
	t.Run("stale version: 409 version mismatch", func(t *testing.T) {
		if code, _, body := call("PUT", fmt.Sprintf("%s/canary1?version=%d", srvPath, v0), one); code != 409 || !strings.Contains(string(body), "version mismatch") {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("neither version nor transaction: 400", func(t *testing.T) {
		if code, _, body := call("PUT", srvPath+"/canary1", one); code != 400 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("no address: 422", func(t *testing.T) {
		if code, _, body := call("PUT", fmt.Sprintf("%s/canary1?version=%d", srvPath, v0+1), map[string]any{"name": "canary1", "weight": 5}); code != 422 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("unknown server: 404", func(t *testing.T) {
		if code, _, _ := call("GET", srvPath+"/nope", nil); code != 404 {
			t.Fatalf("%d", code)
		}
	})
	t.Run("a change the runtime cannot apply: 202 with a Reload-ID, and a reload", func(t *testing.T) {
		_, hdr, _ := call("GET", srvPath+"/stable1", nil)
		_, _, body := call("GET", srvPath+"/stable1", nil)
		var s1 map[string]any
		_ = json.Unmarshal(body, &s1)
		s1["tlsv10"] = "disabled"
		code, rh, body := call("PUT", srvPath+"/stable1?version="+hdr.Get("Configuration-Version"), s1)
		if code != 202 || rh.Get("Reload-ID") == "" {
			t.Fatalf("%d %v %s", code, rh, body)
		}
		waitReloads(t, dp, b.hap, 1)
		if cfg, _ := os.ReadFile(b.hap.ConfigPath); !strings.Contains(string(cfg), "no-tlsv10") {
			t.Errorf("config lacks no-tlsv10:\n%s", cfg)
		}
	})
	t.Run("runtime server endpoint takes a weight (3.3.1)", func(t *testing.T) {
		rt := "/services/haproxy/runtime/backends/be_app/servers/canary1"
		code, _, body := call("PUT", rt, map[string]any{"weight": 7})
		var got map[string]any
		if code != 200 || json.Unmarshal(body, &got) != nil || got["weight"] != float64(7) || got["iweight"] == nil || got["uweight"] != float64(7) {
			t.Fatalf("%d %s", code, body)
		}
		if w := runtime(t, b.hap.AdminSocket, "get weight be_app/canary1"); !strings.HasPrefix(w, "7 ") {
			t.Errorf("runtime weight %s, want 7", w)
		}
		if cfg, _ := os.ReadFile(b.hap.ConfigPath); !strings.Contains(string(cfg), " weight 42") {
			t.Errorf("the runtime endpoint changed the configuration:\n%s", cfg)
		}
		if code, _, _ := call("GET", "/services/haproxy/runtime/backends/be_app/servers/nope", nil); code != 404 {
			t.Errorf("unknown runtime server: %d", code)
		}
	})
	t.Run("before 3.3.1: the runtime endpoint answers 200 and ignores the weight", func(t *testing.T) {
		_, old := b.v3(t, true)
		before := runtime(t, b.hap.AdminSocket, "get weight be_app/canary1")
		code, _, body := apiCall(t, old, "PUT", "/services/haproxy/runtime/backends/be_app/servers/canary1", "admin", password, map[string]any{"weight": 9})
		var got map[string]any
		if code != 200 || json.Unmarshal(body, &got) != nil || got["weight"] != nil {
			t.Fatalf("%d %s", code, body)
		}
		if after := runtime(t, b.hap.AdminSocket, "get weight be_app/canary1"); after != before {
			t.Errorf("weight changed: %s → %s", before, after)
		}
	})
	t.Run("stats: one native_stats object", func(t *testing.T) {
		code, _, body := call("GET", "/services/haproxy/stats/native?type=server&parent=be_app", nil)
		var st struct {
			Stats []map[string]any `json:"stats"`
		}
		if code != 200 || json.Unmarshal(body, &st) != nil || len(st.Stats) != 3 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("wrong password: 401", func(t *testing.T) {
		if code, _, _ := apiCall(t, root, "GET", "/info", "admin", "wrong", nil); code != 401 {
			t.Fatalf("%d", code)
		}
	})
}

// TestWeightWritesTouchOnlyTheWeight: a server with a setting the v5 models do not know in v3
// (tlsv10: disabled, from no-tlsv10) keeps it across shifts, and shifts never reload HAProxy. The
// control shows the test can fail: the same server through a v5 model round trip is a reload.
func TestWeightWritesTouchOnlyTheWeight(t *testing.T) {
	b := newBed(t)
	dp, root := b.v3(t, false)
	const path = "/services/haproxy/configuration/backends/be_app/servers/stable1"
	_, hdr, body := apiCall(t, root, "GET", path, "admin", password, nil)
	var s1 map[string]any
	_ = json.Unmarshal(body, &s1)
	s1["tlsv10"] = "disabled"
	if code, _, body := apiCall(t, root, "PUT", path+"?version="+hdr.Get("Configuration-Version"), "admin", password, s1); code != 202 {
		t.Fatalf("setup: %d %s", code, body)
	}
	waitReloads(t, dp, b.hap, 1)

	c := b.client(t, func(c *haproxy.Config) { c.URL = root })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, g := range []string{"stable", "canary"} {
		if err := c.WaitUp(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, pct := range []float64{10, 50, 0} {
		if _, _, err := c.Shift(ctx, pct); err != nil {
			t.Fatal(err)
		}
	}
	if n := dp.Reloads(); n != 1 {
		t.Errorf("%d reloads after the shifts, want none beyond the setup's", n-1)
	}
	if cfg, _ := os.ReadFile(b.hap.ConfigPath); !strings.Contains(string(cfg), "no-tlsv10") {
		t.Errorf("a weight write dropped no-tlsv10:\n%s", cfg)
	}

	t.Run("control: a v5 model round trip is a reload", func(t *testing.T) {
		_, hdr, body := apiCall(t, root, "GET", path, "admin", password, nil)
		var m models5.Server
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		w := *m.Weight + 1
		m.Weight = &w
		code, rh, body := apiCall(t, root, "PUT", path+"?version="+hdr.Get("Configuration-Version"), "admin", password, &m)
		if code != 202 || rh.Get("Reload-ID") == "" {
			t.Fatalf("%d %s: want 202 with a reload", code, body)
		}
	})
}

// TestClientFindsTheAPIVersion: a bare base URL finds v3 or v2; a URL naming the wrong major, or a
// server that is no Data Plane API, is a clear error.
func TestClientFindsTheAPIVersion(t *testing.T) {
	b := newBed(t)
	_, root3 := b.v3(t, false)
	base3, base2 := strings.TrimSuffix(root3, "/v3"), b.api.URL
	ctx := context.Background()
	for name, base := range map[string]string{"v3": base3, "v2": base2} {
		t.Run("bare base finds "+name, func(t *testing.T) {
			c := b.client(t, func(c *haproxy.Config) { c.URL = base })
			if err := c.Check(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Weights(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("v2 URL on a v3 API", func(t *testing.T) {
		err := b.client(t, func(c *haproxy.Config) { c.URL = base3 + "/v2" }).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), base3+"/v3") || !strings.Contains(err.Error(), "v3.3.1") {
			t.Fatalf("Check = %v, want it to point at %s/v3", err, base3)
		}
	})
	t.Run("no Data Plane API", func(t *testing.T) {
		other := httptest.NewServer(http.NotFoundHandler())
		defer other.Close()
		err := b.client(t, func(c *haproxy.Config) { c.URL = other.URL }).Check(ctx)
		for _, want := range []string{other.URL, "/v3/info", "/v2/info", "404"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Check = %v, want it to name %q", err, want)
			}
		}
	})
	t.Run("wrong password while finding the version", func(t *testing.T) {
		err := b.client(t, func(c *haproxy.Config) { c.URL = base3; c.Password = "nope" }).Check(ctx)
		if !errors.Is(err, haproxy.ErrUnauthorized) {
			t.Fatalf("Check = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("v1 is refused", func(t *testing.T) {
		_, err := haproxy.New(haproxy.Config{URL: base3 + "/v1", Backend: "be_app", StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}})
		if err == nil || !strings.Contains(err.Error(), "v2") || !strings.Contains(err.Error(), "v3") {
			t.Fatalf("New = %v", err)
		}
	})
}

// TestDataPlaneAPIv3OverTLS: v3 over https with a private CA and basic auth, as v2.
func TestDataPlaneAPIv3OverTLS(t *testing.T) {
	b := newBed(t)
	dp, _ := b.v3(t, false)
	tlsAPI := httptest.NewTLSServer(dp)
	defer tlsAPI.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsAPI.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []string{tlsAPI.URL + "/v3", tlsAPI.URL} {
		c := b.client(t, func(c *haproxy.Config) { c.URL = u; c.CAFile = caFile })
		if err := c.Check(ctx); err != nil {
			t.Fatalf("Check over TLS at %s: %v", u, err)
		}
		if _, _, err := c.Shift(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	untrusted := b.client(t, func(c *haproxy.Config) { c.URL = tlsAPI.URL + "/v3" })
	if err := untrusted.Check(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Check over TLS without the CA = %v", err)
	}
	wrong := b.client(t, func(c *haproxy.Config) { c.URL = tlsAPI.URL + "/v3"; c.CAFile = caFile; c.Password = "nope" })
	if err := wrong.Check(ctx); !errors.Is(err, haproxy.ErrUnauthorized) || strings.Contains(err.Error(), "nope") {
		t.Fatalf("Check with a wrong password = %v", err)
	}
}

// TestServerTemplateSlotsThroughV3: server-template slots get their own weights through the v3
// runtime endpoint (dataplaneapi 3.3.1), with no reload, and HAProxy serves the split; before 3.3.1
// the template's configured weight is written instead (a reload, every slot alike).
func TestServerTemplateSlotsThroughV3(t *testing.T) {
	t.Run("3.3.1: per-slot weights at runtime", func(t *testing.T) {
		tp := newTopology(t, 3, 3, true)
		for _, s := range []string{"canary2", "canary3"} {
			runtime(t, tp.hap.AdminSocket, "set server be_app/"+s+" state maint")
		}
		dp, api := tp.serve(t, dataplanetest.Config{Major: 3})
		c := tp.clientAt(t, haproxy.ModeDataplane, api.URL+"/v3")
		weights, achieved, err := c.Shift(context.Background(), 25)
		if err != nil {
			t.Fatal(err)
		}
		if achieved != 25 || len(weights) != 6 {
			t.Fatalf("weights %v, achieved %g", weights, achieved)
		}
		if dp.Reloads() != 0 {
			t.Errorf("%d reloads for per-slot weights", dp.Reloads())
		}
		before, _ := c.Requests(context.Background())
		tp.load(t, 4000)
		after, _ := c.Requests(context.Background())
		dc, ds := after["canary"]-before["canary"], after["stable"]-before["stable"]
		if got := 100 * float64(dc) / float64(dc+ds); got < 24 || got > 26 {
			t.Fatalf("canary served %.2f%%, want 25±1", got)
		}
	})
	t.Run("before 3.3.1: the template's weight, with a reload", func(t *testing.T) {
		tp := newTopology(t, 1, 1, true)
		dp, api := tp.serve(t, dataplanetest.Config{Major: 3, NoRuntimeWeights: true})
		c := tp.clientAt(t, haproxy.ModeDataplane, api.URL+"/v3")
		weights, achieved, err := c.Shift(context.Background(), 50)
		if err != nil {
			t.Fatal(err)
		}
		if achieved != 50 || dp.Reloads() == 0 {
			t.Fatalf("weights %v, achieved %g, %d reloads", weights, achieved, dp.Reloads())
		}
		if cfg, _ := os.ReadFile(tp.hap.ConfigPath); !strings.Contains(string(cfg), "server-template canary 1-1 127.0.0.1:"+port(tp.backends["canary1"])+" weight 100") {
			t.Errorf("template weight not in the configuration:\n%s", cfg)
		}
	})
}
