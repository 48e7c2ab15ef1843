//go:build integration

package haproxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
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

// TestDownCanaryServersGetNoWeight: three canary servers of which one takes traffic (the other two in
// maintenance, as template slots without an address are). A 5% shift gives the two no weight, so that
// when they come up the canary's share is still 5%, not 15%; Verify then says the weights are stale,
// and a new shift spreads the 5% over all three.
func TestDownCanaryServersGetNoWeight(t *testing.T) {
	for _, way := range ways {
		t.Run(way, func(t *testing.T) {
			tp := newTopology(t, 1, 3, false)
			c := tp.by(t, way)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, n := range []string{"canary2", "canary3"} {
				runtime(t, tp.hap.AdminSocket, "set server be_app/"+n+" state maint")
			}
			set, achieved, err := c.Shift(ctx, 5)
			if err != nil || achieved < 4.5 || achieved > 5.5 {
				t.Fatalf("shift to 5%%: %v, %g%%", err, achieved)
			}
			if set["canary2"] != 0 || set["canary3"] != 0 {
				t.Fatalf("weights %v: the canary servers in maintenance got weight", set)
			}
			if drifted, stale, err := c.Verify(ctx, 5, set); err != nil || len(drifted) > 0 || stale {
				t.Fatalf("Verify right after the shift: drifted %v, stale %v, %v", drifted, stale, err)
			}
			for _, n := range []string{"canary2", "canary3"} {
				runtime(t, tp.hap.AdminSocket, "set server be_app/"+n+" state ready")
			}
			for {
				drifted, stale, err := c.Verify(ctx, 5, set)
				if err != nil || len(drifted) > 0 {
					t.Fatalf("Verify: drifted %v, %v", drifted, err)
				}
				if stale {
					break
				}
				if ctx.Err() != nil {
					t.Fatal("Verify never found the weights stale after two canary servers came up")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got := liveShare(t, c); got > 5.5 {
				t.Errorf("with all canary servers up the canary's share is %g%%, want the step's 5%%", got)
			}
			set, _, err = c.Shift(ctx, 5)
			if err != nil {
				t.Fatal(err)
			}
			if got := liveShare(t, c); got < 4.5 || got > 5.5 || set["canary2"] == 0 || set["canary3"] == 0 {
				t.Errorf("after the new shift: weights %v, share %g%%, want 5%% over all three canary servers", set, got)
			}
		})
	}
}

// liveShare is the canary's share of the weights HAProxy runs, over every server.
func liveShare(t *testing.T, c *haproxy.Client) float64 {
	t.Helper()
	w, err := c.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var canary, all int
	for n, v := range w {
		all += v
		if strings.HasPrefix(n, "canary") {
			canary += v
		}
	}
	if all == 0 {
		return 0
	}
	return 100 * float64(canary) / float64(all)
}

// TestRuntimeWeightsSetByHand: someone used `set weight` on the admin socket, so HAProxy runs weights
// its configuration does not have. WeightsDisagree names each server with both values, and a shift
// sets the runtime weights it needs even where the configuration already has them (a Data Plane API
// PUT that changes nothing in the configuration changes nothing at runtime either).
func TestRuntimeWeightsSetByHand(t *testing.T) {
	for _, way := range []string{"dataplane-v2", "dataplane-v3"} {
		t.Run(way, func(t *testing.T) {
			tp := newTopology(t, 2, 1, false)
			c := tp.by(t, way)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, cmd := range []string{"set weight be_app/canary1 50", "set weight be_app/stable1 7"} {
				if out := strings.TrimSpace(runtime(t, tp.hap.AdminSocket, cmd)); out != "" {
					t.Fatalf("%s: %s", cmd, out)
				}
			}
			got, err := c.WeightsDisagree(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := "canary1 runs weight 50, its configuration says 0; stable1 runs weight 7, its configuration says 100"; strings.Join(got, "; ") != want {
				t.Errorf("WeightsDisagree = %q, want %q", got, want)
			}
			w, _, err := c.Shift(ctx, 0)
			if err != nil {
				t.Fatalf("shift to 0 after a set weight by hand: %v", err)
			}
			live, err := c.Weights(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if live["canary1"] != 0 || live["stable1"] != 100 || live["stable2"] != 100 || w["canary1"] != 0 {
				t.Errorf("runtime weights %v after the shift, want canary1 0 and both stable at 100", live)
			}
			if got, err := c.WeightsDisagree(ctx); err != nil || len(got) > 0 {
				t.Errorf("after the shift, WeightsDisagree = %q, %v: want none", got, err)
			}
		})
	}
}
