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
