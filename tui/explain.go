package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// explainBox is the explain overlay: the checks behind the selected row, each with its evidence (the
// numbers, the test, what would settle it), and the query that produced the numbers.
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
		for _, c := range r.checks {
			detail := wrap(c.Detail, inner-4, "   ")
			lines = append(lines, "", t.symbol(c.Result)+" "+t.Bold.Render(c.Name)+"  "+detail[0])
			lines = append(lines, detail[1:]...)
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

// pval renders a p-value or α with two significant digits: "4.4e-15", "0.02".
func pval(p float64) string { return strconv.FormatFloat(p, 'g', 2, 64) }

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
