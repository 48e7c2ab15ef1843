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
		storeRecord(t, w, Record{ID: "r-first", Service: "app", Phase: PhaseBaking, Steps: []float64{10, 50}, Step: 1, Owner: "x", UpdatedAt: time.Now()})
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
