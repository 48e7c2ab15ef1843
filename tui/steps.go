package tui

import (
	"strings"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// steps is the plan as a line: each step's share with its result, the step baking with its time left,
// and the promotion at the end.
func (m Model) steps() string {
	t, s := m.th, m.st
	parts := []string{t.Label.Render("steps")}
	for i, p := range s.Plan {
		step := i + 1
		label := num(p) + "%"
		switch {
		case s.StepResults[step] != "" && (step < s.Step || s.Phase != release.PhaseBaking):
			parts = append(parts, t.symbol(s.StepResults[step])+" "+label)
		case step == s.Step && s.Phase == release.PhaseBaking:
			left := ""
			switch {
			case s.Paused:
				left = " paused, " + clock(s.PausedLeft) + " left"
			case !s.BakeUntil.IsZero():
				left = " " + clock(s.BakeUntil.Sub(m.opts.Now())) + " left"
			}
			if r := s.StepResults[step]; r == verdict.ResultInconclusive {
				left += " (extended)"
			}
			parts = append(parts, t.Bold.Render(symCurrent+" "+label)+left)
		default:
			parts = append(parts, t.Dim.Render(symPending+" "+label))
		}
	}
	last := symPending + " promote"
	switch {
	case s.Outcome == release.OutcomePromoted || s.Phase == release.PhaseStandby:
		last = t.Pass.Render(symPass + " promoted")
	case s.Phase == release.PhasePromoting:
		last = t.Bold.Render(symCurrent + " promoting")
	case s.Phase == release.PhaseAborting || s.Phase == release.PhaseAborted:
		last = t.Fail.Render(symFail + " aborted")
	default:
		last = t.Dim.Render(last)
	}
	return strings.Join(append(parts, last), "  ")
}
