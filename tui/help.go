package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
)

// hints is the footer's renderer: "p promote  a abort  …", keys in the theme's key style.
func hints(t Theme) help.Model {
	h := help.New()
	h.ShortSeparator = "  "
	h.Styles = help.Styles{ShortKey: t.Key, ShortDesc: lipgloss.Style{}, ShortSeparator: lipgloss.Style{}}
	return h
}

// footer is the bottom line: the keys that work now.
func (m Model) footer(w int) string {
	if !m.active() && m.st.Phase != "" {
		return m.hints.ShortHelpView(m.keys.ended()) + m.th.Dim.Render("  · the release ended: "+string(m.st.Outcome))
	}
	return m.hints.ShortHelpView(m.keys.steering(m.st.Paused, w >= 100))
}

// helpBox is the help overlay: every key of the main screen and what it does.
func (m Model) helpBox(w int) string {
	t := m.th
	lines := []string{t.Bold.Render("Keys"), ""}
	for _, b := range m.keys.full() {
		lines = append(lines, t.Key.Render(fmt.Sprintf("%-9s", b.full.Key))+b.full.Desc)
	}
	lines = append(lines, "",
		t.Dim.Render("Results: "+symPass+" pass  "+symFail+" fail  "+symInconclusive+" inconclusive"),
		t.Dim.Render("Any key closes this help."))
	return t.Box.Width(min(64, w-4)).Render(strings.Join(lines, "\n"))
}
