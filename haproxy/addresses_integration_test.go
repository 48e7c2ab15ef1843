//go:build integration

package haproxy_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/fridaymorning/fridaymorning/haproxy"
)

// TestAddressesOnRealHAProxy: where the servers point reads alike through the Data Plane API v2 and v3
// and through the admin socket, and a backend that is not there is ErrNotFound.
func TestAddressesOnRealHAProxy(t *testing.T) {
	b := newBed(t)
	_, v3 := b.v3(t, false)
	ep := func(name string) haproxy.Address {
		p, _ := strconv.Atoi(port(b.backends[name]))
		return haproxy.Address{Server: name, Host: "127.0.0.1", Port: p}
	}
	want := fmt.Sprint(map[string][]haproxy.Address{
		haproxy.GroupStable: {ep("stable1"), ep("stable2")},
		haproxy.GroupCanary: {ep("canary1")},
	})
	for name, mod := range map[string]func(*haproxy.Config){
		"v2":      nil,
		"v3":      func(c *haproxy.Config) { c.URL = v3 },
		"runtime": func(c *haproxy.Config) { c.Mode, c.RuntimeSocket = haproxy.ModeRuntime, b.hap.AdminSocket },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := b.client(t, mod).Addresses(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != want {
				t.Fatalf("addresses %v, want %v", got, want)
			}
			_, err = b.client(t, func(c *haproxy.Config) {
				if mod != nil {
					mod(c)
				}
				c.Backend = "be_nope"
			}).Addresses(context.Background())
			if name == "runtime" && !errors.Is(err, haproxy.ErrNotFound) {
				t.Errorf("a missing backend: %v, want ErrNotFound", err)
			}
		})
	}
}
