package tui

import (
	"math"
	"strings"
	"time"
)

// trends is the sparklines of p95 and of the error rate over the last looks, canary beside stable.
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
