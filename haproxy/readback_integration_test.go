//go:build integration

package haproxy_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestShiftReadsBackSlowStartAndDrain: HAProxy reports a server in slow start at a part of its weight
// (growing until the slow start ends) and a draining one at its full weight. A shift that sets weights
// on such servers reads them back as written, through every way of reaching HAProxy.
func TestShiftReadsBackSlowStartAndDrain(t *testing.T) {
	for _, way := range ways {
		t.Run(way, func(t *testing.T) {
			tp := newTopology(t, 2, 1, false, withServerParams("slowstart 60s"))
			c := tp.by(t, way)
			// Out of maintenance and back: canary1 starts its 60 s slow start.
			for _, cmd := range []string{"set server be_app/canary1 state maint", "set server be_app/canary1 state ready", "set server be_app/stable2 state drain"} {
				if out := strings.TrimSpace(runtime(t, tp.hap.AdminSocket, cmd)); out != "" {
					t.Fatalf("%s: %s", cmd, out)
				}
			}
			stat := func() string { return runtime(t, tp.hap.AdminSocket, "show stat be_app 4 -1") }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			w, achieved, err := c.Shift(ctx, 10)
			if err != nil {
				t.Fatalf("shift to 10%% with canary1 in slow start: %v\n%s", err, stat())
			}
			if !slowStarting(stat()) {
				t.Fatalf("canary1 is not in slow start: the test proves nothing\n%s", stat())
			}
			if achieved < 9 || achieved > 11 || w["canary1"] == 0 || w["stable1"] == 0 {
				t.Errorf("weights %v achieve %g%%, want 10%% on canary1 against stable1", w, achieved)
			}
			if _, _, err := c.Shift(ctx, 0); err != nil {
				t.Fatalf("shift back to 0: %v", err)
			}
		})
	}
}

// slowStarting reports whether canary1's row of show stat has a throttle (a slow start under way).
func slowStarting(stat string) bool {
	lines := strings.Split(stat, "\n")
	col := -1
	for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		if name == "throttle" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > col && col >= 0 && f[1] == "canary1" {
			return f[col] != ""
		}
	}
	return false
}
