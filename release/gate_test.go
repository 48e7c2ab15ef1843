package release

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptGate answers from a script of answers (nil opens), then opens; it records what it was asked.
type scriptGate struct {
	mu      sync.Mutex
	answers []error
	asked   []GateRequest
	w       *world
}

func (g *scriptGate) Open(_ context.Context, r GateRequest) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, r)
	if g.w != nil {
		g.w.record("gate %s", r.Point)
	}
	if len(g.answers) == 0 {
		return nil
	}
	a := g.answers[0]
	g.answers = g.answers[1:]
	return a
}

func runWithGates(t *testing.T, w *world, gates ...GateConfig) (Outcome, error, []Event) {
	t.Helper()
	var events []Event
	d := deps(w)
	d.Gates = gates
	e, err := New(testConfig(), d, func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background())
	return out, err, events
}

// TestGatesAtTheirPoints: pre_rollout is asked once the canary is healthy and before it has traffic,
// confirm_promotion once every step passed and before the promotion, post_rollout after the outcome.
func TestGatesAtTheirPoints(t *testing.T) {
	w := &world{}
	pre, confirm, post := &scriptGate{w: w}, &scriptGate{w: w}, &scriptGate{w: w}
	out, err, _ := runWithGates(t, w,
		GateConfig{Name: "smoke", Point: GatePreRollout, Gate: pre},
		GateConfig{Name: "change-board", Point: GateConfirmPromotion, Gate: confirm},
		GateConfig{Name: "tell-qa", Point: GatePostRollout, Gate: post})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	want := "shift 0\ncreate app app:v2\nready app-canary\nup canary\ngate pre_rollout\nshift 10\nanalyze 10\nshift 50\nanalyze 50\ngate confirm_promotion\n" +
		"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary\ngate post_rollout"
	if got := w.log(); got != want {
		t.Errorf("calls:\n%s\nwant:\n%s", got, want)
	}
	if r := pre.asked[0]; r.Canary != "app-canary" || r.Image != "app:v2" || r.CanaryPercent != 0 || r.ReleaseID != "r-test" {
		t.Errorf("pre_rollout asked %+v", r)
	}
	if r := post.asked[0]; r.Outcome != OutcomePromoted {
		t.Errorf("post_rollout asked %+v", r)
	}
}

// TestShutGatesAbort: a pre_rollout gate that stays shut aborts before the canary gets any traffic; a
// confirm_promotion gate that opens after a few asks lets the promotion go on; one that stays shut past
// its timeout aborts with the gate's answer in the reason.
func TestShutGatesAbort(t *testing.T) {
	no := errors.New("HTTP 503: smoke test failed: /checkout answered 500")
	t.Run("pre_rollout shut", func(t *testing.T) {
		w := &world{}
		g := &scriptGate{answers: []error{no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no}}
		out, err, events := runWithGates(t, w, GateConfig{Name: "smoke", Point: GatePreRollout, Gate: g, Timeout: 50 * time.Millisecond, Interval: 5 * time.Millisecond})
		if out != OutcomeAbortedAnalysis || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		if strings.Contains(w.log(), "shift 10") {
			t.Errorf("the canary got traffic though its smoke test failed:\n%s", w.log())
		}
		last := events[len(events)-1]
		if !strings.Contains(last.Message, "pre_rollout gate smoke") || !strings.Contains(last.Message, "smoke test failed: /checkout answered 500") {
			t.Errorf("reason %q lacks the gate and its answer", last.Message)
		}
	})
	t.Run("confirm_promotion opens late", func(t *testing.T) {
		w := &world{}
		g := &scriptGate{answers: []error{no, no}}
		out, err, _ := runWithGates(t, w, GateConfig{Name: "board", Point: GateConfirmPromotion, Gate: g, Timeout: 5 * time.Second, Interval: 5 * time.Millisecond})
		if out != OutcomePromoted || err != nil || len(g.asked) != 3 {
			t.Fatalf("outcome %s, %v, asked %d times", out, err, len(g.asked))
		}
	})
	t.Run("confirm_promotion shut", func(t *testing.T) {
		w := &world{}
		g := &scriptGate{answers: []error{no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no}}
		out, err, events := runWithGates(t, w, GateConfig{Name: "board", Point: GateConfirmPromotion, Gate: g, Timeout: 50 * time.Millisecond, Interval: 5 * time.Millisecond})
		if out != OutcomeAbortedAnalysis || err != nil || strings.Contains(w.log(), "update app") {
			t.Fatalf("outcome %s, %v:\n%s", out, err, w.log())
		}
		if last := events[len(events)-1]; !strings.Contains(last.Message, "confirm_promotion gate board") {
			t.Errorf("reason %q", last.Message)
		}
	})
	t.Run("post_rollout shut is only a warning", func(t *testing.T) {
		w := &world{}
		g := &scriptGate{answers: []error{no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no}}
		out, err, events := runWithGates(t, w, GateConfig{Name: "qa", Point: GatePostRollout, Gate: g, Timeout: 30 * time.Millisecond, Interval: 5 * time.Millisecond})
		if out != OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		warned := false
		for _, ev := range events {
			warned = warned || ev.Kind == KindWarning && strings.Contains(ev.Message, "post_rollout gate qa")
		}
		if !warned {
			t.Error("no warning for the shut post_rollout gate")
		}
	})
}
