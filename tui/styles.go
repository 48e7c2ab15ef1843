package tui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/fridaymorning/fridaymorning/verdict"
	"github.com/muesli/termenv"
)

// Theme holds every style of the cockpit: one place for its colours. Results are also told by symbols,
// so that the screen reads the same without colour (NO_COLOR, a monochrome terminal, a screen reader).
type Theme struct {
	Title, Label, Dim, Bold, Warn, Key, Box, Dialog, Canary, Stable lipgloss.Style
	Pass, Fail, Inconclusive                                        lipgloss.Style
}

// Symbols of results and step states.
const (
	symPass         = "✓"
	symFail         = "✗"
	symInconclusive = "?"
	symCurrent      = "▶"
	symPending      = "·"
)

// NewTheme builds the theme for output going to w. Colours follow what w's terminal supports and are
// off when NO_COLOR is set (termenv reads it).
func NewTheme(w io.Writer) Theme {
	return themeFor(lipgloss.NewRenderer(w))
}

// plainTheme has no colours and no attributes: golden files and tests read it.
func plainTheme() Theme {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return themeFor(r)
}

func themeFor(r *lipgloss.Renderer) Theme {
	s := r.NewStyle
	return Theme{
		Title:        s().Bold(true).Foreground(lipgloss.Color("#F5A623")),
		Label:        s().Foreground(lipgloss.Color("#8A8F98")),
		Dim:          s().Foreground(lipgloss.Color("#5C6370")),
		Bold:         s().Bold(true),
		Warn:         s().Foreground(lipgloss.Color("#E5C07B")).Bold(true),
		Key:          s().Foreground(lipgloss.Color("#61AFEF")).Bold(true),
		Box:          s().Border(lipgloss.RoundedBorder()).BorderForeground(lipgloss.Color("#5C6370")).Padding(0, 1),
		Dialog:       s().Border(lipgloss.DoubleBorder()).BorderForeground(lipgloss.Color("#F5A623")).Padding(0, 1),
		Canary:       s().Foreground(lipgloss.Color("#E5C07B")),
		Stable:       s().Foreground(lipgloss.Color("#61AFEF")),
		Pass:         s().Foreground(lipgloss.Color("#98C379")),
		Fail:         s().Foreground(lipgloss.Color("#E06C75")).Bold(true),
		Inconclusive: s().Foreground(lipgloss.Color("#E5C07B")),
	}
}

// result renders a result with its symbol and colour: "✓ pass", "✗ fail", "? inconclusive".
func (t Theme) result(r verdict.Result) string {
	switch r {
	case verdict.ResultPass:
		return t.Pass.Render(symPass + " pass")
	case verdict.ResultFail:
		return t.Fail.Render(symFail + " fail")
	case verdict.ResultInconclusive:
		return t.Inconclusive.Render(symInconclusive + " inconclusive")
	}
	return t.Dim.Render(symPending)
}

// symbol is a result's symbol alone, coloured.
func (t Theme) symbol(r verdict.Result) string {
	switch r {
	case verdict.ResultPass:
		return t.Pass.Render(symPass)
	case verdict.ResultFail:
		return t.Fail.Render(symFail)
	case verdict.ResultInconclusive:
		return t.Inconclusive.Render(symInconclusive)
	}
	return t.Dim.Render(symPending)
}
