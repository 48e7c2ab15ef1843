package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyInflux answers every query with an empty result, except that the first `drops` requests get a
// connection cut in the middle of the answer (a proxy or InfluxDB restarting, a reused connection the
// other side closed).
func flakyInflux(t *testing.T, drops int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) <= drops {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"results\":")
			_ = buf.Flush()
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		n := strings.Count(r.FormValue("q"), ";") + 1
		_, _ = w.Write([]byte(`{"results":[` + strings.Repeat(`{"statement_id":0},`, n-1) + `{"statement_id":0}]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &asked
}

// TestTransientFailuresAreRetried: a query whose connection breaks before the answer is whole is a read,
// safe to send again; one such break is no reason to fail a preflight or lose a look.
func TestTransientFailuresAreRetried(t *testing.T) {
	srv, asked := flakyInflux(t, 1)
	store, err := NewInfluxQL(Config{URL: srv.URL, Bucket: "fridaymorning/autogen", Backend: "be_app",
		StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Ping(context.Background()); err != nil {
		t.Fatalf("one broken answer, then a good one: %v", err)
	}
	if got := asked.Load(); got != 2 {
		t.Errorf("InfluxDB was asked %d times, want 2 (the broken answer and the retry)", got)
	}
}

// TestPersistentFailuresAreNotHidden: a connection that breaks every time fails the query after a few
// attempts, with the break named: retries never turn an unreachable store into a healthy one.
func TestPersistentFailuresAreNotHidden(t *testing.T) {
	srv, asked := flakyInflux(t, 1000)
	store, err := NewInfluxQL(Config{URL: srv.URL, Bucket: "fridaymorning/autogen", Backend: "be_app",
		StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = store.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("a connection broken every time: %v, want an error naming the break", err)
	}
	if got := asked.Load(); got < 2 || got > 3 {
		t.Errorf("InfluxDB was asked %d times, want 2 or 3", got)
	}
}
