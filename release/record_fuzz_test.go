package release

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzParseRecord feeds the release record, which lives in a Swarm label anyone with access to the
// Docker API can edit, to what reads it: ParseRecord, the summaries and events a display shows, and a
// takeover, which acts on it. None may panic or hang; a record refused says so; one accepted survives a
// round trip.
func FuzzParseRecord(f *testing.F) {
	until := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, r := range []Record{
		{ID: "r1", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary", Steps: []float64{10, 50}, Step: 1,
			CanaryPercent: 10, Weights: map[string]int{"stable1": 90, "canary1": 10}, Phase: PhaseBaking, BakeUntil: &until,
			LastVerdict: &VerdictSummary{Step: 1, Result: "pass", Reason: "ok"}, StartedBy: "alice", Owner: "dead"},
		{ID: "r2", Service: "app", Image: "app:v2", Steps: []float64{10}, Phase: PhaseStarting, Canary: "app-canary"},
		{ID: "r3", Service: "app", Image: "app:v2", Canary: "app-canary", Phase: PhaseStandby, StandbyUntil: &until, Outcome: OutcomePromoted},
		{ID: "r4", Service: "app", Image: "app:v2", Canary: "app-canary", Steps: []float64{5, 20}, Step: 2, Phase: PhaseAborting, Cause: "analysis"},
		{ID: "r5", Service: "app", Image: "app:v2", Steps: []float64{10}, Phase: PhaseAborted, Outcome: OutcomeAbortedAnalysis},
	} {
		raw, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"id":"r1","phase":"baking","steps":[10`))
	f.Add([]byte(`{"id":"r1","phase":"baking","steps":[],"step":3}`))
	f.Add([]byte(`{"phase":"sleeping"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := ParseRecord(raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "release: the stored release record is") {
				t.Fatalf("error %q does not say what is wrong", err)
			}
			return
		}
		if rec == nil {
			if len(raw) != 0 {
				t.Fatal("a record that is there parsed as none")
			}
			return
		}
		_ = rec.Summary()
		now := time.Now()
		_ = RecordEvents(nil, rec, now)
		_ = RecordEvents(rec, rec, now)
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRecord(again); err != nil {
			t.Fatalf("a record accepted is refused once written back: %v", err)
		}
		if !rec.Active() {
			return
		}
		// Take it over and carry it on (a standby: end it), on a world that answers at once.
		w := &world{}
		w.rec, w.version = raw, 1
		cfg := testConfig()
		cfg.ReleaseID, cfg.Image, cfg.Steps = "", "", []float64{99}
		e, err := New(cfg, deps(w), nil)
		if err != nil {
			t.Fatal(err)
		}
		mode := ResumeContinue
		if rec.Phase == PhaseStandby {
			mode = ResumeAbort
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := e.Resume(ctx, mode, ResumeOptions{Force: true}); ctx.Err() != nil {
			t.Fatalf("taking the record over did not end: %v", err)
		}
	})
}
