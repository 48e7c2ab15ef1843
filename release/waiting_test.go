package release

import (
	"context"
	"strings"
	"testing"
	"time"
)

// stuckRouter is the world with a load balancer whose shifts to share stuck hang until released.
type stuckRouter struct {
	*world
	stuck   float64
	release chan struct{}
}

func (r *stuckRouter) Shift(ctx context.Context, pct float64) (map[string]int, float64, error) {
	if pct == r.stuck {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return r.world.Shift(ctx, pct)
}

// explainingRouter's WaitUp of the canary hangs until release is closed, and says why meanwhile.
type explainingRouter struct {
	*world
	release chan struct{}
}

func (r *explainingRouter) WaitUp(ctx context.Context, group string) error {
	if group == GroupCanary {
		select {
		case <-r.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.world.WaitUp(ctx, group)
}

func (r *explainingRouter) WaitingOn(group string) string {
	if group == GroupCanary {
		return "canary1 is up at 10.0.1.14:8080, which is no running task of app-canary"
	}
	return ""
}

// waitLines runs a release whose adapter hangs until two progress events say what it waits for, then
// lets the adapter answer, and returns the progress messages seen while it hung.
func waitLines(t *testing.T, cfg Config, d Deps, unblock func()) []string {
	t.Helper()
	events := make(chan Event, 1000)
	e, err := New(cfg, d, func(ev Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Outcome, 1)
	go func() {
		out, _ := e.Run(context.Background())
		done <- out
	}()
	var seen []string
	deadline := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case ev := <-events:
			if ev.Kind == KindProgress && strings.HasPrefix(ev.Message, "waiting for ") {
				seen = append(seen, ev.Message)
			}
		case out := <-done:
			t.Fatalf("the release ended %s while the adapter hung, saying only %q", out, seen)
		case <-deadline:
			t.Fatalf("no progress while the adapter hung; saw %q", seen)
		}
	}
	unblock()
	select {
	case out := <-done:
		if out != OutcomePromoted {
			t.Fatalf("outcome %s once the adapter answered", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the release did not end once the adapter answered")
	}
	return seen
}

// TestWaitingIsSaid: while the metrics store or the load balancer does not answer, the release says
// every WaitNotice what it waits for and since when, and carries on once it answers.
func TestWaitingIsSaid(t *testing.T) {
	t.Run("metrics store hangs during the analysis", func(t *testing.T) {
		w := &world{}
		unblock := make(chan struct{})
		w.onAnalyze = func(n int) {
			if n == 0 {
				<-unblock
			}
		}
		cfg := testConfig()
		cfg.WaitNotice, cfg.MetricsStore = time.Millisecond, "InfluxDB at http://influx:8086"
		seen := waitLines(t, cfg, deps(w), func() { close(unblock) })
		if want := "waiting for InfluxDB at http://influx:8086 (analysis of step 1) since "; !strings.HasPrefix(seen[0], want) {
			t.Errorf("progress %q, want it to start %q", seen[0], want)
		}
	})
	t.Run("load balancer hangs on a shift", func(t *testing.T) {
		r := &stuckRouter{world: &world{}, stuck: 50, release: make(chan struct{})}
		cfg := testConfig()
		cfg.WaitNotice, cfg.LoadBalancer = time.Millisecond, "HAProxy"
		d := deps(r.world)
		d.Router = r
		seen := waitLines(t, cfg, d, func() { close(r.release) })
		if want := "waiting for HAProxy (setting the canary's share to 50%) since "; !strings.HasPrefix(seen[0], want) {
			t.Errorf("progress %q, want it to start %q", seen[0], want)
		}
	})
	t.Run("canary servers not ready, and the router says why", func(t *testing.T) {
		r := &explainingRouter{world: &world{}, release: make(chan struct{})}
		cfg := testConfig()
		cfg.WaitNotice, cfg.LoadBalancer = time.Millisecond, "HAProxy"
		d := deps(r.world)
		d.Router = r
		seen := waitLines(t, cfg, d, func() { close(r.release) })
		want := "waiting for HAProxy (health checks of the canary servers) since "
		why := ": canary1 is up at 10.0.1.14:8080, which is no running task of app-canary"
		if !strings.HasPrefix(seen[0], want) || !strings.HasSuffix(seen[0], why) {
			t.Errorf("progress %q, want it to start %q and end %q", seen[0], want, why)
		}
	})
	t.Run("load balancer hangs when the bake re-reads its weights", func(t *testing.T) {
		w := &world{}
		unblock := make(chan struct{})
		w.verify = func(n int) (map[string]int, bool) {
			if n == 0 {
				<-unblock
			}
			return nil, false
		}
		cfg := testConfig()
		cfg.Bake, cfg.SplitInterval, cfg.WaitNotice, cfg.LoadBalancer = 50*time.Millisecond, time.Millisecond, time.Millisecond, "HAProxy"
		d := deps(w)
		d.Verifier = w
		seen := waitLines(t, cfg, d, func() { close(unblock) })
		if want := "waiting for HAProxy (reading the weights it runs) since "; !strings.HasPrefix(seen[0], want) {
			t.Errorf("progress %q, want it to start %q", seen[0], want)
		}
	})
	t.Run("a preflight check hangs", func(t *testing.T) {
		w := &world{}
		unblock := make(chan struct{})
		cfg := testConfig()
		cfg.WaitNotice = time.Millisecond
		seen := waitLines(t, cfg, deps(w, Preflight{Name: "influxdb", Run: func(ctx context.Context) error { <-unblock; return nil }}), func() { close(unblock) })
		if want := "waiting for influxdb (preflight check) since "; !strings.HasPrefix(seen[0], want) {
			t.Errorf("progress %q, want it to start %q", seen[0], want)
		}
	})
}
