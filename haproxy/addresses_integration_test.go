//go:build integration

package haproxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
)

// TestAddressesOnRealHAProxy: where the servers point reads alike through the Data Plane API v2 and v3
// and through the admin socket; a server that takes no traffic (canary1, at weight 0) keeps its address
// and is said to be up but not to serve; a backend that is not there is an error that names it.
func TestAddressesOnRealHAProxy(t *testing.T) {
	b := newBed(t)
	_, v3 := b.v3(t, false)
	addr := func(name string) string { return "127.0.0.1:" + port(b.backends[name]) }
	want := fmt.Sprint(map[string]map[string]haproxy.Address{
		haproxy.GroupStable: {"stable1": {Addr: addr("stable1"), Serving: true, Up: true}, "stable2": {Addr: addr("stable2"), Serving: true, Up: true}},
		haproxy.GroupCanary: {"canary1": {Addr: addr("canary1"), Serving: false, Up: true}},
	})
	for name, mod := range map[string]func(*haproxy.Config){
		"v2":      nil,
		"v3":      func(c *haproxy.Config) { c.URL = v3 },
		"runtime": func(c *haproxy.Config) { c.Mode, c.RuntimeSocket = haproxy.ModeRuntime, b.hap.AdminSocket },
	} {
		t.Run(name, func(t *testing.T) {
			c := b.client(t, mod)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, g := range []string{haproxy.GroupStable, haproxy.GroupCanary} {
				if err := c.WaitUp(ctx, g); err != nil {
					t.Fatal(err)
				}
			}
			got := map[string]map[string]haproxy.Address{}
			for _, g := range []string{haproxy.GroupStable, haproxy.GroupCanary} {
				a, err := c.Addresses(ctx, g)
				if err != nil {
					t.Fatal(err)
				}
				got[g] = a
			}
			if fmt.Sprint(got) != want {
				t.Fatalf("addresses %v, want %v", got, want)
			}
			if h, p, ok := got[haproxy.GroupCanary]["canary1"].HostPort(); !ok || h != "127.0.0.1" || fmt.Sprint(p) != port(b.backends["canary1"]) {
				t.Errorf("canary1's host and port: %q %d %v", h, p, ok)
			}
			_, err := b.client(t, func(c *haproxy.Config) {
				if mod != nil {
					mod(c)
				}
				c.Backend = "be_nope"
			}).Addresses(ctx, haproxy.GroupStable)
			if err == nil {
				t.Fatal("a missing backend: no error")
			}
			if !strings.Contains(err.Error(), "be_nope") {
				t.Errorf("a missing backend: %v: want it named", err)
			}
		})
	}
}
