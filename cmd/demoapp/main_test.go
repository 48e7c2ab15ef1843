package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"DEMO_VERSION": "v9", "DEMO_ERROR_RATE": "0.25", "DEMO_LATENCY": "20ms", "DEMO_UNHEALTHY": "true"}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.version != "v9" || c.errorRate != 0.25 || c.latency != 20*time.Millisecond || !c.unhealthy || c.listen != ":8080" {
		t.Fatalf("config %+v", c)
	}
	for _, bad := range []map[string]string{{"DEMO_ERROR_RATE": "1.5"}, {"DEMO_ERROR_RATE": "x"}, {"DEMO_LATENCY": "-1s"}, {"DEMO_JITTER": "soon"}} {
		if _, err := loadConfig(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		cfg        config
		rnd        float64
		path       string
		wantStatus int
		wantBody   string
	}{
		{"ok", config{version: "v1"}, 0.9, "/", 200, "hello from v1"},
		{"injected error when the draw is under the rate", config{version: "v2", errorRate: 0.5}, 0.4, "/", 500, "injected error from v2"},
		{"no error when the draw is over the rate", config{version: "v2", errorRate: 0.5}, 0.6, "/", 200, "hello from v2"},
		{"healthz", config{version: "v1"}, 0, "/healthz", 200, "ok v1"},
		{"unhealthy", config{version: "v1", unhealthy: true}, 0, "/healthz", 503, "unhealthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler(tt.cfg, func() float64 { return tt.rnd }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
			if tt.path == "/" && rec.Header().Get("X-Demo-Version") != tt.cfg.version {
				t.Fatalf("X-Demo-Version = %q", rec.Header().Get("X-Demo-Version"))
			}
		})
	}
}

// TestResetRate: with DEMO_RESET_RATE, a request whose draw is under the rate gets its connection closed
// without a byte of answer (a real server: the recorder cannot be hijacked).
func TestResetRate(t *testing.T) {
	draw := 0.1
	srv := httptest.NewServer(handler(config{version: "v2", resetRate: 0.2}, func() float64 { return draw }))
	defer srv.Close()
	if _, err := http.Get(srv.URL + "/"); err == nil {
		t.Fatal("a request under the reset rate was answered")
	}
	draw = 0.5
	resp, err := http.Get(srv.URL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a request over the reset rate: %v", err)
	}
	resp.Body.Close()
}

// An env-only or config-only release is seen in the headers: which tasks run the new setting or file.
func TestHandlerReportsSettingAndConfig(t *testing.T) {
	c, err := loadConfig(func(k string) string {
		return map[string]string{"DEMO_SETTING": "pool=20", "DEMO_CONFIG_FILE": "/etc/demo.conf"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.readConfigLine(func(string) ([]byte, error) { return []byte("greeting: hi v2\nrest\n"), nil }); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	handler(c, func() float64 { return 0.9 }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if s, cf := rec.Header().Get("X-Demo-Setting"), rec.Header().Get("X-Demo-Config"); s != "pool=20" || cf != "greeting: hi v2" {
		t.Fatalf("X-Demo-Setting %q, X-Demo-Config %q", s, cf)
	}
}
