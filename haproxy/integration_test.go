//go:build integration

package haproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
)

// These tests drive a real HAProxy 2.6 through the project's Data Plane API test server, with the
// haproxy.Client the release engine uses.

const password = "s3cret-test-pw"

type bed struct {
	hap      *haproxytest.Instance
	dp       *dataplanetest.Server
	api      *httptest.Server
	frontend string
	// backends answer with their own name, so traffic can be counted per server.
	backends map[string]*httptest.Server
}

func backend(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func port(s *httptest.Server) string {
	u, _ := url.Parse(s.URL)
	return u.Port()
}

// newBed starts HAProxy with backend be_app: stable1, stable2 (weight 100) and canary1 (weight 0), each
// a tiny Go server, plus down1, a server on a port where nothing listens; and the Data Plane API test server over it.
func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{backends: map[string]*httptest.Server{}}
	for _, n := range []string{"stable1", "stable2", "canary1"} {
		b.backends[n] = backend(t, n)
	}
	dir := t.TempDir()
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
    server stable1 127.0.0.1:%[3]s weight 100
    server stable2 127.0.0.1:%[4]s weight 100
    server canary1 127.0.0.1:%[5]s weight 0

backend be_other
    # Port 1: nothing listens there (a free port picked now could be taken by a parallel test).
    server down1 127.0.0.1:1 check inter 200ms fall 1 rise 1
`, dir, fe, port(b.backends["stable1"]), port(b.backends["stable2"]), port(b.backends["canary1"]))
	b.hap = haproxytest.Start(t, dir, cfg)
	b.dp, b.api = b.serve(t, dataplanetest.Config{})
	b.frontend = fmt.Sprintf("http://127.0.0.1:%d/", fe)
	return b
}

// serve starts a Data Plane API test server over the bed's HAProxy, of the major and behaviour cfg
// says (Major 0: v2); the bed fills in HAProxy's files and the credentials.
func (b *bed) serve(t testing.TB, cfg dataplanetest.Config) (*dataplanetest.Server, *httptest.Server) {
	t.Helper()
	cfg.ConfigFile, cfg.RuntimeSocket, cfg.MasterSocket = b.hap.ConfigPath, b.hap.AdminSocket, b.hap.MasterSocket
	cfg.User, cfg.Password = "admin", password
	cfg.TransactionsDir = filepath.Join(b.hap.Dir, fmt.Sprintf("transactions-v%d-%d", max(cfg.Major, 2), time.Now().UnixNano()))
	dp, err := dataplanetest.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(dp)
	t.Cleanup(api.Close)
	return dp, api
}

func (b *bed) client(t *testing.T, mod func(*haproxy.Config)) *haproxy.Client {
	t.Helper()
	cfg := haproxy.Config{URL: b.api.URL + "/v2", User: "admin", Password: password, Backend: "be_app",
		StableServers: []string{"stable1", "stable2"}, CanaryServers: []string{"canary1"}, PollInterval: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := haproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call sends a raw request to the test server and returns status, headers and body.
func (b *bed) call(t *testing.T, method, path, user, pass string, body any) (int, http.Header, []byte) {
	t.Helper()
	return apiCall(t, b.api.URL, method, path, user, pass, body)
}

// apiCall sends a raw request to the API at base and returns status, headers and body.
func apiCall(t testing.TB, base, method, path, user, pass string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// runtime asks HAProxy's admin socket directly.
func runtime(t testing.TB, sock, cmd string) string {
	t.Helper()
	// Shortly after start, HAProxy's master re-executes itself into wait mode, and its CLI refuses
	// connections for a moment: retry.
	var c net.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = net.Dial("unix", sock); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s\n", cmd)
	// The master CLI answers only once our side is closed for writing.
	_ = c.(*net.UnixConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(bufio.NewReader(c))
	return string(raw)
}

func workerPID(t *testing.T, master string) string {
	t.Helper()
	for _, line := range strings.Split(runtime(t, master, "show proc"), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == "worker" {
			return f[0]
		}
	}
	t.Fatal("no worker in show proc")
	return ""
}

func TestDataPlaneAPIFaithfulness(t *testing.T) {
	b := newBed(t)
	pid := workerPID(t, b.hap.MasterSocket)

	code, hdr, body := b.call(t, "GET", "/v2/info", "admin", password, nil)
	var info models.Info
	if code != 200 || json.Unmarshal(body, &info) != nil || info.API == nil || info.API.Version == "" {
		t.Fatalf("info: %d %s", code, body)
	}
	v0, _ := strconv.Atoi(hdr.Get("Configuration-Version"))

	code, _, body = b.call(t, "GET", "/v2/services/haproxy/configuration/version", "admin", password, nil)
	if code != 200 || strings.TrimSpace(string(body)) != strconv.Itoa(v0) {
		t.Fatalf("version: %d %s (header said %d)", code, body, v0)
	}

	code, _, body = b.call(t, "GET", "/v2/services/haproxy/configuration/backends", "admin", password, nil)
	var backends struct {
		Version int64           `json:"_version"`
		Data    models.Backends `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &backends) != nil || len(backends.Data) != 2 || backends.Version != int64(v0) {
		t.Fatalf("backends: %d %s", code, body)
	}

	code, _, body = b.call(t, "GET", "/v2/services/haproxy/configuration/servers?backend=be_app", "admin", password, nil)
	var servers struct {
		Version int64          `json:"_version"`
		Data    models.Servers `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &servers) != nil || len(servers.Data) != 3 {
		t.Fatalf("servers: %d %s", code, body)
	}
	// Faithful to v2.9: servers of a backend that does not exist are an empty list, not a 404.
	code, _, body = b.call(t, "GET", "/v2/services/haproxy/configuration/servers?backend=be_nope", "admin", password, nil)
	if code != 200 || !strings.Contains(string(body), `"data":[]`) {
		t.Fatalf("servers of a missing backend: %d %s", code, body)
	}

	code, _, body = b.call(t, "GET", "/v2/services/haproxy/configuration/servers/canary1?backend=be_app", "admin", password, nil)
	var one struct {
		Version int64         `json:"_version"`
		Data    models.Server `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &one) != nil || one.Data.Name != "canary1" || *one.Data.Weight != 0 {
		t.Fatalf("server: %d %s", code, body)
	}

	srv := one.Data
	w := int64(42)
	srv.Weight = &w
	put := func(query string) (int, http.Header, []byte) {
		return b.call(t, "PUT", "/v2/services/haproxy/configuration/servers/canary1?backend=be_app"+query, "admin", password, srv)
	}
	t.Run("weight-only PUT: 200, runtime and config changed, no reload", func(t *testing.T) {
		code, hdr, body := put(fmt.Sprintf("&version=%d", v0))
		if code != 200 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		if got := hdr.Get("Configuration-Version"); got != strconv.Itoa(v0+1) {
			t.Errorf("Configuration-Version %q, want %d", got, v0+1)
		}
		if !strings.Contains(runtime(t, b.hap.AdminSocket, "get weight be_app/canary1"), "42 (initial 0)") {
			t.Errorf("runtime weight: %s", runtime(t, b.hap.AdminSocket, "get weight be_app/canary1"))
		}
		cfg, _ := os.ReadFile(b.hap.ConfigPath)
		if !strings.Contains(string(cfg), "server canary1 127.0.0.1:"+port(b.backends["canary1"])+" weight 42") {
			t.Errorf("config file lacks the new weight:\n%s", cfg)
		}
		if got := workerPID(t, b.hap.MasterSocket); got != pid || b.dp.Reloads() != 0 {
			t.Errorf("HAProxy reloaded (worker %s → %s, %d reloads)", pid, got, b.dp.Reloads())
		}
	})
	t.Run("stale version: 409", func(t *testing.T) {
		if code, _, body := put(fmt.Sprintf("&version=%d", v0)); code != 409 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("neither version nor transaction: 400", func(t *testing.T) {
		if code, _, body := put(""); code != 400 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("unknown server: 404", func(t *testing.T) {
		code, _, _ := b.call(t, "GET", "/v2/services/haproxy/configuration/servers/nope?backend=be_app", "admin", password, nil)
		if code != 404 {
			t.Fatalf("%d", code)
		}
	})
	t.Run("wrong password: 401 with a JSON error", func(t *testing.T) {
		code, hdr, body := b.call(t, "GET", "/v2/info", "admin", "wrong", nil)
		var e models.Error
		if code != 401 || hdr.Get("WWW-Authenticate") == "" || json.Unmarshal(body, &e) != nil || *e.Code != 401 {
			t.Fatalf("%d %v %s", code, hdr, body)
		}
	})
	t.Run("runtime servers and stats", func(t *testing.T) {
		code, _, body := b.call(t, "GET", "/v2/services/haproxy/runtime/servers?backend=be_app", "admin", password, nil)
		var rs models.RuntimeServers
		if code != 200 || json.Unmarshal(body, &rs) != nil || len(rs) != 3 {
			t.Fatalf("runtime servers: %d %s", code, body)
		}
		code, _, body = b.call(t, "GET", "/v2/services/haproxy/stats/native?type=server&parent=be_app", "admin", password, nil)
		var st models.NativeStats
		if code != 200 || json.Unmarshal(body, &st) != nil || len(st) != 1 || len(st[0].Stats) != 3 {
			t.Fatalf("stats: %d %s", code, body)
		}
	})
}

func TestClientShiftSplitsRealTraffic(t *testing.T) {
	b := newBed(t)
	c := b.client(t, nil)
	ctx := context.Background()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, g := range []string{"stable", "canary"} {
		if err := c.WaitUp(wctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, pct := range []float64{10, 25, 50, 0, 100} {
		t.Run(fmt.Sprintf("%g%%", pct), func(t *testing.T) {
			weights, achieved, err := c.Shift(ctx, pct)
			if err != nil {
				t.Fatal(err)
			}
			if d := achieved - pct; d > 0.5 || d < -0.5 {
				t.Fatalf("achieved %.2f%% for %g%% (weights %v)", achieved, pct, weights)
			}
			// HAProxy must serve what the weights say: count 2000 requests by the server that answered.
			counts := map[string]int{}
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			const n = 2000
			for i := 0; i < n; i++ {
				resp, err := hc.Get(b.frontend)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				counts[string(body)]++
			}
			got := 100 * float64(counts["canary1"]) / n
			if d := got - achieved; d > 1.5 || d < -1.5 {
				t.Fatalf("canary served %.1f%% of requests, weights say %.2f%% (%v)", got, achieved, counts)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	tests := []struct {
		name string
		mod  func(*haproxy.Config)
		want []string
		is   error
	}{
		{"wrong password", func(c *haproxy.Config) { c.Password = "nope" }, []string{`rejected user "admin"`, "FRIDAYMORNING_DATAPLANE_PASSWORD"}, haproxy.ErrUnauthorized},
		{"unknown backend", func(c *haproxy.Config) { c.Backend = "be_missing" }, []string{`backend "be_missing" not found`, "haproxy.backend"}, haproxy.ErrNotFound},
		{"unknown server", func(c *haproxy.Config) { c.CanaryServers = []string{"canary9"} }, []string{"has no server canary9"}, haproxy.ErrNotFound},
		{"API down", func(c *haproxy.Config) { c.URL = "http://127.0.0.1:1/v2" }, []string{"not reachable", "haproxy.url"}, haproxy.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.client(t, tt.mod).Check(ctx)
			if err == nil || !errors.Is(err, tt.is) {
				t.Fatalf("Check = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "nope") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestClientRetriesVersionConflicts(t *testing.T) {
	b := newBed(t)
	// A proxy in front of the real server makes a real concurrent change just before the first PUT, so
	// that PUT carries a stale version and the real server answers 409.
	var once sync.Once
	var conflicts atomic.Int32
	target, _ := url.Parse(b.api.URL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(func() {
				other := b.client(t, nil)
				if _, _, err := other.Shift(context.Background(), 0); err != nil { // stable1/2 to 100 anew: no-op writes
					t.Error(err)
				}
				// Bump the version with real edits of a server the shift does not write (stable stays at
				// base at 50%): its weight to 101 and back, so that the split the shift reads back is its own.
				code, _, body := b.call(t, "GET", "/v2/services/haproxy/configuration/servers/stable2?backend=be_app", "admin", password, nil)
				var env struct {
					Version int64         `json:"_version"`
					Data    models.Server `json:"data"`
				}
				_ = json.Unmarshal(body, &env)
				old := *env.Data.Weight
				for i, weight := range []int64{101, old} {
					env.Data.Weight = &weight
					code, _, body = b.call(t, "PUT", fmt.Sprintf("/v2/services/haproxy/configuration/servers/stable2?backend=be_app&version=%d", env.Version+int64(i)), "admin", password, env.Data)
					if code != 200 {
						t.Errorf("concurrent edit: %d %s", code, body)
					}
				}
				conflicts.Add(1)
			})
		}
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	c := b.client(t, func(c *haproxy.Config) { c.URL = proxy.URL + "/v2" })
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitUp(wctx, "canary"); err != nil {
		t.Fatal(err)
	}
	weights, _, err := c.Shift(context.Background(), 50)
	if err != nil {
		t.Fatalf("Shift across a version conflict: %v", err)
	}
	if conflicts.Load() != 1 || weights["canary1"] == 0 {
		t.Fatalf("weights %v after %d concurrent edits", weights, conflicts.Load())
	}
}

func TestClientWaitUpAndDrain(t *testing.T) {
	b := newBed(t)
	c := b.client(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitUp(ctx, "canary"); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx, "canary"); err != nil {
		t.Fatal(err)
	}
	down := b.client(t, func(c *haproxy.Config) {
		c.Backend = "be_other"
		c.StableServers = []string{"down1"}
		c.CanaryServers = []string{"nothing"}
	})
	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	err := down.WaitUp(short, "stable")
	if err == nil || !strings.Contains(err.Error(), "down1 (DOWN, check L4CON)") {
		t.Logf("stats: %s", runtime(t, b.hap.AdminSocket, "show stat -1 4 -1"))
		t.Fatalf("WaitUp on a server at a closed port = %v, want it to name down1 and its state", err)
	}
}

// TestNoPartialSplitWhenHAProxyStops: with HAProxy gone, a shift fails with a clear error and every
// server keeps its old weight (in the configuration the Data Plane API writes).
func TestNoPartialSplitWhenHAProxyStops(t *testing.T) {
	b := newBed(t)
	c := b.client(t, nil)
	ctx := context.Background()
	before, err := c.ConfigWeights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.hap.Stop()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _, err = c.Shift(sctx, 10)
	if err == nil || !strings.Contains(err.Error(), "be_app") {
		t.Fatalf("Shift with HAProxy stopped = %v, want an error naming the backend", err)
	}
	after, err := c.ConfigWeights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for n, w := range before {
		if after[n] != w {
			t.Errorf("%s: weight %d after the failed shift, was %d: a partial split was left behind", n, after[n], w)
		}
	}
	wctx, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if err := c.WaitUp(wctx, "canary"); err == nil {
		t.Fatal("WaitUp succeeded with HAProxy stopped")
	}
	rt := b.client(t, func(c *haproxy.Config) { c.Mode = haproxy.ModeRuntime; c.RuntimeSocket = b.hap.AdminSocket })
	if err := rt.Check(ctx); err == nil || !errors.Is(err, haproxy.ErrUnreachable) || !strings.Contains(err.Error(), "admin.sock") {
		t.Fatalf("runtime Check with HAProxy stopped = %v", err)
	}
}

// TestDataPlaneAPIOverTLS: the client trusts the API's certificate through haproxy.ca_file, and refuses
// it without.
func TestDataPlaneAPIOverTLS(t *testing.T) {
	b := newBed(t)
	tlsAPI := httptest.NewTLSServer(b.dp)
	defer tlsAPI.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsAPI.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := b.client(t, func(c *haproxy.Config) { c.URL = tlsAPI.URL + "/v2"; c.CAFile = caFile })
	if err := ok.Check(ctx); err != nil {
		t.Fatalf("Check over TLS with the CA: %v", err)
	}
	untrusted := b.client(t, func(c *haproxy.Config) { c.URL = tlsAPI.URL + "/v2" })
	if err := untrusted.Check(ctx); err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "haproxy.ca_file") {
		t.Fatalf("Check over TLS without the CA = %v", err)
	}
}
