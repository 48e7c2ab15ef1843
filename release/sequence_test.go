package release

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// seqAnalyzer wraps the world's analyzer as a sequential analysis does: each look gets the Sequence
// the look before left and returns it with one more look; early looks pass early when passEarly says so.
type seqAnalyzer struct {
	w         *world
	mu        sync.Mutex
	seen      []int // the Looks of every Sequence given, in order
	passEarly bool
	finals    []verdict.Window
}

func (a *seqAnalyzer) Analyze(ctx context.Context, win verdict.Window) (verdict.Verdict, error) {
	v, err := a.w.Analyze(ctx, win)
	a.mu.Lock()
	defer a.mu.Unlock()
	looks := 0
	if win.Sequence != nil {
		looks = win.Sequence.Looks
	}
	a.seen = append(a.seen, looks)
	if !win.Early {
		a.finals = append(a.finals, win)
	}
	v.Sequence = &verdict.Sequence{Looks: looks + 1, From: win.From, Through: win.To,
		Evidence: map[string]verdict.Evidence{verdict.CheckErrorRate: {Log: []float64{-1, float64(looks)}, Max: float64(looks), N: int64(10 * (looks + 1))}}}
	if win.Early && a.passEarly {
		v.Result, v.PassEarly, v.Reason = verdict.ResultPass, true, "all checks pass; every check is within its limit beyond doubt"
	}
	return v, err
}

// TestSequenceGoesFromLookToLook: every look, early or final, of every step gets the Sequence the look
// before returned, and the release record keeps the last one.
func TestSequenceGoesFromLookToLook(t *testing.T) {
	w := &world{early: []verdict.Verdict{{Result: verdict.ResultInconclusive}}}
	a := &seqAnalyzer{w: w}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval = 40*time.Millisecond, 5*time.Millisecond
	d := deps(w)
	d.Analyzer = a
	e, err := New(cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(a.seen) < 4 {
		t.Fatalf("only %d looks", len(a.seen))
	}
	for i, looks := range a.seen {
		if looks != i {
			t.Fatalf("look %d was given the sequence of %d looks: %v", i+1, looks, a.seen)
		}
	}
	rec := w.stored(t)
	if rec.Sequence == nil || rec.Sequence.Looks != len(a.seen) {
		t.Errorf("the record keeps %+v, want the sequence of all %d looks", rec.Sequence, len(a.seen))
	}
}

// TestResumeKeepsTheSequence: a release taken over goes on with the evidence its record kept: the
// first look of the new process gets it.
func TestResumeKeepsTheSequence(t *testing.T) {
	w := &world{}
	seq := &verdict.Sequence{Looks: 7, Windows: 2, Evidence: map[string]verdict.Evidence{verdict.CheckErrorRate: {Log: []float64{1.5, -2}, Max: 2, N: 700, K: 3}}}
	rec := Record{ID: "r-old", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary", Steps: []float64{10, 50},
		Step: 2, CanaryPercent: 50, Phase: PhaseBaking, Sequence: seq, StartedBy: "tester", StartedAt: time.Now().Add(-time.Hour),
		UpdatedAt: time.Now().Add(-time.Hour), Owner: "dead/1/abc"}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	w.rec = raw
	a := &seqAnalyzer{w: w}
	d := deps(w)
	d.Analyzer = a
	e, err := New(testConfig(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumeContinue, ResumeOptions{}); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(a.seen) == 0 || a.seen[0] != 7 {
		t.Errorf("the first look after the takeover had the sequence of %v looks, want 7", a.seen)
	}
}

// TestEarlyPassEndsTheBake: with EarlyPass, an early look that shows the canary within every limit ends
// the bake once the step has baked MinBake, and the final look judges the window up to then; without
// it, the same looks change nothing.
func TestEarlyPassEndsTheBake(t *testing.T) {
	for _, early := range []bool{true, false} {
		w := &world{}
		a := &seqAnalyzer{w: w, passEarly: true}
		cfg := testConfig()
		cfg.Bake, cfg.EarlyInterval, cfg.MinBake = 300*time.Millisecond, 5*time.Millisecond, 30*time.Millisecond
		cfg.EarlyPass = early
		if !early {
			cfg.Bake = 60 * time.Millisecond
		}
		d := deps(w)
		d.Analyzer = a
		var events []Event
		e, err := New(cfg, d, func(ev Event) { events = append(events, ev) })
		if err != nil {
			t.Fatal(err)
		}
		if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
			t.Fatalf("early pass %v: outcome %s, %v", early, out, err)
		}
		if len(a.finals) != 2 {
			t.Fatalf("early pass %v: %d final looks, want one per step", early, len(a.finals))
		}
		for _, f := range a.finals {
			d := f.To.Sub(f.From)
			switch {
			case early && (d < cfg.MinBake || d >= cfg.Bake):
				t.Errorf("early pass: the final look judged %s, want at least MinBake %s and less than the bake %s", d, cfg.MinBake, cfg.Bake)
			case !early && d < cfg.Bake:
				t.Errorf("without early pass: the final look judged %s, less than the bake %s", d, cfg.Bake)
			}
		}
		said := false
		for _, ev := range events {
			said = said || ev.Kind == KindProgress && ev.Message != "" && strings.Contains(ev.Message, "early pass")
		}
		if said != early {
			t.Errorf("early pass %v: said so %v", early, said)
		}
	}
}
