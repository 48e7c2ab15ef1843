package haproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Answers a Data Plane API gives on the backend be_app, by major version and endpoint: what the
// fuzzed endpoint's answer is put among.
var dataplaneAnswers = map[int]map[string]string{
	2: {
		"info":    `{"api":{"version":"v2.9.1 6a2e3d7"},"system":{}}`,
		"backend": `{"_version":7,"data":{"name":"be_app","mode":"http","balance":{"algorithm":"roundrobin"}}}`,
		"stats": `[{"runtimeAPI":"/run/haproxy/admin.sock","stats":[` +
			`{"backend_name":"be_app","name":"stable1","type":"server","stats":{"addr":"127.0.0.1:18690","weight":100,"status":"UP","check_status":"L7OK","scur":0,"hrsp_2xx":120,"hrsp_5xx":1}},` +
			`{"backend_name":"be_app","name":"canary1","type":"server","stats":{"addr":"127.0.0.1:18691","weight":0,"status":"UP","check_status":"L7OK","scur":0,"hrsp_2xx":3,"hrsp_5xx":0}}]}]`,
		"servers": `{"_version":7,"data":[{"name":"stable1","address":"127.0.0.1","port":18690,"weight":100,"check":"enabled"},` +
			`{"name":"canary1","address":"127.0.0.1","port":18691,"weight":0,"check":"enabled"}]}`,
		"runtime": `[{"name":"stable1","address":"127.0.0.1","port":18690,"admin_state":"ready","operational_state":"up","id":"1"},` +
			`{"name":"canary1","address":"127.0.0.1","port":18691,"admin_state":"ready","operational_state":"up","id":"2"}]`,
	},
	3: {
		"info":    `{"api":{"version":"v3.3.1 9b7e1a1"},"system":{}}`,
		"backend": `{"name":"be_app","mode":"http","balance":{"algorithm":"roundrobin"}}`,
		"stats": `{"runtimeAPI":"/run/haproxy/admin.sock","stats":[` +
			`{"backend_name":"be_app","name":"stable1","type":"server","stats":{"addr":"127.0.0.1:18690","weight":100,"status":"UP","check_status":"L7OK","scur":0,"hrsp_2xx":120,"hrsp_5xx":1}},` +
			`{"backend_name":"be_app","name":"canary1","type":"server","stats":{"addr":"127.0.0.1:18691","weight":0,"status":"UP","check_status":"L7OK","scur":0,"hrsp_2xx":3,"hrsp_5xx":0}}]}`,
		"servers": `[{"name":"stable1","address":"127.0.0.1","port":18690,"weight":100,"check":"enabled"},` +
			`{"name":"canary1","address":"127.0.0.1","port":18691,"weight":0,"check":"enabled"}]`,
		"runtime": `[{"name":"stable1","address":"127.0.0.1","port":18690,"admin_state":"ready","operational_state":"up","id":"1"},` +
			`{"name":"canary1","address":"127.0.0.1","port":18691,"admin_state":"ready","operational_state":"up","id":"2"}]`,
	},
}

// endpointOf names the endpoint a Data Plane API path is.
func endpointOf(path string) string {
	switch {
	case strings.HasSuffix(path, "/info"):
		return "info"
	case strings.Contains(path, "/stats/native"):
		return "stats"
	case strings.Contains(path, "/runtime/"):
		return "runtime"
	case strings.HasSuffix(path, "/servers"):
		return "servers"
	case strings.Contains(path, "/backends/"):
		return "backend"
	}
	return ""
}

var endpoints = []string{"info", "backend", "stats", "servers", "runtime"}

// FuzzDataplaneAnswer gives the client one fuzzed answer of the Data Plane API, v2 or v3, with any
// status, among well-formed answers of the other endpoints, and calls what a release calls that reads:
// Check, Weights, ConfigWeights, Counts and Addresses. None may panic or hang, and an error says what
// failed.
func FuzzDataplaneAnswer(f *testing.F) {
	for major, answers := range dataplaneAnswers {
		for i, ep := range endpoints {
			f.Add(uint8(major), uint8(i), uint16(200), []byte(answers[ep]))
		}
		f.Add(uint8(major), uint8(2), uint16(200), []byte(`{"error":"runtime API unreachable"}`))
		f.Add(uint8(major), uint8(0), uint16(401), []byte(`{"code":401,"message":"unauthenticated for invalid credentials"}`))
		f.Add(uint8(major), uint8(1), uint16(404), []byte(`{"code":404,"message":"missing object"}`))
		f.Add(uint8(major), uint8(3), uint16(500), []byte(`<html>oops</html>`))
	}
	f.Fuzz(func(t *testing.T, m, which uint8, code uint16, answer []byte) {
		probeOne(t, 2+int(m%2), int(which)%len(endpoints), int(code), answer)
	})
}

// fuzzAPI is the Data Plane API the fuzz target talks to: the answers of dataplaneAnswers, but the
// fuzzed one for one endpoint.
var fuzzAPI struct {
	once                  sync.Once
	srv                   *httptest.Server
	mu                    sync.Mutex
	major, fuzzed, status int
	body                  []byte
}

// probeOne calls what a release reads of a Data Plane API of major whose endpoint fuzzed answers
// status and answer.
func probeOne(t *testing.T, major, fuzzed, status int, answer []byte) {
	a := &fuzzAPI
	a.once.Do(func() {
		a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.mu.Lock()
			defer a.mu.Unlock()
			ep := endpointOf(r.URL.Path)
			w.Header().Set("Configuration-Version", "7")
			w.Header().Set("Content-Type", "application/json")
			if ep == endpoints[a.fuzzed] {
				w.WriteHeader(a.status)
				_, _ = w.Write(a.body)
				return
			}
			if ans, ok := dataplaneAnswers[a.major][ep]; ok {
				_, _ = w.Write([]byte(ans))
				return
			}
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":404,"message":"no such path"}`))
		}))
	})
	if status < 200 || status > 599 {
		status = 200
	}
	a.mu.Lock()
	a.major, a.fuzzed, a.status, a.body = major, fuzzed, status, answer
	a.mu.Unlock()
	c, err := New(Config{URL: a.srv.URL + "/v" + string(rune('0'+major)), User: "admin", Password: "fuzz-secret-pw", Backend: "be_app",
		HTTPClient: a.srv.Client(), StableServers: []string{"stable*"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Check":         func() error { return c.Check(ctx) },
		"Weights":       func() error { _, err := c.Weights(ctx); return err },
		"ConfigWeights": func() error { _, err := c.ConfigWeights(ctx); return err },
		"Counts":        func() error { _, err := c.Counts(ctx); return err },
		"Addresses": func() error {
			if _, err := c.Addresses(ctx, GroupStable); err != nil {
				return err
			}
			_, err := c.Addresses(ctx, GroupCanary)
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if ctx.Err() != nil {
			t.Fatalf("%s did not return", name)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "haproxy: ") {
			t.Fatalf("%s: error %q does not say what failed", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "fuzz-secret-pw") {
			t.Fatalf("%s: error %q shows the password", name, err)
		}
	}
}

// FuzzShowStat: any answer to `show stat BACKEND 4 -1` on the admin socket is read, or refused with an
// error that says what HAProxy answered.
func FuzzShowStat(f *testing.F) {
	f.Add("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\n" +
		"be_app,stable1,0,0,0,1,,120,1,2,,0,,0,0,0,0,UP,100,1,0,0,0,10,0,,1,3,1,,120,,2,0,,1,L7OK,200,1,0,120,0,0,1,0,\n" +
		"be_app,canary1,0,0,0,1,,3,1,2,,0,,0,0,0,0,UP,0,1,0,0,0,10,0,,1,3,2,,3,,2,0,,1,L7OK,200,1,0,3,0,0,0,0,\n")
	f.Add("No such proxy.\n")
	f.Add("Unknown command: 'show stat'\n")
	f.Add("# pxname,svname\nbe_app,stable1\n")
	f.Fuzz(func(t *testing.T, answer string) {
		r := &runtimeSocket{cfg: Config{Backend: "be_app", RuntimeSocket: "/run/admin.sock"}}
		states, err := r.states(answer)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "haproxy: ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		for name, s := range states {
			if name == "" && s.Name != "" || s.Name != name {
				t.Fatalf("server %q read as %+v", name, s)
			}
		}
	})
}
