package release

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRecordKeptInJournal(t *testing.T) {
	w := &world{}
	out, err, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("%s %v", out, err)
	}
	r := w.stored(t)
	if r.ID != "r-test" || r.Phase != PhasePromoted || r.Outcome != OutcomePromoted || r.Active() ||
		r.StableImage != "app:v1" || r.Image != "app:v2" || r.StartedBy != "tester" || r.LastVerdict == nil || r.LastVerdict.Step != 2 {
		t.Fatalf("record %+v", r)
	}
	if w.writes < 6 {
		t.Errorf("only %d journal writes: each transition should be kept", w.writes)
	}
}

func storeRecord(t *testing.T, w *world, r Record) {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	w.rec = raw
	w.version++
	w.writtenAt = r.UpdatedAt
}

func TestRequestsFromAnotherProcess(t *testing.T) {
	t.Run("abort", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Bake = 30 * time.Millisecond
		w.onAnalyze = func(n int) {
			if _, err := Request(context.Background(), &w.memJournal, "app", CommandAbort); err != nil {
				t.Error(err)
			}
		}
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomeAbortedOperator || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		log := w.log()
		if !strings.HasSuffix(log, "shift 0\ndrain canary\nremove app-canary") || strings.Contains(log, "update") {
			t.Fatalf("calls:\n%s", log)
		}
		if r := w.stored(t); r.Outcome != OutcomeAbortedOperator || r.Cause != "operator" {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("promote skips the remaining steps", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Steps = []float64{10, 50, 75}
		cfg.Bake = 30 * time.Millisecond
		w.onAnalyze = func(n int) {
			if n == 0 {
				if _, err := Request(context.Background(), &w.memJournal, "app", CommandPromote); err != nil {
					t.Error(err)
				}
			}
		}
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if log := w.log(); strings.Contains(log, "analyze 75") || !strings.Contains(log, "update app app:v2") {
			t.Fatalf("calls:\n%s", log)
		}
	})
	t.Run("no release to ask", func(t *testing.T) {
		w := &world{}
		if _, err := Request(context.Background(), &w.memJournal, "app", CommandAbort); !errors.Is(err, ErrNoRelease) {
			t.Fatalf("err = %v", err)
		}
	})
}

// deadRelease stores a release whose process died in phase at step, with its canary running.
func deadRelease(t *testing.T, w *world, phase Phase, step int) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
		Steps: []float64{10, 50}, Step: step, Phase: phase, Cause: "analysis", Message: "step 1 failed",
		StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
	// Its last heartbeat on the canary is as old, by the store's clock.
	w.jmu.Lock()
	defer w.jmu.Unlock()
	if w.beats == nil {
		w.beats = map[string]time.Time{}
	}
	w.beats["app-canary"] = old
}

// setProgress records that the stored release got to sub-step p.
func setProgress(t *testing.T, w *world, p Progress) {
	t.Helper()
	r := w.stored(t)
	r.Progress = p
	storeRecord(t, w, *r)
}

func resume(t *testing.T, w *world, mode ResumeMode, force bool) (Outcome, error) {
	t.Helper()
	cfg := testConfig()
	cfg.ReleaseID, cfg.Image, cfg.Steps = "", "", []float64{99} // all three come from the record
	e, err := New(cfg, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.Resume(context.Background(), mode, ResumeOptions{Force: force})
}

func TestResume(t *testing.T) {
	promoteTail := "scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"
	abortTail := "shift 0\ndrain canary\nremove app-canary"
	tests := []struct {
		name  string
		phase Phase
		step  int
		mode  ResumeMode
		setup func(t *testing.T, w *world)
		want  Outcome
		calls string
	}{
		{"starting: the existing canary is reused", PhaseStarting, 0, ResumeContinue, nil, OutcomePromoted,
			"shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" + promoteTail},
		{"baking step 2: the step is baked again", PhaseBaking, 2, ResumeContinue, nil, OutcomePromoted,
			"shift 50\nanalyze 50\n" + promoteTail},
		{"promoting: the promotion runs again", PhasePromoting, 2, ResumeContinue, nil, OutcomePromoted, promoteTail},
		{"promoting with stable already updated: no second update", PhasePromoting, 2, ResumeContinue,
			func(t *testing.T, w *world) { w.images = map[string]string{"app": "app:v2"} }, OutcomePromoted,
			"scale app-canary\nready app-canary\nup canary\nshift 100\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"aborting: the abort runs again", PhaseAborting, 1, ResumeContinue, nil, OutcomeAbortedAnalysis, abortTail},
		{"abort a baking release", PhaseBaking, 1, ResumeAbort, nil, OutcomeAbortedOperator, abortTail},
		{"promote a baking release", PhaseBaking, 1, ResumePromote, nil, OutcomePromoted, promoteTail},
		{"abort after a promotion that failed half-way: stable back to its image first", PhasePromoting, 2, ResumeAbort,
			func(t *testing.T, w *world) {
				w.images = map[string]string{"app": "app:v2"}
				setProgress(t, w, ProgressStableUpdating)
			}, OutcomeAbortedOperator,
			"update app app:v1\nready app\nup stable\n" + abortTail},
		{"abort before the promotion touched stable: a stable image set by someone else stays", PhasePromoting, 2, ResumeAbort,
			func(t *testing.T, w *world) {
				w.images = map[string]string{"app": "app:v7"}
				setProgress(t, w, ProgressOnCanary)
			}, OutcomeAbortedOperator, abortTail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{}
			deadRelease(t, w, tt.phase, tt.step)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			out, err := resume(t, w, tt.mode, false)
			if out != tt.want {
				t.Fatalf("outcome %s (%v), want %s\ncalls:\n%s", out, err, tt.want, w.log())
			}
			if got := w.log(); got != tt.calls {
				t.Fatalf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			r := w.stored(t)
			if r.Active() || r.ID != "r-dead" || r.StartedBy != "alice" || r.Owner == "dead-process" {
				t.Fatalf("record after resume %+v", r)
			}
		})
	}
}

func TestResumeRefusesALiveRelease(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	_ = w.Beat(context.Background(), "app-canary", "dead-process", time.Now())
	if _, err := resume(t, w, ResumeContinue, false); err == nil || !strings.Contains(err.Error(), "driven by a live process") {
		t.Fatalf("err = %v", err)
	}
	if got := w.log(); got != "" {
		t.Fatalf("calls:\n%s", got)
	}
	if out, err := resume(t, w, ResumeAbort, true); out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("forced take-over: %s %v", out, err)
	}
}

func TestResumeWithoutARelease(t *testing.T) {
	w := &world{}
	if _, err := resume(t, w, ResumeContinue, false); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("err = %v", err)
	}
}

func TestLosingOwnershipStopsAtOnce(t *testing.T) {
	w := &world{}
	w.onAnalyze = func(n int) {
		// Another process takes the release over while this one bakes.
		_, err := casRecord(context.Background(), &w.memJournal, "app", func(cur *Record, req string) (*Record, string, error) {
			cur.Owner = "usurper"
			return cur, req, nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	out, err, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomeFailed || !errors.Is(err, ErrLostOwnership) {
		t.Fatalf("%s %v", out, err)
	}
	if log := w.log(); strings.Contains(log, "analyze 10\nshift 0") || strings.Contains(log, "remove") || strings.Contains(log, "update") {
		t.Fatalf("the process kept acting after losing the release:\n%s", log)
	}
}
