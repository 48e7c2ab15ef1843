package tui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// row is one line of the metrics table with the checks that judge it, in the verdict's order.
type row struct {
	name                         string
	canary, stable, delta, limit string
	result                       verdict.Result
	checks                       []verdict.Check
}

// tableRows are the table's fixed rows, each with the metric whose checks judge it; rps has none. One
// row per custom check follows them.
var tableRows = []struct {
	name   string
	metric verdict.Metric
}{
	{"requests", verdict.MetricRequests},
	{"rps", ""},
	{"error rate", verdict.MetricErrorRate},
	{"p50", verdict.MetricP50},
	{"p95", verdict.MetricP95},
	{"p99", verdict.MetricP99},
}

// rows builds the metrics table from the latest verdict.
func (m Model) rows() []row {
	v := m.st.Verdict
	out := make([]row, 0, len(tableRows))
	for _, tr := range tableRows {
		r := row{name: tr.name}
		if v != nil {
			if tr.metric != "" {
				r.judgedBy(v.Checks, tr.metric)
			}
			m.fill(&r, tr.metric, v)
		}
		out = append(out, r)
	}
	if v == nil {
		return out
	}
	for _, c := range v.Checks {
		if c.Metric != verdict.MetricCustom {
			continue
		}
		out = append(out, row{name: strings.TrimPrefix(c.Name, verdict.CustomPrefix), canary: num(c.Canary) + c.Unit, stable: num(c.Stable) + c.Unit,
			delta: signed(c.Canary-c.Stable, c.Unit), limit: "≤ " + num(c.Limit), result: c.Result, checks: []verdict.Check{c}})
	}
	return out
}

// judgedBy gives r the checks about metric and the worst of their results.
func (r *row) judgedBy(checks []verdict.Check, metric verdict.Metric) {
	for _, c := range checks {
		if c.Metric == metric {
			r.checks = append(r.checks, c)
			r.result = verdict.Worse(r.result, c.Result)
		}
	}
}

// fill sets the values of the row of metric from v: canary, stable, their difference and the limit.
func (m Model) fill(r *row, metric verdict.Metric, v *verdict.Verdict) {
	cm, sm := v.Canary, v.Stable
	switch metric {
	case verdict.MetricRequests:
		r.canary, r.stable = strconv.FormatInt(cm.Requests, 10), strconv.FormatInt(sm.Requests, 10)
		r.limit = minRequests(r.checks)
	case "":
		if secs := m.st.VerdictAt.Sub(m.st.TrafficAt).Seconds(); secs > 0 && !m.st.TrafficAt.IsZero() {
			r.canary, r.stable = num(float64(cm.Requests)/secs), num(float64(sm.Requests)/secs)
		}
	case verdict.MetricErrorRate:
		r.canary, r.stable, r.delta = num(cm.ErrorRate)+"%", num(sm.ErrorRate)+"%", signed(cm.ErrorRate-sm.ErrorRate, "pt")
		r.limit = tightest(r.checks, "%")
	default:
		c, s := percentile(cm, metric), percentile(sm, metric)
		r.canary, r.stable, r.delta = msStr(c), msStr(s), signed(float64(c-s)/float64(time.Millisecond), "ms")
		r.limit = tightest(r.checks, "ms")
	}
}

// percentile is the latency percentile q of g.
func percentile(g verdict.Metrics, q verdict.Metric) time.Duration {
	switch q {
	case verdict.MetricP50:
		return g.P50
	case verdict.MetricP90:
		return g.P90
	case verdict.MetricP95:
		return g.P95
	case verdict.MetricP99:
		return g.P99
	}
	return 0
}

// minRequests is the sample size the canary is held to: "≥ 50", the limit of the first requests check
// that applies (the verdict lists the canary's own count first).
func minRequests(checks []verdict.Check) string {
	for _, c := range checks {
		if !c.Skipped {
			return "≥ " + num(c.Limit)
		}
	}
	return ""
}

// tightest is the tightest limit in unit among the checks that apply: "≤ 13.8ms".
func tightest(checks []verdict.Check, unit string) string {
	best := math.Inf(1)
	for _, c := range checks {
		if c.Unit == unit && c.Limit < best && !c.Skipped {
			best = c.Limit
		}
	}
	if math.IsInf(best, 1) {
		return ""
	}
	return "≤ " + num(best) + unit
}

// table is the metrics table: one row per metric, the selected one marked, and when the numbers are from.
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
