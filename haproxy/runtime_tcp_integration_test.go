//go:build integration

package haproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
)

// TestRuntimeSocketOverTCP: haproxy.runtime_socket tcp://HOST:PORT reaches a real HAProxy's `stats socket
// ipv4@…` (what a fridaymorning job off HAProxy's node uses): the backend is checked, weights are set and
// read back, and a socket without admin level or a missing backend say so.
func TestRuntimeSocketOverTCP(t *testing.T) {
	var servers strings.Builder
	for _, name := range []string{"stable1", "canary1"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(srv.Close)
		weight := 100
		if name == "canary1" {
			weight = 0
		}
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%s weight %d check inter 200ms\n", name, port(srv), weight)
	}
	dir := haproxyDir(t)
	admin, user, fe := haproxytest.FreePort(t), haproxytest.FreePort(t), haproxytest.FreePort(t)
	hap := haproxytest.Start(t, dir, fmt.Sprintf(`global
    stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
    stats socket ipv4@127.0.0.1:%[2]d level admin
    stats socket ipv4@127.0.0.1:%[3]d level user

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_app
    bind 127.0.0.1:%[4]d
    default_backend be_app

backend be_app
    balance roundrobin
%[5]s`, dir, admin, user, fe, servers.String()))

	client := func(addr, backend string) *haproxy.Client {
		c, err := haproxy.New(haproxy.Config{Mode: haproxy.ModeRuntime, RuntimeSocket: addr, Backend: backend,
			StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := client(fmt.Sprintf("tcp://127.0.0.1:%d", admin), "be_app")
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitUp(ctx, haproxy.GroupCanary); err != nil {
		t.Fatal(err)
	}
	weights, achieved, err := c.Shift(ctx, 25)
	if err != nil || achieved < 24.5 || achieved > 25.5 { // 33 against stable's 100: 24.8%
		t.Fatalf("Shift(25) over TCP: %v %g %v", weights, achieved, err)
	}
	// What HAProxy runs, through the unix admin socket.
	for name, want := range weights {
		got := runtime(t, hap.AdminSocket, "get weight be_app/"+name)
		if !strings.HasPrefix(got, fmt.Sprint(want)+" ") {
			t.Errorf("HAProxy runs %s at %q, want %d", name, got, want)
		}
	}

	if err := client(fmt.Sprintf("tcp://127.0.0.1:%d", admin), "be_nope").Check(ctx); !errors.Is(err, haproxy.ErrNotFound) || !strings.Contains(err.Error(), "be_nope") {
		t.Errorf("a missing backend over TCP: %v", err)
	}
	// A socket at level user shows statistics but takes no command: HAProxy's refusal is the error.
	if _, _, err := client(fmt.Sprintf("tcp://127.0.0.1:%d", user), "be_app").Shift(ctx, 50); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("a socket without admin level: %v, want HAProxy's refusal", err)
	}
	closed := haproxytest.FreePort(t)
	if err := client(fmt.Sprintf("tcp://127.0.0.1:%d", closed), "be_app").Check(ctx); !errors.Is(err, haproxy.ErrUnreachable) {
		t.Errorf("nothing listening: %v, want ErrUnreachable", err)
	}
}
