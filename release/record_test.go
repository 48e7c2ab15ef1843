package release_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/tui"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// TestRecordEvents: what watch reads from Swarm reaches the cockpit as the events a release in this
// process would have sent, and only what changed.
func TestRecordEvents(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	until := now.Add(40 * time.Second)
	rec := &release.Record{ID: "r1", Service: "shop", Image: "shop:v2", StableImage: "shop:v1", Canary: "shop-canary",
		Steps: []float64{10, 50}, Step: 1, CanaryPercent: 10, Weights: map[string]int{"canary1": 28, "stable1": 252},
		Phase: release.PhaseBaking, Message: "step 1 of 2", StartedBy: "ci", StartedAt: now, BakeUntil: &until,
		Verdict: &verdict.Verdict{Result: verdict.ResultInconclusive, Reason: "canary has 12 requests"}, LastVerdict: &release.VerdictSummary{Step: 1, Result: verdict.ResultInconclusive}}

	var st tui.Status
	kinds := func(evs []release.Event) string {
		var k []string
		for _, e := range evs {
			k = append(k, string(e.Kind))
			st.Apply(e)
		}
		return strings.Join(k, ",")
	}
	if got := kinds(release.RecordEvents(nil, rec, now)); got != "started,phase,traffic,bake,analysis" {
		t.Errorf("first read: %s", got)
	}
	if st.Service != "shop" || st.Step != 1 || st.Achieved != 10 || !st.BakeUntil.Equal(until) || st.Verdict == nil || st.StableImage != "shop:v1" {
		t.Errorf("status %+v", st)
	}
	if got := kinds(release.RecordEvents(rec, rec, now)); got != "" {
		t.Errorf("nothing changed, yet: %s", got)
	}
	paused := *rec
	paused.Paused = true
	if got := kinds(release.RecordEvents(rec, &paused, now)); got != "bake,control" || !st.Paused {
		t.Errorf("pause: %s (paused %v)", got, st.Paused)
	}
	done := paused
	done.Phase, done.Outcome, done.Message, done.BakeUntil = release.PhaseAborted, release.OutcomeAbortedOperator, "aborted by an operator", nil
	if got := kinds(release.RecordEvents(&paused, &done, now)); got != "phase,finished" || !st.Finished || st.Outcome != release.OutcomeAbortedOperator {
		t.Errorf("end: %s (finished %v %s)", got, st.Finished, st.Outcome)
	}
}
