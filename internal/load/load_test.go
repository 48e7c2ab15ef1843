package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsVersionsAndFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("X-Demo-Version", map[bool]string{true: "v2", false: "v1"}[i%4 == 0])
		if i%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s := Run(ctx, srv.URL, 200, 8, time.Second, time.Hour, io.Discard)
	if s.Sent == 0 || s.Sent != n.Load() {
		t.Fatalf("sent %d, server saw %d", s.Sent, n.Load())
	}
	if s.OK+s.Failed != s.Sent || s.Failed != n.Load()/10 {
		t.Fatalf("ok %d failed %d sent %d (want failed = %d)", s.OK, s.Failed, s.Sent, n.Load()/10)
	}
	if s.ByVersion["v1"]+s.ByVersion["v2"] != s.Sent || s.ByVersion["v2"] != n.Load()/4 {
		t.Fatalf("versions %v", s.ByVersion)
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s := Run(ctx, url, 100, 4, time.Second, time.Hour, io.Discard)
	if s.Sent == 0 || s.Failed != s.Sent || len(s.Errors) == 0 {
		t.Fatalf("summary %+v: every request to a closed port must count as failed", s)
	}
}

func TestTestBedOnly(t *testing.T) {
	_, bridge, _ := net.ParseCIDR("192.168.98.1/24")
	bridges := func() []*net.IPNet { return []*net.IPNet{bridge} }
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080/": true, "http://localhost/": true, "http://[::1]:80/": true,
		"http://192.168.98.2/": true, "http://192.168.99.2/": false,
		"http://10.0.0.1/": false, "http://example.com/": false, "nonsense": false,
	} {
		if err := testBed(url, bridges); (err == nil) != ok {
			t.Errorf("testBed(%q) = %v", url, err)
		}
	}
}
