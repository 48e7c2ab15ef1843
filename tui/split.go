package tui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// split is the split bar: the canary's share of the traffic against stable's, what was asked for and
// what was served, then the servers' weights.
func (m Model) split(w int) []string {
	t, s := m.th, m.st
	barW := max(min(w-44, 50), 10)
	filled := int(math.Round(s.Achieved / 100 * float64(barW)))
	filled = min(max(filled, 0), barW)
	bar := t.Canary.Render(strings.Repeat("█", filled)) + t.Stable.Render(strings.Repeat("░", barW-filled))
	line := t.Label.Render("split ") + "[" + bar + "] " + t.Canary.Render("canary "+num(s.Achieved)+"%") + " " + t.Stable.Render("stable "+num(100-s.Achieved)+"%")
	if s.Requested != s.Achieved {
		line += t.Dim.Render(" (asked " + num(s.Requested) + "%)")
	}
	if s.Observed != nil && s.Observed.Canary+s.Observed.Stable > 0 {
		line += t.Label.Render(" · served ") + num(s.Observed.Percent()) + "%"
	}
	var ws []string
	for _, n := range slices.Sorted(maps.Keys(s.Weights)) {
		ws = append(ws, fmt.Sprintf("%s:%d", n, s.Weights[n]))
	}
	out := []string{line}
	if len(ws) > 0 {
		out = append(out, t.Label.Render("weights ")+strings.Join(ws, " "))
	}
	return out
}
