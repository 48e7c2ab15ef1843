package release

import (
	"context"
	"strings"
	"testing"
	"time"
)

// splitRun runs a one-step release with w as its Verifier, re-reading the split every millisecond.
func splitRun(t *testing.T, w *world, bake time.Duration, during func(e *Engine)) (Outcome, error, []Event) {
	t.Helper()
	cfg := testConfig()
	cfg.Steps, cfg.Bake, cfg.SplitInterval, cfg.ProgressInterval = []float64{10}, bake, time.Millisecond, time.Hour
	d := deps(w)
	d.Verifier = w
	events := make(chan Event, 1000)
	e, err := New(cfg, d, func(ev Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	if during != nil {
		go during(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := e.Run(ctx)
	close(events)
	var all []Event
	for ev := range events {
		all = append(all, ev)
	}
	return out, err, all
}

// TestStaleWeightsAreComputedAgain: a canary server that comes up during a step (the load balancer's
// weights were computed without it) has the weights computed again at once, at the step's share.
func TestStaleWeightsAreComputedAgain(t *testing.T) {
	w := &world{verify: func(n int) (map[string]int, bool) { return nil, n == 0 }}
	out, err, events := splitRun(t, w, 50*time.Millisecond, nil)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if !strings.Contains(w.log(), "shift 10\nverify 10: drifted map[], stale true\nshift 10\nanalyze 10") {
		t.Errorf("calls:\n%s\nwant the step's shift done again when the weights are stale", w.log())
	}
	found := false
	for _, ev := range events {
		found = found || ev.Kind == KindTraffic && strings.Contains(ev.Message, "weights computed again")
	}
	if !found {
		t.Error("no traffic event says the weights were computed again")
	}
}
