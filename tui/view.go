package tui

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// row is one line of the metrics table with the checks behind it.
type row struct {
	name                         string
	canary, stable, delta, limit string
	result                       verdict.Result
	checks                       []string
}

// rowChecks maps each table row to the checks that judge it.
var rowChecks = []struct {
	name   string
	checks []string
}{
	{"requests", []string{"canary_requests", "stable_requests", "telemetry"}},
	{"rps", nil},
	{"error rate", []string{"error_rate", "error_rate_increase"}},
	{"p50", []string{"latency_p50", "latency_shift"}},
	{"p95", []string{"latency_p95", "p95_vs_stable"}},
	{"p99", []string{"latency_p99", "p99_vs_stable"}},
}

func worse(a, b verdict.Result) verdict.Result {
	rank := map[verdict.Result]int{"": 0, verdict.ResultPass: 1, verdict.ResultInconclusive: 2, verdict.ResultFail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func msStr(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
}

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func signed(v float64, unit string) string {
	if v > 0 {
		return "+" + num(v) + unit
	}
	return num(v) + unit
}

// rows builds the metrics table from the latest verdict.
func (m Model) rows() []row {
	v := m.st.Verdict
	byName := map[string]verdict.Check{}
	var custom []verdict.Check
	if v != nil {
		for _, c := range v.Checks {
			byName[c.Name] = c
			if strings.HasPrefix(c.Name, "custom_") {
				custom = append(custom, c)
			}
		}
	}
	var out []row
	for _, rc := range rowChecks {
		r := row{name: rc.name, checks: rc.checks}
		for _, n := range rc.checks {
			if c, ok := byName[n]; ok {
				r.result = worse(r.result, c.Result)
			}
		}
		if v != nil {
			cm, sm := v.Canary, v.Stable
			switch rc.name {
			case "requests":
				r.canary, r.stable = strconv.FormatInt(cm.Requests, 10), strconv.FormatInt(sm.Requests, 10)
				if c, ok := byName["canary_requests"]; ok {
					r.limit = "≥ " + num(c.Limit)
				}
			case "rps":
				if secs := m.st.VerdictAt.Sub(m.st.TrafficAt).Seconds(); secs > 0 && !m.st.TrafficAt.IsZero() {
					r.canary, r.stable = num(float64(cm.Requests)/secs), num(float64(sm.Requests)/secs)
				}
			case "error rate":
				r.canary, r.stable, r.delta = num(cm.ErrorRate)+"%", num(sm.ErrorRate)+"%", signed(cm.ErrorRate-sm.ErrorRate, "pt")
				r.limit = limits(byName, "%", rc.checks...)
			case "p50":
				r.canary, r.stable, r.delta = msStr(cm.P50), msStr(sm.P50), signed(float64(cm.P50-sm.P50)/float64(time.Millisecond), "ms")
				r.limit = limits(byName, "ms", rc.checks...)
			case "p95":
				r.canary, r.stable, r.delta = msStr(cm.P95), msStr(sm.P95), signed(float64(cm.P95-sm.P95)/float64(time.Millisecond), "ms")
				r.limit = limits(byName, "ms", rc.checks...)
			case "p99":
				r.canary, r.stable, r.delta = msStr(cm.P99), msStr(sm.P99), signed(float64(cm.P99-sm.P99)/float64(time.Millisecond), "ms")
				r.limit = limits(byName, "ms", rc.checks...)
			}
		}
		out = append(out, r)
	}
	for _, c := range custom {
		out = append(out, row{name: strings.TrimPrefix(c.Name, "custom_"), canary: num(c.Canary) + c.Unit, stable: num(c.Stable) + c.Unit,
			delta: signed(c.Canary-c.Stable, c.Unit), limit: "≤ " + num(c.Limit), result: c.Result, checks: []string{c.Name}})
	}
	return out
}

// limits is the tightest limit among the named checks: "≤ 13.8ms".
func limits(byName map[string]verdict.Check, unit string, names ...string) string {
	best := math.Inf(1)
	for _, n := range names {
		if c, ok := byName[n]; ok && c.Unit == unit && c.Limit < best && !strings.HasPrefix(c.Detail, "skipped") {
			best = c.Limit
		}
	}
	if math.IsInf(best, 1) {
		return ""
	}
	return "≤ " + num(best) + unit
}

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

// shortImage drops a registry and repository path: "registry.example.com/shop/api:v2" → "api:v2".
func shortImage(img string) string {
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	if i := strings.Index(img, "@sha256:"); i >= 0 {
		img = img[:i+15]
	}
	return img
}

func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

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
	var names []string
	for n := range s.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	var ws []string
	for _, n := range names {
		ws = append(ws, fmt.Sprintf("%s:%d", n, s.Weights[n]))
	}
	out := []string{line}
	if len(ws) > 0 {
		out = append(out, t.Label.Render("weights ")+strings.Join(ws, " "))
	}
	return out
}

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

func (m Model) table(w int) []string {
	t := m.th
	rows := m.rows()
	cols := []int{12, 10, 10, 10, 13}
	cell := func(s string, n int) string {
		if lipgloss.Width(s) >= n {
			return ansi.Truncate(s, n-1, "…") + " "
		}
		return s + strings.Repeat(" ", n-lipgloss.Width(s))
	}
	head := t.Label.Render(cell("metric", cols[0]) + cell("canary", cols[1]) + cell("stable", cols[2]) + cell("Δ", cols[3]) + cell("limit", cols[4]) + "result")
	out := []string{"  " + head}
	for i, r := range rows {
		mark := "  "
		if i == m.selected {
			mark = t.Key.Render("› ")
		}
		res := t.result(r.result)
		if r.result == "" {
			res = t.Dim.Render("—")
		}
		out = append(out, mark+cell(r.name, cols[0])+t.Canary.Render(cell(r.canary, cols[1]))+t.Stable.Render(cell(r.stable, cols[2]))+
			cell(r.delta, cols[3])+cell(r.limit, cols[4])+res)
	}
	if m.st.Verdict != nil {
		v := m.st.Verdict
		what := "last verdict"
		if v.Early {
			what = "early look"
		}
		out = append(out, t.Dim.Render(fmt.Sprintf("  %s %s ago · enter explains the selected row", what, clock(m.opts.Now().Sub(m.st.VerdictAt)))))
	} else {
		out = append(out, t.Dim.Render("  no verdict yet: the first look comes a few seconds into the first step"))
	}
	return out
}

// peak is the largest of the values of all the series.
func peak(series ...[]float64) float64 {
	top := 0.0
	for _, s := range series {
		for _, v := range s {
			top = math.Max(top, v)
		}
	}
	return top
}

// spark renders values as a small bar chart, scaled to top (shared by the series drawn side by side,
// so that canary and stable compare).
func spark(values []float64, top float64) string {
	if len(values) == 0 {
		return "—"
	}
	blocks := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range values {
		i := 0
		if top > 0 {
			i = int(math.Round(v / top * float64(len(blocks)-1)))
		}
		b.WriteRune(blocks[min(max(i, 0), len(blocks)-1)])
	}
	return b.String()
}

func (m Model) trends(w int) string {
	t := m.th
	n := max((w-44)/4, 4)
	hist := m.st.History
	if len(hist) > n {
		hist = hist[len(hist)-n:]
	}
	var cp, sp, ce, se []float64
	for _, p := range hist {
		cp = append(cp, float64(p.CanaryP95)/float64(time.Millisecond))
		sp = append(sp, float64(p.StableP95)/float64(time.Millisecond))
		ce = append(ce, p.CanaryErrs)
		se = append(se, p.StableErrs)
	}
	pTop, eTop := peak(cp, sp), peak(ce, se)
	return t.Label.Render("p95 ") + t.Canary.Render(spark(cp, pTop)) + " " + t.Stable.Render(spark(sp, pTop)) +
		t.Label.Render("  errors ") + t.Canary.Render(spark(ce, eTop)) + " " + t.Stable.Render(spark(se, eTop)) +
		t.Dim.Render("  (canary, stable)")
}

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
		line += "  "
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
	}
	if s.LastWarning != "" && m.opts.Now().Sub(s.LastWarningAt) < time.Minute {
		line += t.Warn.Render(" ! " + s.LastWarning)
	}
	return strings.TrimRight(line, " ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (m Model) footer(w int) string {
	t := m.th
	k := func(key, what string) string { return t.Key.Render(key) + " " + what }
	if !m.active() && m.st.Phase != "" {
		return k("q", "quit") + "  " + k("?", "help") + "  " + k("enter", "explain") + t.Dim.Render("  · the release ended: "+string(m.st.Outcome))
	}
	pause := "pause"
	if m.st.Paused {
		pause = "continue"
	}
	keys := []string{k("p", "promote"), k("a", "abort"), k("space", pause), k("n", "next"), k("+/-", "share")}
	if w >= 100 {
		keys = append(keys, k("↑↓ enter", "explain"))
	}
	return strings.Join(append(keys, k("?", "help"), k("q", "quit")), "  ")
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

func (m Model) dialogBox(w int) string {
	t := m.th
	var text string
	switch m.dialog {
	case dialogPromote:
		text = t.Bold.Render("Promote now?") + "\n\nThe remaining steps are skipped: stable takes " + shortImage(m.st.Image) +
			"\nand the canary is removed.\n\n" + t.Key.Render("y") + " promote   " + t.Key.Render("n") + " cancel"
	case dialogAbort:
		text = t.Bold.Render("Abort the release?") + "\n\nAll traffic goes back to stable at once and the canary\nis removed; stable is untouched.\n\n" +
			t.Key.Render("y") + " abort   " + t.Key.Render("n") + " cancel"
	case dialogQuit:
		text = t.Bold.Render("Leave the cockpit?") + "\n\nThe release is not over. What should happen to it?\n\n" +
			t.Key.Render("l") + " leave it running (watch or resume it later)\n" +
			t.Key.Render("p") + " pause it, then leave\n" +
			t.Key.Render("a") + " abort it, then leave\n" +
			t.Key.Render("esc") + " stay"
	}
	return t.Dialog.Width(min(60, w-4)).Render(text)
}

func (m Model) helpBox(w int) string {
	t := m.th
	k := func(key, what string) string { return t.Key.Render(fmt.Sprintf("%-9s", key)) + what }
	text := strings.Join([]string{
		t.Bold.Render("Keys"),
		"",
		k("p", "promote now (asks first)"),
		k("a", "abort: traffic back to stable (asks first)"),
		k("space", "pause / continue the bake's clock"),
		k("n", "next: judge the step now"),
		k("+ / -", "nudge the canary's share by 5 points"),
		k("↑ ↓", "select a metric"),
		k("enter", "explain the selected metric's verdict"),
		k("?", "this help"),
		k("q", "quit: leave running, pause or abort"),
		"",
		t.Dim.Render("Results: " + symPass + " pass  " + symFail + " fail  " + symInconclusive + " inconclusive"),
		t.Dim.Render("Any key closes this help."),
	}, "\n")
	return t.Box.Width(min(64, w-4)).Render(text)
}

func (m Model) explainBox(w, h int) string {
	t := m.th
	rows := m.rows()
	if len(rows) == 0 {
		return ""
	}
	r := rows[min(m.selected, len(rows)-1)]
	inner := min(w-8, 110)
	var lines []string
	lines = append(lines, t.Bold.Render("Why "+r.name+": ")+t.result(r.result))
	v := m.st.Verdict
	if v == nil {
		lines = append(lines, "", "No verdict yet.")
	} else {
		for _, c := range v.Checks {
			if !contains(r.checks, c.Name) {
				continue
			}
			lines = append(lines, "", t.symbol(c.Result)+" "+t.Bold.Render(c.Name)+"  "+wrap(c.Detail, inner-4, "   ")[0])
			for _, more := range wrap(c.Detail, inner-4, "   ")[1:] {
				lines = append(lines, more)
			}
			facts := fmt.Sprintf("   canary %s · stable %s · limit %s %s · samples %d / %d", num(c.Canary), num(c.Stable), num(c.Limit), c.Unit, c.CanaryN, c.StableN)
			lines = append(lines, t.Label.Render(facts))
			if c.Test != "" {
				lines = append(lines, t.Label.Render(fmt.Sprintf("   %s: %s · p = %s, α = %s", c.Test, c.Statistic, pval(c.PValue), pval(c.Alpha))))
			}
			if c.Result == verdict.ResultInconclusive && c.More > 0 {
				lines = append(lines, t.Inconclusive.Render(fmt.Sprintf("   about %d more canary requests would settle it", c.More)))
			}
		}
		if v.Result == verdict.ResultInconclusive && v.More > 0 {
			lines = append(lines, "", t.Inconclusive.Render(fmt.Sprintf("The step needs about %d more canary requests, about %s at the current rate.", v.More, v.Wait)))
		}
		if len(v.Queries) > 0 {
			lines = append(lines, "", t.Label.Render("query"))
			for _, q := range strings.Split(v.Queries[0], "\n") {
				lines = append(lines, t.Dim.Render("  "+q))
			}
		}
	}
	lines = append(lines, "", t.Dim.Render("esc or enter closes"))
	if len(lines) > h-2 && h > 4 {
		lines = append(lines[:h-3], t.Dim.Render("… (taller terminal for more)"))
	}
	return t.Box.Width(inner + 4).Render(strings.Join(lines, "\n"))
}

func pval(p float64) string { return strconv.FormatFloat(p, 'g', 2, 64) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// wrap breaks s into lines of at most n cells; lines after the first start with indent.
func wrap(s string, n int, indent string) []string {
	words := strings.Fields(s)
	var out []string
	cur := ""
	for _, w := range words {
		if cur != "" && lipgloss.Width(cur)+1+lipgloss.Width(w) > n {
			out = append(out, cur)
			cur = indent + w
			continue
		}
		if cur == "" || cur == indent {
			cur += w
		} else {
			cur += " " + w
		}
	}
	if cur != "" || len(out) == 0 {
		out = append(out, cur)
	}
	return out
}
