package release

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

func TestEarlyLookAbortsAtOnce(t *testing.T) {
	w := &world{early: []verdict.Verdict{{Result: verdict.ResultInconclusive}, {Result: verdict.ResultInconclusive}, {Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%"}}}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval, cfg.ProgressInterval = time.Hour, 5*time.Millisecond, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err, events := run(t, ctx, cfg, w)
	if out != OutcomeAbortedAnalysis || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got, want := w.log(), "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nearly 10\nearly 10\nearly 10\nshift 0\ndrain canary\nremove app-canary"; got != want {
		t.Errorf("calls:\n%s\nwant\n%s", got, want)
	}
	var early *Event
	for i := range events {
		if events[i].Kind == KindAnalysis {
			early = &events[i]
		}
	}
	if early == nil || !early.Verdict.Early || !strings.Contains(early.Message, "early look after") || w.earlyCalls != 3 {
		t.Errorf("early verdict event %+v after %d looks", early, w.earlyCalls)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if rec.LastVerdict == nil || rec.LastVerdict.Result != verdict.ResultFail || !strings.Contains(rec.Message, "failed an early look") {
		t.Errorf("record %+v", rec)
	}
}

func TestEarlyLooksThatFindNothingLetTheBakeEnd(t *testing.T) {
	w := &world{early: []verdict.Verdict{{Result: verdict.ResultInconclusive}, {Result: verdict.ResultPass}}}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval = 60*time.Millisecond, 5*time.Millisecond
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if w.earlyCalls < 4 {
		t.Errorf("only %d early looks in two bakes of 60ms every 5ms", w.earlyCalls)
	}
}

func TestSecondSignalReachesTheAnalyzer(t *testing.T) {
	w := &world{counts: map[string]verdict.Tally{}}
	d := deps(w)
	d.Counter = w
	var events []Event
	e, err := New(testConfig(), d, func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(w.windows) != 2 {
		t.Fatalf("%d windows judged", len(w.windows))
	}
	for _, win := range w.windows {
		// One reading when the step starts, one when its bake ends: one increment each.
		if win.Canary == nil || *win.Canary != (verdict.Tally{Requests: 10, Errors5xx: 1}) || win.Stable == nil || win.Stable.Requests != 100 {
			t.Errorf("window counts canary %+v stable %+v", win.Canary, win.Stable)
		}
	}
	for _, ev := range events {
		if ev.Kind == KindAnalysis && (ev.Observed == nil || ev.Observed.Canary != 10 || ev.Observed.Stable != 100) {
			t.Errorf("analysis event without the observed split: %+v", ev.Observed)
		}
	}
}

func TestInconclusiveCanPauseForAHuman(t *testing.T) {
	w := &world{verdicts: []verdict.Verdict{{Result: verdict.ResultInconclusive, Reason: "canary has 3 requests, needs 50"}, {Result: verdict.ResultPass}}}
	cfg := testConfig()
	cfg.OnInconclusive, cfg.MaxExtensions = "pause", -1
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePaused || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got, want := w.log(), "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10"; got != want {
		t.Errorf("a pause changed traffic:\n%s\nwant\n%s", got, want)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if !rec.Active() || rec.Outcome != OutcomePaused || rec.Phase != PhaseBaking || !strings.Contains(rec.Message, "paused for a human") {
		t.Fatalf("record %+v", rec)
	}
	// No process drives a paused release: another one may take it up at once, here to promote it.
	if _, alive, _ := Liveness(context.Background(), &w.memJournal, rec, time.Hour, time.Now()); alive {
		t.Error("a paused release counts as driven by a live process")
	}
	e, err := New(Config{Service: "app", Steps: []float64{1}, Bake: time.Millisecond, PollInterval: time.Millisecond, EarlyInterval: -1}, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumePromote, ResumeOptions{}); out != OutcomePromoted || err != nil {
		t.Fatalf("promote after pause: %s, %v", out, err)
	}
}

// steered runs a release whose emit function answers events with bake commands.
func steered(t *testing.T, cfg Config, w *world, on func(e *Engine, ev Event)) (Outcome, error, []Event) {
	t.Helper()
	var events []Event
	var e *Engine
	d := deps(w)
	if w.verify != nil {
		d.Verifier = w
	}
	e, err := New(cfg, d, func(ev Event) {
		events = append(events, ev)
		on(e, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background())
	return out, err, events
}

func TestSkipEndsTheBakeNow(t *testing.T) {
	cfg := testConfig()
	cfg.Bake = time.Hour
	out, err, events := steered(t, cfg, &world{}, func(e *Engine, ev Event) {
		if ev.Kind == KindBake {
			e.Request(CommandSkip)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if n := countEvents(events, KindControl, "skipped"); n != 2 {
		t.Errorf("%d skip events, want one per step", n)
	}
}

func TestPauseStopsTheClockUntilContinue(t *testing.T) {
	cfg := testConfig()
	cfg.Bake, cfg.ProgressInterval = 30*time.Millisecond, 10*time.Millisecond
	var pausedAt time.Time
	var continued time.Duration
	out, err, events := steered(t, cfg, &world{}, func(e *Engine, ev Event) {
		switch {
		case ev.Kind == KindBake && ev.Step == 1 && pausedAt.IsZero():
			pausedAt = time.Now()
			e.Request(CommandPause)
		case ev.Kind == KindProgress && strings.HasPrefix(ev.Message, "paused") && time.Since(pausedAt) > 150*time.Millisecond && continued == 0:
			continued = time.Since(pausedAt)
			e.Request(CommandContinue)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	// The bake is 30ms; it lasted until the operator continued it, well after.
	var got []string
	for _, ev := range events {
		if ev.Kind == KindControl {
			got = append(got, strings.SplitN(ev.Message, ":", 2)[0])
		}
	}
	if strings.Join(got, ",") != "paused by an operator,continued by an operator" || continued == 0 {
		t.Errorf("control events %q, continued after %s", got, continued)
	}
}

func TestNudgeMovesTheShareAndRestartsTheWindow(t *testing.T) {
	cfg := testConfig()
	cfg.Bake = time.Hour
	cfg.Steps = []float64{10, 50}
	w := &world{}
	nudged := false
	out, err, _ := steered(t, cfg, w, func(e *Engine, ev Event) {
		switch {
		case ev.Kind == KindBake && !nudged:
			nudged = true
			e.Request(CommandNudgeUp)
			e.Request(CommandNudgeUp)
			e.Request(CommandNudgeDown)
			e.Request(CommandSkip)
		case ev.Kind == KindBake && ev.Step == 2:
			e.Request(CommandSkip)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got := w.log(); !strings.Contains(got, "shift 10\nshift 15\nshift 20\nshift 15\nanalyze 15\n") {
		t.Errorf("calls:\n%s", got)
	}
}

// TestNudgePastThePlanNeedsConfirming: a nudge up beyond the last planned step's share is refused and
// said; the confirmed nudge (which the cockpit asks for) goes ahead.
func TestNudgePastThePlanNeedsConfirming(t *testing.T) {
	cfg := testConfig()
	cfg.Bake = time.Hour
	cfg.Steps = []float64{10}
	w := &world{}
	nudged, refused := false, false
	out, err, _ := steered(t, cfg, w, func(e *Engine, ev Event) {
		switch {
		case ev.Kind == KindBake && !nudged:
			nudged = true
			e.Request(CommandNudgeUp)
		case ev.Kind == KindWarning && ev.Command == CommandNudgeUp && strings.Contains(ev.Message, "beyond the last planned step (10%)"):
			refused = true
			e.Request(CommandNudgeUpPastPlan)
			e.Request(CommandSkip)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if !refused {
		t.Error("the nudge past the plan was not refused")
	}
	if got := w.log(); !strings.Contains(got, "shift 10\nshift 15\nanalyze 15\n") || strings.Count(got, "shift 15") != 1 {
		t.Errorf("calls:\n%s\nwant one shift to 15%%, the confirmed one", got)
	}
}

// TestCanaryScalesWithItsShare: before a step's weight goes up, the canary is scaled to carry that
// share and waited for, ready and healthy; a nudge up does the same; a canary that cannot be scaled is
// aborted before it gets the share.
func TestCanaryScalesWithItsShare(t *testing.T) {
	w := &world{stableReplicas: 10}
	cfg := testConfig()
	cfg.Steps = []float64{10, 25, 50}
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	want := "shift 10\nanalyze 10\n" +
		"scale app-canary to 25% of 10\nready app-canary\nup canary\nshift 25\nanalyze 25\n" +
		"scale app-canary to 50% of 10\nready app-canary\nup canary\nshift 50\nanalyze 50\n"
	if got := w.log(); !strings.Contains(got, "up canary\nscale app-canary to 10% of 10\nready app-canary\nup canary\n"+want) {
		t.Errorf("calls:\n%s\nwant each step's scale, wait and then shift", got)
	}

	w = &world{stableReplicas: 10, scaleErr: errors.New("no suitable node")}
	out, _, _ = run(t, context.Background(), cfg, w)
	if out != OutcomeAbortedError || strings.Contains(w.log(), "shift 10") {
		t.Errorf("outcome %s, calls:\n%s\nwant the release aborted before the canary got traffic", out, w.log())
	}

	w = &world{stableReplicas: 10}
	cfg.FixedCanaryScale = true
	if out, err, _ := run(t, context.Background(), cfg, w); out != OutcomePromoted || err != nil || strings.Contains(w.log(), "% of") {
		t.Errorf("canary.scale fixed: outcome %s, %v, calls:\n%s", out, err, w.log())
	}
}

func TestPauseBeforePromoteStopsAtTheGate(t *testing.T) {
	w := &world{}
	cfg := testConfig()
	cfg.PauseBeforePromote = true
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePaused || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got := w.log(); strings.Contains(got, "update") || strings.Contains(got, "remove") || !strings.HasSuffix(got, "analyze 50") {
		t.Errorf("the gate changed more than the steps:\n%s", got)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if !rec.Active() || rec.Outcome != OutcomePaused || !strings.Contains(rec.Message, "promotion gate") {
		t.Fatalf("record %+v", rec)
	}
	// A later job promotes it.
	e, err := New(Config{Service: "app", Steps: []float64{1}, Bake: time.Millisecond, PollInterval: time.Millisecond, EarlyInterval: -1}, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumePromote, ResumeOptions{}); out != OutcomePromoted || err != nil {
		t.Fatalf("promote at the gate: %s, %v", out, err)
	}
	if got := w.log(); !strings.Contains(got, "update app app:v2") {
		t.Errorf("not promoted:\n%s", got)
	}
}

func TestCountersThatGoBackAreNoSecondSignal(t *testing.T) {
	w := &world{counts: map[string]verdict.Tally{GroupStable: {Requests: 1e6}, GroupCanary: {Requests: 1e5}}}
	d := deps(w)
	d.Counter = w
	var warnings []string
	cfg := testConfig()
	cfg.Steps = []float64{10}
	e, err := New(cfg, d, func(ev Event) {
		if ev.Kind == KindTraffic && ev.CanaryPercent == 10 {
			// HAProxy reloads: its new worker counts from zero.
			w.mu.Lock()
			w.counts = map[string]verdict.Tally{}
			w.mu.Unlock()
		}
		if ev.Kind == KindWarning {
			warnings = append(warnings, ev.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(w.windows) != 1 || w.windows[0].Canary != nil || w.windows[0].Stable != nil {
		t.Errorf("the window carried counts across a reset: %+v", w.windows)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "counters went back") {
		t.Errorf("warnings %q", warnings)
	}
}
