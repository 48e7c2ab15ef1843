package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/fridaymorning/fridaymorning/release"
)

// log is the last n lines of the event log, warnings and phase changes set apart.
func (m Model) log(w, n int) []string {
	t := m.th
	lines := m.st.Log
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out []string
	for _, l := range lines {
		style := lipgloss.Style{}
		switch l.Kind {
		case release.KindWarning:
			style = t.Warn
		case release.KindFinished, release.KindPhase:
			style = t.Bold
		}
		out = append(out, t.Dim.Render(l.At.UTC().Format("15:04:05"))+" "+style.Render(oneLine(l.Message)))
	}
	return out
}

// oneLine folds s's white space, newlines included, into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
