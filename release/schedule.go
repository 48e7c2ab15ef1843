package release

import (
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Schedule is a bake's timetable of looks at the canary, as the engine keeps it. While a bake runs it
// takes an early look every EarlyInterval, judging the step's window up to AnalysisDelay before the
// look (so that the telemetry of the requests judged has landed); when the bake ends it waits
// AnalysisDelay and takes the final look, judging the window up to the bake's end. An extension is a
// new bake over the same window; a new step starts a new window. Early looks can fail the canary and,
// with EarlyPass, end the bake once the canary is shown within its limits and MinBake has passed.
//
// The engine's bake follows it, and cmd/simulate replays it on simulated traffic.
type Schedule struct {
	Bake, EarlyInterval, AnalysisDelay time.Duration
	// MaxExtensions is how many times an inconclusive step is baked again.
	MaxExtensions int
	// EarlyPass lets an early look that shows the canary within every limit end the bake, once the
	// window is MinBake old.
	EarlyPass bool
	MinBake   time.Duration
}

// Schedule is the engine's schedule, with New's defaults applied.
func (e *Engine) Schedule() Schedule {
	c := e.cfg
	return Schedule{Bake: c.Bake, EarlyInterval: c.EarlyInterval, AnalysisDelay: c.AnalysisDelay, MaxExtensions: c.MaxExtensions,
		EarlyPass: c.EarlyPass, MinBake: c.MinBake}
}

// Looks is how many early looks a bake takes, at least 1, or 0 when early looks are off. A window
// judged on its own shares α among them.
func (s Schedule) Looks() int {
	if s.EarlyInterval <= 0 {
		return 0
	}
	return max(int(s.Bake/s.EarlyInterval), 1)
}

// EarlyWindow is what an early look taken at `at` judges of the window that began at from: nil when
// the window holds nothing yet.
func (s Schedule) EarlyWindow(from, at time.Time, share float64, seq *verdict.Sequence) *verdict.Window {
	to := at.Add(-s.AnalysisDelay)
	if !to.After(from) {
		return nil
	}
	return &verdict.Window{From: from, To: to, Share: share, Early: true, Looks: s.Looks(), Sequence: seq}
}

// FinalWindow is what the final look of a bake that ended at until judges of the window that began at
// from; the look is taken AnalysisDelay after until.
func (s Schedule) FinalWindow(from, until time.Time, share float64, seq *verdict.Sequence) verdict.Window {
	return verdict.Window{From: from, To: until, Share: share, Sequence: seq}
}

// EndsEarly says whether the verdict v of an early look taken at `at` ends the bake of the window that
// began at from: an early pass, allowed, once the window is MinBake old.
func (s Schedule) EndsEarly(v verdict.Verdict, from, at time.Time) bool {
	return s.EarlyPass && v.PassEarly && v.Result == verdict.ResultPass && at.Sub(from) >= s.MinBake
}
