package release

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// These tests are issue 13's: a release ends with no canary nobody owns, no two owners, and no lock only
// a human with docker can clear.

func TestVanishedRecordAbortsTheRelease(t *testing.T) {
	for _, tt := range []struct {
		name string
		// when the record goes: at the first analysis (the next write finds it gone), or as step 1's
		// bake starts (the watcher finds it gone).
		on      func(w *world)
		bake    time.Duration
		wantLog string
	}{
		{"found by the next write", func(w *world) {
			w.onAnalyze = func(n int) {
				if n == 0 {
					w.removeRecord()
				}
			}
		}, 300 * time.Millisecond, "shift 10\nanalyze 10\nshift 0\ndrain canary\nremove app-canary"},
		{"found by the watcher during the bake", func(w *world) {
			var once sync.Once
			w.onCall = func(call string) {
				if call == "shift 10" {
					once.Do(w.removeRecord)
				}
			}
		}, 10 * time.Second, "shift 10\nshift 0\ndrain canary\nremove app-canary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{}
			tt.on(w)
			cfg := testConfig()
			cfg.Bake = tt.bake
			out, err, events := run(t, context.Background(), cfg, w)
			if out != OutcomeAbortedError || err != nil {
				t.Fatalf("outcome %s, %v; want %s", out, err, OutcomeAbortedError)
			}
			if got := w.log(); !strings.HasSuffix(got, tt.wantLog) || strings.Contains(got, "update") {
				t.Fatalf("calls:\n%s\nwant them to end with:\n%s", got, tt.wantLog)
			}
			r := w.stored(t)
			if r == nil || r.ID != "r-test" || r.Outcome != OutcomeAbortedError || !strings.Contains(r.Message, "removed") {
				t.Fatalf("record after the abort: %+v: want it written back, aborted", r)
			}
			if last := events[len(events)-1]; strings.Contains(last.Message, ErrLostOwnership.Error()) {
				t.Errorf("a vanished record was taken for a take-over: %s", last.Message)
			}
		})
	}
}

func TestReleaseFoundOnItsCanaryWhenTheRecordIsGone(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	w.mirror = w.rec
	w.removeRecord()
	rec, err := Load(context.Background(), &w.memJournal, "app")
	if err != nil || rec == nil || !rec.Recovered || rec.ID != "r-dead" || !rec.Active() {
		t.Fatalf("Load = %+v, %v: want the release found on its canary", rec, err)
	}
	if _, err := Request(context.Background(), &w.memJournal, "app", CommandAbort); err != nil {
		t.Fatalf("a request to the release found on its canary: %v", err)
	}
	if out, err := resume(t, w, ResumeAbort, false); out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("abort: %s, %v", out, err)
	}
	if got := w.log(); got != "shift 0\ndrain canary\nremove app-canary" {
		t.Fatalf("calls:\n%s", got)
	}
	if r := w.stored(t); r == nil || r.ID != "r-dead" || r.Outcome != OutcomeAbortedOperator {
		t.Fatalf("record on the stable service: %+v", r)
	}
}

// crashedIn stores a release whose process died in phase, right after doing the sub-step that follows
// progress (the record does not know of it yet); done applies that sub-step to the world.
func crashedIn(t *testing.T, w *world, phase Phase, progress Progress, done func(w *world)) {
	t.Helper()
	deadRelease(t, w, phase, 2)
	setProgress(t, w, progress)
	if done != nil {
		done(w)
	}
}

func onImage(img string) func(w *world) {
	return func(w *world) { w.images = map[string]string{"app": img} }
}

func canaryGone(img string) func(w *world) {
	return func(w *world) {
		w.images = map[string]string{"app": img}
		w.gone = map[string]bool{"app-canary": true}
	}
}

func TestPromotionResumesAfterAKillAtEverySubStep(t *testing.T) {
	tail := func(calls string) string { return calls }
	tests := []struct {
		name     string
		progress Progress
		done     func(w *world)
		calls    string
	}{
		{"canary scaled", "", nil,
			"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"all traffic on the canary", ProgressCanaryScaled, nil,
			"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"stable updated", ProgressStableUpdating, onImage("app:v2"),
			"ready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"traffic back on stable", ProgressStableUpdated, onImage("app:v2"),
			"shift 0\ndrain canary\nremove app-canary"},
		{"canary drained", ProgressOnStable, onImage("app:v2"),
			"drain canary\nremove app-canary"},
		{"canary removed, final record not written", ProgressOnStable, canaryGone("app:v2"),
			tail("drain canary\nremove app-canary")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{}
			crashedIn(t, w, PhasePromoting, tt.progress, tt.done)
			out, err := resume(t, w, ResumeContinue, false)
			if out != OutcomePromoted || err != nil {
				t.Fatalf("resume: %s, %v; want promoted\ncalls:\n%s", out, err, w.log())
			}
			if got := w.log(); got != tt.calls {
				t.Fatalf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			if img := w.images["app"]; img != "app:v2" {
				t.Fatalf("stable ends on %s, want app:v2", img)
			}
			if r := w.stored(t); r.Phase != PhasePromoted || r.Progress != ProgressCanaryRemoved {
				t.Fatalf("record %+v", r)
			}
		})
	}
}

func TestRollbackResumesAfterAKillAtEverySubStep(t *testing.T) {
	tests := []struct {
		name     string
		progress Progress
		done     func(w *world)
		calls    string
	}{
		{"traffic on the standby", "", onImage("app:v2"),
			"shift 100\nupdate app app:v1\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"stable rolled back", ProgressStableRollingBack, onImage("app:v1"),
			"ready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"traffic back on stable", ProgressStableRolledBack, onImage("app:v1"),
			"shift 0\ndrain canary\nremove app-canary"},
		{"standby removed, final record not written", ProgressBackOnStable, canaryGone("app:v1"),
			"drain canary\nremove app-canary"},
	}
	for _, tt := range tests {
		for _, mode := range []ResumeMode{ResumeContinue, ResumeRollback, ResumeAbort} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				w := &world{}
				crashedIn(t, w, PhaseRollingBack, tt.progress, tt.done)
				out, err := resume(t, w, mode, false)
				if out != OutcomeRolledBack || err != nil {
					t.Fatalf("%s: %s, %v; want rolled back\ncalls:\n%s", mode, out, err, w.log())
				}
				if got := w.log(); got != tt.calls {
					t.Fatalf("calls:\n%s\nwant:\n%s", got, tt.calls)
				}
				if r := w.stored(t); r.Active() || r.Outcome != OutcomeRolledBack {
					t.Fatalf("record %+v", r)
				}
			})
		}
	}
}

// racingJournal is a journal where another process writes the record between a reader's read and its
// write, once.
type racingJournal struct {
	*memJournal
	once  sync.Once
	race  func()
	reads int
}

func (j *racingJournal) ReadState(ctx context.Context, service string) ([]byte, string, uint64, error) {
	raw, req, v, err := j.memJournal.ReadState(ctx, service)
	j.once.Do(j.race)
	return raw, req, v, err
}

func TestTakeOverRequiresTheRecordUnchangedSinceJudgedStale(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	// Between the take-over's read and its write, the driver shows it is alive: it writes the record and
	// beats on the canary.
	j := &racingJournal{memJournal: &w.memJournal, race: func() {
		r := w.stored(t)
		r.UpdatedAt = time.Now()
		storeRecord(t, w, *r)
		_ = w.Beat(context.Background(), "app-canary", "dead-process", time.Now())
	}}
	d := deps(w)
	d.Journal = j
	cfg := testConfig()
	cfg.ReleaseID, cfg.Image = "", ""
	e, err := New(cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Resume(context.Background(), ResumeContinue, ResumeOptions{})
	if err == nil || !strings.Contains(err.Error(), "driven by a live process") {
		t.Fatalf("err = %v: want the take-over refused once the driver showed life", err)
	}
	if r := w.stored(t); r.Owner != "dead-process" {
		t.Fatalf("owner %q: the take-over went through", r.Owner)
	}
}

func TestLostOwnershipStopsThePromotionAtOnce(t *testing.T) {
	w := &world{}
	w.onCall = func(call string) {
		if call == "update app app:v2" {
			// Another process takes the release over while stable updates.
			_, _ = casRecord(context.Background(), &w.memJournal, "app", func(cur *Record, req string) (*Record, string, error) {
				cur.Owner = "usurper"
				return cur, req, nil
			})
		}
	}
	out, err, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomeFailed || !errors.Is(err, ErrLostOwnership) {
		t.Fatalf("%s %v", out, err)
	}
	log := w.log()
	if after := log[strings.Index(log, "update app app:v2"):]; strings.Contains(after, "shift") || strings.Contains(after, "remove") {
		t.Fatalf("the promotion went on after losing the release:\n%s", log)
	}
}

func TestHaltedReleaseHasNoDriver(t *testing.T) {
	w := &world{readyErr: map[string]error{"app": errors.New("task failed")}}
	out, _, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomeFailed {
		t.Fatalf("outcome %s", out)
	}
	r := w.stored(t)
	if !r.Active() || r.Owner != "" {
		t.Fatalf("record %+v: want it active with no owner", r)
	}
	// The heartbeat is fresh, but no process drives the release: the next command takes it over at once.
	if _, alive, err := Liveness(context.Background(), &w.memJournal, r, time.Hour, time.Now()); alive || err != nil {
		t.Fatalf("alive %v, %v", alive, err)
	}
}

func TestTakeOverCarriesOutPendingRequests(t *testing.T) {
	for _, tt := range []struct {
		mode ResumeMode
		req  Command
		want Outcome
	}{
		{ResumeContinue, CommandAbort, OutcomeAbortedOperator},
		{ResumePromote, CommandAbort, OutcomeAbortedOperator},
		{ResumeContinue, CommandPromote, OutcomePromoted},
	} {
		t.Run(string(tt.mode)+" with "+string(tt.req)+" pending", func(t *testing.T) {
			w := &world{}
			deadRelease(t, w, PhaseBaking, 1)
			w.request = string(tt.req)
			out, err := resume(t, w, tt.mode, false)
			if out != tt.want || err != nil {
				t.Fatalf("%s, %v; want %s\ncalls:\n%s", out, err, tt.want, w.log())
			}
			if tt.want == OutcomeAbortedOperator && strings.Contains(w.log(), "update") {
				t.Fatalf("a pending abort was dropped:\n%s", w.log())
			}
		})
	}
}

func TestAbortRequestIsNeverReplaced(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	for _, c := range []Command{CommandAbort, CommandPromote, CommandPause} {
		if _, err := Request(context.Background(), &w.memJournal, "app", c); err != nil {
			t.Fatal(err)
		}
	}
	if w.request != string(CommandAbort) {
		t.Fatalf("pending request %q, want abort", w.request)
	}
}

func TestAbortRetriesUntilTrafficIsOffTheCanary(t *testing.T) {
	w := &world{verdicts: []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors"}}, shiftFailsN: 12}
	cfg := testConfig()
	out, err, events := run(t, context.Background(), cfg, w)
	if out != OutcomeAbortedAnalysis || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	_, abort, _ := strings.Cut(w.log(), "shift 10")
	if n := strings.Count(abort, "shift 0"); n != 13 {
		t.Errorf("%d shifts back to stable, want 13 (12 failures, then success)", n)
	}
	if warned := countEvents(events, KindWarning, "api down"); warned != 12 {
		t.Errorf("%d warnings naming the cause, want 12", warned)
	}
}

func TestAbortThatRunsOutOfTimeNamesTheCause(t *testing.T) {
	w := &world{verdicts: []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors"}},
		shiftErr: map[float64]error{0: errors.New("haproxy: no stable server of backend \"be_app\" takes traffic")}}
	cfg := testConfig()
	cfg.PromoteTimeout = 50 * time.Millisecond
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomeFailed || err == nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "no stable server") || strings.Contains(msg, "Data Plane API") {
		t.Fatalf("err = %v: want the real cause, not a guess", err)
	}
	if strings.Contains(w.log(), "remove") {
		t.Fatalf("the canary was removed while it had traffic:\n%s", w.log())
	}
}

func TestAbortDuringPromotionKeepsTheStandby(t *testing.T) {
	w := &world{}
	cfg := testConfig()
	cfg.Standby = time.Hour
	var e *Engine
	w.onCall = func(call string) {
		if call == "update app app:v2" {
			e.Request(CommandAbort)
		}
	}
	var events []Event
	var err error
	e, err = New(cfg, deps(w), func(ev Event) {
		events = append(events, ev)
		if ev.Kind == KindPhase && ev.Phase == PhaseStandby {
			go func() {
				// Give a wrongly queued abort the chance to end the standby, then end it as an operator would.
				time.Sleep(50 * time.Millisecond)
				e.Request(CommandRollback)
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background())
	if out != OutcomeRolledBack || err != nil {
		t.Fatalf("outcome %s, %v: want the standby kept until the operator rolled back\ncalls:\n%s", out, err, w.log())
	}
	if countEvents(events, KindWarning, "abort requested during the promotion") == 0 {
		t.Error("the abort asked for during the promotion was not reported")
	}
}

func TestRequestWhileTheCanaryIsCreatedLeavesNoOrphan(t *testing.T) {
	for _, tt := range []struct {
		name      string
		interrupt bool
		cmd       Command
		want      Outcome
		tail      string
	}{
		{"interrupt", true, "", OutcomeAbortedOperator, "create app app:v2\nshift 0\ndrain canary\nremove app-canary"},
		{"abort", false, CommandAbort, OutcomeAbortedOperator, "create app app:v2\nshift 0\ndrain canary\nremove app-canary"},
		{"promote", false, CommandPromote, OutcomePromoted, "remove app-canary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &world{}
			var e *Engine
			var once sync.Once
			w.onCreate = func(context.Context) {
				once.Do(func() {
					if tt.interrupt {
						cancel()
					} else {
						e.Request(tt.cmd)
					}
				})
			}
			var err error
			if e, err = New(testConfig(), deps(w), nil); err != nil {
				t.Fatal(err)
			}
			out, err := e.Run(ctx)
			if out != tt.want || err != nil {
				t.Fatalf("%s, %v; want %s\ncalls:\n%s", out, err, tt.want, w.log())
			}
			if got := w.log(); !strings.HasSuffix(got, tt.tail) {
				t.Fatalf("calls:\n%s\nwant them to end with\n%s", got, tt.tail)
			}
		})
	}
}

func TestPromoteOfAPausedReleaseJudgesAFreshWindow(t *testing.T) {
	pass := verdict.Verdict{Result: verdict.ResultPass, Reason: "ok"}
	for _, tt := range []struct {
		name  string
		fresh verdict.Verdict
		skip  bool
		want  Outcome
		calls string
	}{
		{"fresh window fails: aborted", verdict.Verdict{Result: verdict.ResultFail, Reason: "errors now"}, false, OutcomeAbortedAnalysis,
			"shift 50\nanalyze 50\nshift 0\ndrain canary\nremove app-canary"},
		{"fresh window inconclusive: refused", verdict.Verdict{Result: verdict.ResultInconclusive, Reason: "no traffic"}, false, OutcomePaused,
			"shift 50\nanalyze 50"},
		{"fresh window passes: promoted", pass, false, OutcomePromoted,
			"shift 50\nanalyze 50\nscale app-canary"},
		{"--skip-analysis: promoted on the last verdict", verdict.Verdict{Result: verdict.ResultFail}, true, OutcomePromoted,
			"scale app-canary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{verdicts: []verdict.Verdict{pass, pass, tt.fresh}}
			cfg := testConfig()
			cfg.PauseBeforePromote = true
			if out, err, _ := run(t, context.Background(), cfg, w); out != OutcomePaused || err != nil {
				t.Fatalf("release: %s, %v", out, err)
			}
			if r := w.stored(t); !r.Gate || r.VerdictAt == nil || r.Owner != "" {
				t.Fatalf("record at the gate %+v: want the gate, the verdict's time and no owner", r)
			}
			w.calls = nil
			cfg.PauseBeforePromote, cfg.ReleaseID, cfg.Image = true, "", "" // a gate in the config does not stop a promote
			e, err := New(cfg, deps(w), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Resume(context.Background(), ResumePromote, ResumeOptions{SkipAnalysis: tt.skip})
			if out != tt.want || err != nil {
				t.Fatalf("promote: %s, %v; want %s\ncalls:\n%s", out, err, tt.want, w.log())
			}
			if got := w.log(); !strings.HasPrefix(got, tt.calls) {
				t.Fatalf("calls:\n%s\nwant them to start with\n%s", got, tt.calls)
			}
			if r := w.stored(t); tt.want == OutcomePaused && (!r.Active() || !strings.Contains(r.Message, "--skip-analysis")) {
				t.Fatalf("record after the refusal %+v", r)
			}
		})
	}
}

func TestWatchAtTheGate(t *testing.T) {
	pass := verdict.Verdict{Result: verdict.ResultPass, Reason: "ok"}
	t.Run("a canary that starts failing at the gate is aborted", func(t *testing.T) {
		w := &world{verdicts: []verdict.Verdict{pass}, early: []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors at the gate"}}}
		cfg := testConfig()
		cfg.Steps, cfg.PauseBeforePromote, cfg.WatchAtGate, cfg.EarlyInterval = []float64{10}, true, true, 5*time.Millisecond
		cfg.Bake = 30 * time.Millisecond
		w.onAnalyze = func(int) { w.early = []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors at the gate"}} }
		w.early = []verdict.Verdict{{Result: verdict.ResultInconclusive}}
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomeAbortedAnalysis || err != nil {
			t.Fatalf("%s, %v\ncalls:\n%s", out, err, w.log())
		}
	})
	t.Run("promote asks the watching process, which judges the window since the gate", func(t *testing.T) {
		w := &world{verdicts: []verdict.Verdict{pass}}
		cfg := testConfig()
		cfg.Steps, cfg.PauseBeforePromote, cfg.WatchAtGate = []float64{10}, true, true
		cfg.Bake = 20 * time.Millisecond
		var e *Engine
		var err error
		e, err = New(cfg, deps(w), func(ev Event) {
			if ev.Kind == KindProgress && strings.Contains(ev.Message, "at the promotion gate") {
				go e.Request(CommandPromote)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Run(context.Background())
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s, %v", out, err)
		}
		if n := strings.Count(w.log(), "analyze 10"); n != 2 {
			t.Fatalf("%d analyses, want 2 (the step, then the window at the gate)\n%s", n, w.log())
		}
	})
}

func TestResumeRefusesAnotherReleaseThanNamed(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	cfg := testConfig()
	cfg.ReleaseID, cfg.Image = "", ""
	e, err := New(cfg, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []ResumeOptions{{ReleaseID: "r-other"}, {Image: "app:v9"}} {
		if _, err := e.Resume(context.Background(), ResumePromote, opts); !errors.Is(err, ErrOtherRelease) {
			t.Fatalf("%+v: err = %v", opts, err)
		}
	}
	if got := w.log(); got != "" {
		t.Fatalf("calls:\n%s", got)
	}
	if out, err := resume(t, w, ResumeAbort, false); out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("%s %v", out, err)
	}
}

func TestUnlockPutsTrafficOnWhatIsHealthy(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(w *world)
		calls   string
		message []string
	}{
		{"stable healthy, standby gone", canaryGone("app:v1"),
			"ready app\nup stable\nshift 0", []string{"stable app runs app:v1 and is healthy", "canary app-canary is gone", "all traffic is on stable"}},
		{"stable healthy, canary running", onImage("app:v1"),
			"ready app\nup stable\nready app-canary\nup canary\nshift 0\ndrain canary\nremove app-canary", []string{"the canary app-canary is removed"}},
		{"stable broken, canary healthy", func(w *world) { w.readyErr = map[string]error{"app": errors.New("task failed: exit 1")} },
			"ready app\nready app-canary\nup canary\nshift 100", []string{"is not healthy: task failed", "all traffic is on the canary app-canary"}},
		{"nothing healthy", func(w *world) {
			w.readyErr = map[string]error{"app": errors.New("task failed"), "app-canary": errors.New("task failed")}
		}, "ready app\nready app-canary", []string{"nothing is healthy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{}
			crashedIn(t, w, PhaseRollingBack, ProgressBackOnStable, tt.setup)
			e, err := New(testConfig(), deps(w), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, msg, err := e.Unlock(context.Background(), false)
			if out != OutcomeUnlocked || err != nil {
				t.Fatalf("%s, %v", out, err)
			}
			if got := w.log(); got != tt.calls {
				t.Fatalf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			for _, m := range tt.message {
				if !strings.Contains(msg, m) {
					t.Errorf("report %q lacks %q", msg, m)
				}
			}
			if r := w.stored(t); r.Active() || r.Outcome != OutcomeUnlocked || r.Message != msg {
				t.Fatalf("record %+v: want the lock released with the report", r)
			}
		})
	}
	t.Run("a live driver is not unlocked without force", func(t *testing.T) {
		w := &world{}
		deadRelease(t, w, PhaseBaking, 1)
		_ = w.Beat(context.Background(), "app-canary", "dead-process", time.Now())
		e, err := New(testConfig(), deps(w), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Unlock(context.Background(), false); err == nil || !strings.Contains(err.Error(), "live process") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAskStopsWaitingOnADeadDriver(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	// The driver beat a moment ago, then died.
	_ = w.Beat(context.Background(), "app-canary", "dead-process", time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	rec, stale, err := Ask(ctx, &w.memJournal, &w.memJournal, "app", CommandAbort, 100*time.Millisecond, 5*time.Millisecond, nil)
	if err != nil || !stale || rec == nil || rec.ID != "r-dead" {
		t.Fatalf("Ask = %+v, %v, %v: want it to give up on the dead driver", rec, stale, err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	// The take-over that follows finds the abort pending and carries it out.
	cfg := testConfig()
	cfg.ReleaseID, cfg.Image, cfg.StaleAfter = "", "", 100*time.Millisecond
	e, err := New(cfg, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumeContinue, ResumeOptions{}); out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("%s %v", out, err)
	}
}

func TestAskFollowsALiveDriverToTheEnd(t *testing.T) {
	w := &world{}
	cfg := testConfig()
	cfg.Bake = time.Second
	e, err := New(cfg, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Outcome)
	go func() { out, _ := e.Run(context.Background()); done <- out }()
	deadline := time.Now().Add(5 * time.Second)
	for r := w.stored(t); r == nil || r.Phase != PhaseBaking; r = w.stored(t) {
		if time.Now().After(deadline) {
			t.Fatal("the release never baked")
		}
		time.Sleep(time.Millisecond)
	}
	rec, stale, err := Ask(context.Background(), &w.memJournal, &w.memJournal, "app", CommandAbort, time.Minute, 5*time.Millisecond, nil)
	if err != nil || stale || rec.Outcome != OutcomeAbortedOperator {
		t.Fatalf("Ask = %+v, %v, %v", rec, stale, err)
	}
	if out := <-done; out != OutcomeAbortedOperator {
		t.Fatalf("release %s", out)
	}
}

func TestWatchingAPausedRelease(t *testing.T) {
	paused := func(t *testing.T, w *world) {
		deadRelease(t, w, PhaseBaking, 2)
		r := w.stored(t)
		r.Outcome, r.Owner, r.Gate = OutcomePaused, "", true
		storeRecord(t, w, *r)
	}
	t.Run("a canary that starts failing is aborted", func(t *testing.T) {
		w := &world{early: []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors while paused"}}}
		paused(t, w)
		cfg := testConfig()
		cfg.ReleaseID, cfg.Image, cfg.EarlyInterval = "", "", 5*time.Millisecond
		e, err := New(cfg, deps(w), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Resume(context.Background(), ResumeWatch, ResumeOptions{})
		if out != OutcomeAbortedAnalysis || err != nil {
			t.Fatalf("%s, %v\ncalls:\n%s", out, err, w.log())
		}
		if got := w.log(); !strings.HasSuffix(got, "early 50\nshift 0\ndrain canary\nremove app-canary") {
			t.Fatalf("calls:\n%s", got)
		}
	})
	t.Run("a release whose watcher died is watched again", func(t *testing.T) {
		w := &world{early: []verdict.Verdict{{Result: verdict.ResultFail, Reason: "errors while paused"}}}
		deadRelease(t, w, PhaseBaking, 2)
		r := w.stored(t)
		r.Held, r.Gate = true, true // its watcher (a supervisor, a release --watch-at-gate) was killed
		storeRecord(t, w, *r)
		cfg := testConfig()
		cfg.ReleaseID, cfg.Image, cfg.EarlyInterval = "", "", 5*time.Millisecond
		e, err := New(cfg, deps(w), nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := e.Resume(context.Background(), ResumeWatch, ResumeOptions{}); out != OutcomeAbortedAnalysis || err != nil {
			t.Fatalf("%s, %v\ncalls:\n%s", out, err, w.log())
		}
	})
	t.Run("stopping the watch hands the release back, paused", func(t *testing.T) {
		w := &world{}
		paused(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		cfg := testConfig()
		cfg.ReleaseID, cfg.Image = "", ""
		e, err := New(cfg, deps(w), func(ev Event) {
			if ev.Kind == KindProgress && strings.Contains(ev.Message, "watched with early looks") {
				go func() {
					if r := w.stored(t); r.Owner == "" || r.Outcome != "" {
						t.Errorf("record while watched %+v: want it driven", r)
					}
					cancel()
				}()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Resume(ctx, ResumeWatch, ResumeOptions{})
		if out != OutcomePaused || err != nil {
			t.Fatalf("%s, %v", out, err)
		}
		if got := w.log(); got != "" {
			t.Fatalf("watching changed something:\n%s", got)
		}
		if r := w.stored(t); !r.Active() || r.Outcome != OutcomePaused || r.Owner != "" || !r.Gate {
			t.Fatalf("record after the watch %+v", r)
		}
	})
}

// memLock is a BackendLock in memory.
type memLock struct {
	mu      sync.Mutex
	holders map[string][2]string // backend → service, release
}

func (l *memLock) LockBackend(_ context.Context, backend, service, id string) (string, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.holders[backend]; ok && h[1] != id {
		return h[0], h[1], nil
	}
	l.holders[backend] = [2]string{service, id}
	return "", "", nil
}

func (l *memLock) UnlockBackend(_ context.Context, backend, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holders[backend][1] == id {
		delete(l.holders, backend)
	}
	return nil
}

// journals is a Journal of several services, each its own memJournal.
type journals map[string]*memJournal

func (j journals) ReadState(ctx context.Context, service string) ([]byte, string, uint64, error) {
	return j[service].ReadState(ctx, service)
}

func (j journals) WriteState(ctx context.Context, service string, version uint64, record []byte, request string) (bool, error) {
	return j[service].WriteState(ctx, service, version, record, request)
}

func TestOneReleasePerBackend(t *testing.T) {
	// other is the journal of service "other", whose config names the same backend.
	var other *memJournal
	storeOther := func(t *testing.T, r Record) {
		t.Helper()
		w := &world{}
		storeRecord(t, w, r)
		other = &w.memJournal
	}
	runWithLock := func(t *testing.T, w *world, lock *memLock) (Outcome, error) {
		t.Helper()
		cfg := testConfig()
		cfg.Backend = "be_shop"
		d := deps(w)
		d.Lock = lock
		d.Journal = journals{"app": &w.memJournal, "other": other}
		e, err := New(cfg, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e.Run(context.Background())
	}
	t.Run("a release of another service in progress holds the backend", func(t *testing.T) {
		w := &world{}
		storeOther(t, Record{ID: "r-other", Service: "other", Phase: PhaseBaking, Owner: "x", UpdatedAt: time.Now()})
		lock := &memLock{holders: map[string][2]string{"be_shop": {"other", "r-other"}}}
		out, err := runWithLock(t, w, lock)
		var locked *BackendLockedError
		if out != OutcomeFailed || !errors.As(err, &locked) || locked.Release != "r-other" || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("%s, %v: want the backend refused", out, err)
		}
		if got := w.log(); got != "" {
			t.Fatalf("calls:\n%s", got)
		}
	})
	t.Run("a release of the same service is refused as the service lock refuses it", func(t *testing.T) {
		w := &world{}
		storeOther(t, Record{})
		storeRecord(t, w, Record{ID: "r-first", Service: "app", Phase: PhaseBaking, Owner: "x", UpdatedAt: time.Now()})
		lock := &memLock{holders: map[string][2]string{"be_shop": {"app", "r-first"}}}
		out, err := runWithLock(t, w, lock)
		var locked *LockedError
		if out != OutcomeFailed || !errors.As(err, &locked) || locked.Record.ID != "r-first" {
			t.Fatalf("%s, %v: want the service's lock error", out, err)
		}
	})
	t.Run("a lock left by a release that is over is broken", func(t *testing.T) {
		w := &world{}
		storeOther(t, Record{ID: "r-other", Service: "other", Phase: PhaseAborted, Outcome: OutcomeAbortedOperator})
		lock := &memLock{holders: map[string][2]string{"be_shop": {"other", "r-other"}}}
		if out, err := runWithLock(t, w, lock); out != OutcomePromoted || err != nil {
			t.Fatalf("%s, %v", out, err)
		}
		if len(lock.holders) != 0 {
			t.Fatalf("the release left the backend locked: %v", lock.holders)
		}
	})
	t.Run("a halted release keeps the backend", func(t *testing.T) {
		w := &world{readyErr: map[string]error{"app": errors.New("task failed")}}
		storeOther(t, Record{})
		lock := &memLock{holders: map[string][2]string{}}
		if out, _ := runWithLock(t, w, lock); out != OutcomeFailed {
			t.Fatalf("%s", out)
		}
		if h := lock.holders["be_shop"]; h[1] != "r-test" {
			t.Fatalf("holders %v: the halted release must keep the backend", lock.holders)
		}
	})
}

func TestFirstReleaseOfAServiceIsNoVanishedRecord(t *testing.T) {
	// The service never had a record: while the preflight runs, the watcher finds none, which is no loss.
	w := &world{}
	slow := Preflight{Name: "slow", Run: func(ctx context.Context) error {
		sleepCtx(ctx, 30*time.Millisecond)
		return nil
	}}
	out, err, _ := run(t, context.Background(), testConfig(), w, slow)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("%s, %v\ncalls:\n%s", out, err, w.log())
	}
}
