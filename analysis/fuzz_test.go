package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzInflux is an InfluxDB that answers the fuzzed first and second answers, in turn, to whatever it
// is asked.
var fuzzInflux struct {
	once          sync.Once
	srv           *httptest.Server
	mu            sync.Mutex
	answers       [2][]byte
	status, asked int
	csv           bool
}

// askFuzzed runs the metrics queries of language against an InfluxDB answering first, then second.
func askFuzzed(t *testing.T, language string, status int, first, second []byte) {
	a := &fuzzInflux
	a.once.Do(func() {
		a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.mu.Lock()
			defer a.mu.Unlock()
			body := a.answers[min(a.asked, 1)]
			a.asked++
			if a.csv {
				w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			} else {
				w.Header().Set("Content-Type", "application/json")
			}
			if a.asked == 1 {
				w.WriteHeader(a.status)
			}
			_, _ = w.Write(body)
		}))
	})
	if status < 200 || status > 599 {
		status = 200
	}
	a.mu.Lock()
	a.answers, a.status, a.asked, a.csv = [2][]byte{first, second}, status, 0, language == LanguageFlux
	a.mu.Unlock()
	store, err := New(Config{Language: language, URL: a.srv.URL, Token: "fuzz-secret-token", Bucket: "fridaymorning/autogen",
		Backend: "be_app", StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	to := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC)
	canary, stable, _, err := store.Metrics(ctx, to.Add(-10*time.Second), to)
	if ctx.Err() != nil {
		t.Fatal("the query did not return")
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "analysis: ") || strings.Contains(err.Error(), "fuzz-secret-token") {
			t.Fatalf("error %q does not say what failed, or shows the token", err)
		}
		return
	}
	for _, m := range []struct {
		name string
		n    int64
		lat  []float64
	}{{"canary", canary.Requests, canary.Latencies}, {"stable", stable.Requests, stable.Latencies}} {
		if len(m.lat) > SampleSize*2 {
			t.Fatalf("%s: %d latencies kept, more than the sample of %d asked for", m.name, len(m.lat), SampleSize)
		}
	}
}

// InfluxQL answers of InfluxDB 1.8 to the two requests of Metrics: the counts (four per group), then
// the percentiles and a sample per group.
const (
	influxQLCounts = `{"results":[` +
		`{"statement_id":0,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,120]]}]},` +
		`{"statement_id":1,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,1]]}]},` +
		`{"statement_id":2,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,1]]}]},` +
		`{"statement_id":3,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,120]]}]},` +
		`{"statement_id":4,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,1080]]}]},` +
		`{"statement_id":5},{"statement_id":6},` +
		`{"statement_id":7,"series":[{"name":"haproxy_request","columns":["time","count"],"values":[[0,1080]]}]}]}`
	influxQLPercentiles = `{"results":[` +
		`{"statement_id":0,"series":[{"name":"haproxy_request","columns":["time","percentile","percentile_1","percentile_2","percentile_3"],"values":[[1764583200000,2,4,5,9]]}]},` +
		`{"statement_id":1,"series":[{"name":"haproxy_request","columns":["time","sample"],"values":[[1764583201000,2],[1764583202000,3]]}]},` +
		`{"statement_id":2,"series":[{"name":"haproxy_request","columns":["time","percentile","percentile_1","percentile_2","percentile_3"],"values":[[1764583200000,2,3,4,7]]}]},` +
		`{"statement_id":3,"series":[{"name":"haproxy_request","columns":["time","sample"],"values":[[1764583201000,1],[1764583203000,2]]}]}]}`
	fluxMetrics = "#datatype,string,long,long\r\n#group,false,false,false\r\n#default,canary_requests,,\r\n,result,table,_value\r\n,,0,120\r\n\r\n" +
		"#datatype,string,long,long\r\n#group,false,false,false\r\n#default,canary_timed,,\r\n,result,table,_value\r\n,,0,120\r\n\r\n" +
		"#datatype,string,long,double\r\n#group,false,false,false\r\n#default,canary_p99,,\r\n,result,table,_value\r\n,,0,9\r\n\r\n" +
		"#datatype,string,long,long\r\n#group,false,false,false\r\n#default,stable_requests,,\r\n,result,table,_value\r\n,,0,1080\r\n\r\n" +
		"#datatype,string,long,long\r\n#group,false,false,false\r\n#default,stable_timed,,\r\n,result,table,_value\r\n,,0,1080\r\n\r\n"
	fluxSample = "#datatype,string,long,double\r\n#group,false,false,false\r\n#default,canary,,\r\n,result,table,_value\r\n,,0,2\r\n,,0,3\r\n\r\n" +
		"#datatype,string,long,double\r\n#group,false,false,false\r\n#default,stable,,\r\n,result,table,_value\r\n,,0,1\r\n,,0,2\r\n\r\n"
)

// FuzzInfluxQLAnswer: whatever InfluxDB answers the InfluxQL queries, Metrics returns, with numbers or
// with an error that says what failed, never the token.
func FuzzInfluxQLAnswer(f *testing.F) {
	f.Add(uint16(200), []byte(influxQLCounts), []byte(influxQLPercentiles))
	f.Add(uint16(200), []byte(`{"results":[{"statement_id":0,"error":"database not found: fridaymorning"}]}`), []byte(``))
	f.Add(uint16(401), []byte(`{"error":"authorization failed"}`), []byte(``))
	f.Add(uint16(200), []byte(`{"results":[{"statement_id":0,"series":[{"values":[[0,-5]]}]}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, status uint16, first, second []byte) {
		askFuzzed(t, LanguageInfluxQL, int(status), first, second)
	})
}

// FuzzFluxAnswer: whatever annotated CSV InfluxDB answers the Flux queries, Metrics returns, with
// numbers or with an error that says what failed, never the token.
func FuzzFluxAnswer(f *testing.F) {
	f.Add(uint16(200), []byte(fluxMetrics), []byte(fluxSample))
	f.Add(uint16(200), []byte("#datatype,string,long,long\r\n#group,false,false,false\r\n#default,canary_timed,,\r\n,result,table,_value\r\n,,0,-7\r\n\r\n"+
		"#datatype,string,long,long\r\n#group,false,false,false\r\n#default,canary_requests,,\r\n,result,table,_value\r\n,,0,3\r\n\r\n"), []byte(fluxSample))
	f.Add(uint16(400), []byte(`{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier fron"}`), []byte(``))
	f.Add(uint16(200), []byte("#datatype,string\r\n,error,reference\r\n,quota exceeded,7\r\n"), []byte(``))
	f.Fuzz(func(t *testing.T, status uint16, first, second []byte) {
		askFuzzed(t, LanguageFlux, int(status), first, second)
	})
}
