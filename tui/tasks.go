package tui

import (
	"strings"
	"time"
)

// tasks is the line of the services' tasks and of the dependencies' probes, with the last warning.
func (m Model) tasks() string {
	t, s := m.th, m.st
	line := t.Label.Render("tasks ")
	switch {
	case m.tasksErr != "":
		line += t.Warn.Render("docker: " + m.tasksErr)
	case s.CanaryTasks == "" && s.StableTasks == "":
		line += t.Dim.Render("—")
	default:
		short := func(s string) string { return strings.Replace(orDash(s), " tasks running", " running", 1) }
		line += t.Canary.Render("canary "+short(s.CanaryTasks)) + " · " + t.Stable.Render("stable "+short(s.StableTasks))
	}
	if len(m.opts.Probes) > 0 {
		line += "  " + m.dependencies()
	}
	if s.LastWarning != "" && m.opts.Now().Sub(s.LastWarningAt) < time.Minute {
		line += t.Warn.Render(" ! " + s.LastWarning)
	}
	return strings.TrimRight(line, " ")
}

// dependencies says how each probe last answered: "haproxy ✓ influxdb ✗ down docker ? slow 2.5s".
func (m Model) dependencies() string {
	t := m.th
	var line string
	for _, p := range m.opts.Probes {
		st := m.probes[p.Name]
		switch {
		case st.at.IsZero():
			line += t.Dim.Render(p.Name+" …") + " "
		case !st.ok:
			line += t.Fail.Render(p.Name+" "+symFail+" down") + " "
		case st.took > time.Second:
			line += t.Warn.Render(p.Name+" "+symInconclusive+" slow "+st.took.Round(100*time.Millisecond).String()) + " "
		default:
			line += t.Pass.Render(p.Name+" "+symPass) + " "
		}
	}
	return line
}
