//go:build integration

package haproxy_test

import (
	"context"
	"os"
	"testing"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
)

// TestRuntimeSocketReconnects: a runtime-mode client whose first connection failed (HAProxy was not up,
// or restarting) connects once HAProxy answers, instead of failing for ever.
func TestRuntimeSocketReconnects(t *testing.T) {
	b := newBed(t)
	cfgText, err := os.ReadFile(b.hap.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	b.hap.Stop()
	rt := b.client(t, func(c *haproxy.Config) { c.Mode = haproxy.ModeRuntime; c.RuntimeSocket = b.hap.AdminSocket })
	ctx := context.Background()
	if err := rt.Check(ctx); err == nil {
		t.Fatal("Check succeeded with HAProxy stopped")
	}
	b.hap = haproxytest.Start(t, b.hap.Dir, string(cfgText))
	if err := rt.Check(ctx); err != nil {
		t.Fatalf("Check once HAProxy is back: %v", err)
	}
	if _, err := rt.Weights(ctx); err != nil {
		t.Fatalf("Weights once HAProxy is back: %v", err)
	}
}
