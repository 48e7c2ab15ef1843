package release

import (
	"strings"
	"testing"
	"time"
)

// splitConfig is a one-step release that re-reads the split every millisecond.
func splitConfig(bake time.Duration) Config {
	cfg := testConfig()
	cfg.Steps, cfg.Bake, cfg.SplitInterval, cfg.ProgressInterval = []float64{10}, bake, time.Millisecond, time.Hour
	return cfg
}

// TestStaleWeightsAreComputedAgain: a canary server that comes up during a step (the load balancer's
// weights were computed without it) has the weights computed again at once, at the step's share.
func TestStaleWeightsAreComputedAgain(t *testing.T) {
	w := &world{verify: func(n int) (map[string]int, bool) { return nil, n == 0 }}
	out, err, events := steered(t, splitConfig(50*time.Millisecond), w, func(*Engine, Event) {})
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

// TestDriftPausesTheBake: weights changed outside the release (an operator's set weight on the admin
// socket) are reported at once, and the bake pauses leaving them alone, however long it would have
// run; continue sets the step's weights again and bakes the step anew.
func TestDriftPausesTheBake(t *testing.T) {
	w := &world{verify: func(n int) (map[string]int, bool) {
		if n == 0 {
			return map[string]int{"canary1": 0}, false
		}
		return nil, false
	}}
	var pausedAt time.Time
	out, err, events := steered(t, splitConfig(20*time.Millisecond), w, func(e *Engine, ev Event) {
		if ev.Kind == KindControl && ev.Command == CommandPause && pausedAt.IsZero() {
			pausedAt = time.Now()
			go func() {
				// Well past the bake's 20ms: a paused bake must still be waiting.
				time.Sleep(200 * time.Millisecond)
				e.Request(CommandContinue)
			}()
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	var pause *Event
	for i := range events {
		if events[i].Kind == KindControl && events[i].Command == CommandPause {
			pause = &events[i]
			break
		}
	}
	if pause == nil || !strings.Contains(pause.Message, "canary1 runs weight 0, the release set 10") || !strings.Contains(pause.Message, "fridaymorning continue app") {
		t.Fatalf("pause event %+v: want it to name the server, both weights and how to go on", pause)
	}
	want := "shift 10\nverify 10: drifted map[canary1:0], stale false\nshift 10\nanalyze 10"
	if got := w.log(); !strings.Contains(got, want) {
		t.Errorf("calls:\n%s\nwant\n%s", got, want)
	}
	for _, ev := range events {
		if ev.Kind == KindAnalysis && ev.Time.Before(pausedAt.Add(200*time.Millisecond)) {
			t.Errorf("the step was judged at %s, while paused for the drift", ev.Time)
		}
	}
}
