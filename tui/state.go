package tui

import (
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// maxLog and maxHistory bound what the cockpit keeps: the last events and samples, enough for any
// screen, so that an hour-long release costs no more to draw than a short one.
const (
	maxLog     = 500
	maxHistory = 600
)

// Sample is one point of the time series: the metrics of an analysis (a final verdict or an early look).
type Sample struct {
	At                     time.Time
	CanaryP95, StableP95   time.Duration
	CanaryErrs, StableErrs float64
}

// LogLine is one line of the event log.
type LogLine struct {
	At      time.Time
	Kind    release.Kind
	Message string
}

// Status is what the cockpit knows of a release, folded from its events. Apply is the only writer.
type Status struct {
	ReleaseID, Service       string
	Image, StableImage       string
	StartedBy                string
	StartedAt                time.Time
	Phase                    release.Phase
	Step, Steps              int
	Plan                     []float64
	Bake                     time.Duration
	Requested, Achieved      float64
	Weights                  map[string]int
	Observed                 *release.Observed
	TrafficAt                time.Time
	BakeUntil                time.Time
	Paused                   bool
	PausedLeft               time.Duration
	StepResults              map[int]verdict.Result
	Verdict                  *verdict.Verdict
	VerdictAt                time.Time
	History                  []Sample
	Log                      []LogLine
	Outcome                  release.Outcome
	Finished                 bool
	LastEvent                time.Time
	LastWarning              string
	LastWarningAt            time.Time
	CanaryTasks, StableTasks string
	// Changes are the spec difference of a release from a stack file, from its preflight.
	Changes []release.Change
}

// Apply folds one event into s.
func (s *Status) Apply(ev release.Event) {
	s.LastEvent = ev.Time
	if ev.ReleaseID != "" {
		s.ReleaseID = ev.ReleaseID
	}
	if ev.Service != "" {
		s.Service = ev.Service
	}
	if ev.Image != "" {
		s.Image = ev.Image
	}
	if ev.StableImage != "" {
		s.StableImage = ev.StableImage
	}
	if ev.StartedBy != "" {
		s.StartedBy = ev.StartedBy
	}
	if !ev.StartedAt.IsZero() {
		s.StartedAt = ev.StartedAt
	}
	if ev.Phase != "" {
		s.Phase = ev.Phase
	}
	if ev.Steps > 0 {
		s.Steps, s.Plan = ev.Steps, ev.Plan
	}
	if ev.Bake > 0 {
		s.Bake = ev.Bake
	}
	if ev.Step > 0 && ev.Step != s.Step {
		s.Step = ev.Step
		s.Paused = false
	}
	if s.StepResults == nil {
		s.StepResults = map[int]verdict.Result{}
	}
	switch ev.Kind {
	case release.KindTraffic:
		s.Requested, s.Achieved, s.Weights = ev.CanaryPercent, ev.AchievedPercent, ev.Weights
		s.Observed, s.TrafficAt = nil, ev.Time
	case release.KindBake:
		s.BakeUntil, s.Paused = ev.Until, false
	case release.KindControl:
		switch ev.Command {
		case release.CommandPause:
			s.Paused = true
			if !s.BakeUntil.IsZero() {
				s.PausedLeft = max(s.BakeUntil.Sub(ev.Time), 0)
			}
		case release.CommandContinue:
			s.Paused, s.BakeUntil = false, ev.Until
		}
	case release.KindLook, release.KindAnalysis:
		if ev.Verdict != nil {
			v := *ev.Verdict
			s.Verdict, s.VerdictAt = &v, ev.Time
			s.History = append(s.History, Sample{At: ev.Time, CanaryP95: v.Canary.P95, StableP95: v.Stable.P95,
				CanaryErrs: v.Canary.ErrorRate, StableErrs: v.Stable.ErrorRate})
			if len(s.History) > maxHistory {
				s.History = append(s.History[:0:0], s.History[len(s.History)-maxHistory:]...)
			}
			if ev.Kind == release.KindAnalysis && ev.Step > 0 {
				s.StepResults[ev.Step] = v.Result
			}
		}
		if ev.Observed != nil {
			o := *ev.Observed
			s.Observed = &o
		}
	case release.KindPreflight:
		if len(ev.Changes) > 0 {
			s.Changes = append([]release.Change(nil), ev.Changes...)
		}
	case release.KindWarning:
		s.LastWarning, s.LastWarningAt = ev.Message, ev.Time
	case release.KindFinished:
		s.Finished, s.Outcome = true, ev.Outcome
	}
	if ev.Kind != release.KindLook && ev.Message != "" {
		s.Log = append(s.Log, LogLine{At: ev.Time, Kind: ev.Kind, Message: ev.Message})
		for _, c := range ev.Changes {
			s.Log = append(s.Log, LogLine{At: ev.Time, Kind: ev.Kind, Message: "  " + c.String()})
		}
		if len(s.Log) > maxLog {
			s.Log = append(s.Log[:0:0], s.Log[len(s.Log)-maxLog:]...)
		}
	}
}
