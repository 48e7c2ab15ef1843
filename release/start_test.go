package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunPreflightFailureChangesNothing(t *testing.T) {
	w := &world{}
	out, err, _ := run(t, context.Background(), testConfig(), w,
		Preflight{Name: "swarm", Run: func(context.Context) error { return nil }},
		Preflight{Name: "haproxy", Run: func(context.Context) error { return errors.New(`backend "be_x" not found`) }},
	)
	if out != OutcomeFailed || err == nil || !strings.Contains(err.Error(), `preflight haproxy: backend "be_x" not found`) {
		t.Fatalf("outcome %s, err %v", out, err)
	}
	if got := w.log(); got != "" {
		t.Fatalf("preflight failure made calls:\n%s", got)
	}
}

// TestPreflightNoticeIsAWarning: a check that returns a Notice (something the release works around) is
// said as a warning, and the release goes on.
func TestPreflightNoticeIsAWarning(t *testing.T) {
	w := &world{}
	out, err, events := run(t, context.Background(), testConfig(), w,
		Preflight{Name: "haproxy weights", Run: func(context.Context) error {
			return fmt.Errorf("wrapped: %w", Notice("stable1 runs weight 7, its configuration says 100"))
		}},
	)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, err %v", out, err)
	}
	found := false
	for _, ev := range events {
		found = found || ev.Kind == KindWarning && strings.Contains(ev.Message, "preflight haproxy weights: stable1 runs weight 7")
	}
	if !found {
		t.Error("no warning names the notice")
	}
}

func TestRunRefusesWhenAReleaseIsInProgress(t *testing.T) {
	w := &world{}
	storeRecord(t, w, Record{ID: "r-other", Service: "app", Image: "app:v9", Phase: PhaseBaking, Step: 1, Steps: []float64{10},
		StartedBy: "bob@ci", StartedAt: time.Now(), UpdatedAt: time.Now(), Owner: "someone"})
	out, err, _ := run(t, context.Background(), testConfig(), w)
	var locked *LockedError
	if out != OutcomeFailed || !errors.As(err, &locked) || locked.Record.ID != "r-other" {
		t.Fatalf("%s %v", out, err)
	}
	for _, want := range []string{"r-other", "bob@ci", "fridaymorning abort app", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := w.log(); got != "" {
		t.Fatalf("a refused release changed things:\n%s", got)
	}
}

func TestConcurrentReleasesOnlyOneProceeds(t *testing.T) {
	w := &world{}
	var wg sync.WaitGroup
	outs := make([]Outcome, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := testConfig()
			cfg.ReleaseID = fmt.Sprintf("r-%d", i)
			cfg.Bake = 50 * time.Millisecond // long enough for the two to overlap
			e, err := New(cfg, deps(w), nil)
			if err != nil {
				errs[i] = err
				return
			}
			outs[i], errs[i] = e.Run(context.Background())
		}()
	}
	wg.Wait()
	var promoted, locked int
	for i := range 2 {
		var le *LockedError
		switch {
		case outs[i] == OutcomePromoted:
			promoted++
		case errors.As(errs[i], &le):
			locked++
		}
	}
	if promoted != 1 || locked != 1 {
		t.Fatalf("outcomes %v, errors %v: want exactly one promoted and one refused", outs, errs)
	}
}
