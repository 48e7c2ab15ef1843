package tui

import (
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// View renders the screen: exactly the terminal's height, no line wider than it.
func (m Model) View() string {
	w, h := max(m.width, 40), max(m.height, 10)
	top := m.header(w)
	var body []string
	body = m.body(w, h-len(top)-1)
	switch {
	case m.dialog != dialogNone:
		body = overlay(body, w, h-len(top)-1, m.dialogBox(w))
	case m.help:
		body = overlay(body, w, h-len(top)-1, m.helpBox(w))
	case m.explain:
		body = overlay(body, w, h-len(top)-1, m.explainBox(w, h-len(top)-1))
	}
	lines := append(top, body...)
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines[:h-1], m.footer(w))
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(lines, "\n")
}

// body is everything between the header and the footer, h lines at most: the split, the steps, the
// metrics, the trends, the tasks, a notice and the reason of the verdict, then as much of the event
// log as fits.
func (m Model) body(w, h int) []string {
	t, s := m.th, m.st
	var lines []string
	lines = append(lines, m.split(w)...)
	lines = append(lines, m.steps())
	lines = append(lines, "")
	lines = append(lines, m.table(w)...)
	lines = append(lines, m.trends(w))
	lines = append(lines, m.tasks())
	if m.notice != "" && m.opts.Now().Sub(m.noticeAt) < 10*time.Second {
		lines = append(lines, t.Warn.Render("» "+m.notice))
	}
	if v := s.Verdict; v != nil && v.Result != verdict.ResultPass && v.Reason != "" && (!v.Early || v.Result == verdict.ResultFail) {
		lines = append(lines, t.Label.Render("why ")+t.result(s.Verdict.Result)+" "+s.Verdict.Reason)
	}
	room := h - len(lines) - 1
	if room > 0 {
		lines = append(lines, t.Label.Render("events"))
		lines = append(lines, m.log(w, room)...)
	}
	return lines
}

// overlay draws box over the middle of the lines below it (an area of w×h), which stay visible around it.
func overlay(under []string, w, h int, box string) []string {
	boxLines := strings.Split(box, "\n")
	bw := lipgloss.Width(box)
	left := max((w-bw)/2, 0)
	top := max((h-len(boxLines))/2, 0)
	out := append([]string(nil), under...)
	for len(out) < top+len(boxLines) {
		out = append(out, "")
	}
	for i, bl := range boxLines {
		line := out[top+i]
		pad := left - lipgloss.Width(line)
		head := ansi.Truncate(line, left, "")
		if pad > 0 {
			head += strings.Repeat(" ", pad)
		}
		out[top+i] = head + bl + ansi.TruncateLeft(line, left+bw, "")
	}
	return out
}
