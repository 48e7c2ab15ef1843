package release

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A release of a whole spec (Target) whose image does not change: promotion still updates stable,
// since what it runs is compared by target, not by image; the preflight's review goes out on its event.
func TestRunSpecTarget(t *testing.T) {
	w := &world{images: map[string]string{"app": "spec:old"}}
	cfg := testConfig()
	cfg.Image, cfg.Target = "spec:old", "spec:new" // the world's Image is its Current: the same image
	changes := []Change{{Field: "env POOL", From: "10", To: "20"}}
	review := Preflight{Name: "stack file", Run: func(context.Context) error { return nil },
		Review: func(context.Context) ([]Change, error) { return changes, nil }}
	out, err, events := run(t, context.Background(), cfg, w, review)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	want := "shift 0\ncreate app spec:new\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
		"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app spec:new\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"
	if got := w.log(); got != want {
		t.Errorf("calls:\n%s\nwant:\n%s", got, want)
	}
	var seen bool
	for _, ev := range events {
		if ev.Kind == KindPreflight && slices.Equal(ev.Changes, changes) {
			seen = true
		}
	}
	if !seen {
		t.Error("no preflight event carries the review's changes")
	}
	if rec := w.stored(t); rec.Target != "spec:new" || rec.StableTarget != "spec:old" {
		t.Errorf("record targets %q, %q: want both kept for a process taking over", rec.Target, rec.StableTarget)
	}
	if s := changes[0].String(); s != "env POOL: 10 → 20" {
		t.Errorf("String() = %q", s)
	}
}

// An abort taken over after a promotion that changed stable puts stable back on the spec it ran, even
// when the image is the same; one that did not change it leaves stable alone.
func TestAbortPutsTheSpecBack(t *testing.T) {
	for _, tc := range []struct {
		name, stableRuns, calls string
	}{
		{"stable changed", "spec:new", "update app spec:old\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"stable untouched", "spec:old", "shift 0\ndrain canary\nremove app-canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{images: map[string]string{"app": tc.stableRuns}}
			old := time.Now().Add(-time.Hour)
			storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v1",
				Target: "spec:new", StableTarget: "spec:old", Canary: "app-canary", Steps: []float64{10, 50}, Step: 2,
				Phase: PhasePromoting, StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
			out, err := resume(t, w, ResumeAbort, false)
			if out != OutcomeAbortedOperator || err != nil {
				t.Fatalf("outcome %s, %v", out, err)
			}
			if got := w.log(); got != tc.calls {
				t.Errorf("calls:\n%s\nwant:\n%s", got, tc.calls)
			}
		})
	}
}
