package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
)

// Markdown writes the report's tables.
func (r Report) Markdown(w io.Writer) {
	c, s, th := r.Config, r.Schedule, r.Thresholds
	st := r.Percentiles[healthy.Name]
	fmt.Fprintf(w, "Setup: %d steps (%s), bake %s, a look every %s (judging up to %s before it), up to %d extensions, %s requests a second; "+
		"thresholds: confidence %s, at most %s%% errors and %s points over stable, p99 ≤ %s, p50/p95/p99 ≤ %s × stable's + %s. "+
		"Stable: %s%% errors, p50 %s ms, p99 %s ms, load moving latency by about %s%% every 2 s, %s%% slow outliers. Seed %d.\n\n",
		len(c.Steps), release.FormatSteps(c.Steps), s.Bake, s.EarlyInterval, s.AnalysisDelay, s.MaxExtensions, num(c.Rate),
		num(th.Confidence), num(th.MaxErrorRate), num(th.MaxErrorRateIncrease), th.MaxP99, num(th.MaxLatencyRatio), th.LatencySlack,
		num(100*stableService.ErrorRate), num(st[0]), num(st[1]), num(100*loadSpread), num(100*stableService.Outliers), c.Seed)

	fmt.Fprintf(w, "False aborts: releases of a canary that is as good as its limits allow, each the same release under both schemes.\n\n")
	fmt.Fprintf(w, "| canary | releases | scheme | aborted | a check failed | inconclusive | budget |\n|---|---:|---|---:|---:|---:|---:|\n")
	for _, row := range r.FalseAborts {
		for _, x := range []struct {
			name string
			t    Tally
		}{{"fixed tests at every look (today)", row.Fixed}, {"sequential (anytime-valid)", row.Sequential}} {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", row.Scenario.Name, x.t.Runs, x.name,
				share(x.t.Failed+x.t.Inconclusive, x.t.Runs), share(x.t.Failed, x.t.Runs), share(x.t.Inconclusive, x.t.Runs), share2(1-th.Confidence))
		}
	}
	if t := r.CalibratedAtLimit; t.Runs > 0 {
		fmt.Fprintf(w, "| %s | %d | fixed tests at confidence %s (calibrated) | %s | %s | %s | %s |\n", atLimit.Name, t.Runs, calibrated(r.Calibrated),
			share(t.Failed+t.Inconclusive, t.Runs), share(t.Failed, t.Runs), share(t.Inconclusive, t.Runs), share2(1-th.Confidence))
	}
	fmt.Fprintf(w, "\n\"A check failed\" is the false abort the budget bounds; \"inconclusive\" is the policy on_inconclusive: abort after %d extensions "+
		"of a step whose figures stay beyond a limit without proof, the same in both schemes.\n", s.MaxExtensions)

	fmt.Fprintf(w, "\nDetection: time from the canary's first traffic (%s%% of %s requests a second) to the abort, median / p95 over %d runs "+
		"(a run never aborted counts as never: —).\n\n", num(c.Steps[0]), num(c.Rate), c.Runs)
	fmt.Fprintf(w, "| fault | canary p50 / p99 | sequential | fixed tests (today) | fixed tests held to the budget (confidence %s) | Flagger-style (1 min, 5 failures) |\n|---|---|---|---|---|---|\n", calibrated(r.Calibrated))
	for _, row := range r.Detection {
		p := r.Percentiles[row.Scenario.Name]
		fmt.Fprintf(w, "| %s | %s / %s ms | %s | %s | %s | %s |\n", row.Scenario.Name, num(p[0]), num(p[1]), detected(row.Sequential), detected(row.Fixed), detected(row.Calibrated), detected(row.Flagger))
	}

	fmt.Fprintf(w, "\nEarly pass (analysis.early_pass, min_bake %s): release time, from the canary's first traffic to the promotion, median / p95 over %d runs; "+
		"the sequential tests abort in both columns, the early pass only ends a step sooner. Its false-promotion budget is the same %s per step.\n\n", s.MinBake, c.Runs, share2(1-th.Confidence))
	fmt.Fprintf(w, "| requests a second | canary | fixed bakes: promoted | release time | early pass: promoted | release time |\n|---:|---|---:|---|---:|---|\n")
	for _, row := range r.EarlyPass {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", num(row.Rate), row.Scenario.Name,
			share(row.Fixed.Promoted, row.Fixed.Runs), promotedTimes(row.Fixed), share(row.Early.Promoted, row.Early.Runs), promotedTimes(row.Early))
	}
}

func calibrated(c float64) string { return fmt.Sprintf("%.4g", c) }

func num(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func share(n, of int) string {
	if of == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f%% (%d)", 100*float64(n)/float64(of), n)
}

func share2(p float64) string { return fmt.Sprintf("%s%%", num(100*p)) }

func secs(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	if d < 10*time.Minute {
		return fmt.Sprintf("%s s", num(math.Round(d.Seconds()*10)/10))
	}
	return fmt.Sprintf("%s min", num(math.Round(d.Minutes()*10)/10))
}

func detected(d Detection) string {
	s := secs(d.Median) + " / " + secs(d.P95)
	if d.Detected < d.Runs {
		s += fmt.Sprintf(" (%s detected)", share2(float64(d.Detected)/float64(d.Runs)))
	}
	return s
}

// promotedTimes is the median / p95 release time of the promoted runs.
func promotedTimes(t Tally) string {
	if t.Promoted == 0 {
		return "—"
	}
	outs := make([]Outcome, len(t.Promotions))
	for i, at := range t.Promotions {
		outs[i] = Outcome{Result: abortedAnalysis, At: at}
	}
	d := detection(outs)
	return secs(d.Median) + " / " + secs(d.P95)
}

// SVG draws the detection times: per fault, each scheme's median (dot) and p95 (end of the bar) on a
// logarithmic time axis.
func (r Report) SVG() string {
	const (
		width, left, right, top, rowH, lane = 820, 150, 30, 76, 66, 14
		minS, maxS                          = 1.0, 3600.0
	)
	height := top + rowH*len(r.Detection) + 60
	x := func(d time.Duration) float64 {
		s := math.Min(math.Max(d.Seconds(), minS), maxS)
		return left + (width-left-right)*math.Log(s/minS)/math.Log(maxS/minS)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">Time to abort a faulty canary (%s%% of %s req/s): median (dot) to p95 (bar end), %d runs each</text>`+"\n",
		10, num(r.Config.Steps[0]), num(r.Config.Rate), r.Config.Runs)
	schemes := []struct {
		name, color string
		get         func(DetectionRow) Detection
	}{
		{"sequential (anytime-valid)", "#1b9e77", func(d DetectionRow) Detection { return d.Sequential }},
		{"fixed tests at every look (today)", "#d95f02", func(d DetectionRow) Detection { return d.Fixed }},
		{"fixed tests held to the 2% budget", "#e7298a", func(d DetectionRow) Detection { return d.Calibrated }},
		{"Flagger-style (1 min checks, 5 failures)", "#7570b3", func(d DetectionRow) Detection { return d.Flagger }},
	}
	for i, s := range schemes {
		lx, ly := 10+(i%2)*400, 38+(i/2)*18
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="5" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx+5, ly, s.color, lx+14, ly+4, s.name)
	}
	axisY := top + rowH*len(r.Detection)
	for _, t := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(t), top-4, x(t), axisY)
		label := secs(t)
		if t >= time.Minute {
			label = fmt.Sprintf("%g min", t.Minutes())
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), axisY+16, label)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">time from the canary's first traffic to the abort (log scale); an arrow: some runs never aborted</text>`+"\n", float64(left+width-right)/2, axisY+36)
	for i, row := range r.Detection {
		y0 := top + rowH*i
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", 10, y0+rowH/2+4, row.Scenario.Name)
		if i > 0 {
			fmt.Fprintf(&b, `<line x1="10" y1="%d" x2="%d" y2="%d" stroke="#eee"/>`+"\n", y0, width-right, y0)
		}
		for j, s := range schemes {
			d := s.get(row)
			y := y0 + 12 + j*lane
			if d.Median < 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="%s" text-anchor="end">never aborted (%s detected) →</text>`+"\n", x(time.Hour), y+4, s.color, share2(float64(d.Detected)/float64(d.Runs)))
				continue
			}
			end := x(time.Hour)
			if d.P95 >= 0 {
				end = x(d.P95)
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="4" stroke-linecap="round"/>`+"\n", x(d.Median), y, end, y, s.color)
			if d.P95 < 0 {
				fmt.Fprintf(&b, `<path d="M %.1f %d l -8 -5 v 10 z" fill="%s"/>`+"\n", end+4, y, s.color)
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="5" fill="%s"/>`+"\n", x(d.Median), y, s.color)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
