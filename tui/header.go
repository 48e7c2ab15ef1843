package tui

// header is the top: what is released where, by whom, the phase and how long it has run, and what
// went wrong with the event source.
func (m Model) header(w int) []string {
	t, s := m.th, m.st
	now := m.opts.Now()
	service := s.Service
	if service == "" {
		service = "…"
	}
	from := shortImage(s.StableImage)
	if from == "" {
		from = "?"
	}
	title := t.Title.Render("fridaymorning") + "  " + t.Bold.Render(service) + "  " + from + " → " + t.Canary.Render(shortImage(s.Image))
	if s.ReleaseID != "" {
		title += "  " + t.Dim.Render(s.ReleaseID)
	}
	phase := string(s.Phase)
	if phase == "" {
		phase = "waiting for the release"
	}
	if s.Paused {
		phase += " (paused)"
	}
	if s.Finished {
		phase = string(s.Outcome)
	}
	info := t.Label.Render("phase ") + t.Bold.Render(phase)
	if !s.StartedAt.IsZero() {
		info += t.Label.Render(" · elapsed ") + clock(now.Sub(s.StartedAt))
	}
	if s.StartedBy != "" {
		info += t.Label.Render(" · by ") + s.StartedBy
	}
	if m.opts.Watching {
		info += t.Label.Render(" · watching")
	}
	lines := []string{title, info}
	if m.sourceErr != "" {
		lines = append(lines, t.Warn.Render("! "+m.sourceErr))
	}
	return lines
}
