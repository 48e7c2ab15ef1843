package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// small is a quick configuration of every experiment.
func small() Config {
	cfg := DefaultConfig()
	cfg.Releases, cfg.Runs = 300, 60
	return cfg
}

// TestBudget: the sequential scheme keeps its budget for a canary at its error limit where today's
// overspends it, and both abort a canary failing half its requests within seconds.
func TestBudget(t *testing.T) {
	cfg := small()
	cfg.Releases = 150
	s := schedule(cfg, false)
	budget := 1 - thresholds.Confidence
	failed := func(outs []Outcome) float64 {
		n := 0
		for _, o := range outs {
			if o.Result == abortedAnalysis {
				n++
			}
		}
		return float64(n) / float64(len(outs))
	}
	seq := runs(cfg, "false-abort "+atLimit.Name, cfg.Releases, func(seed uint64) Outcome {
		return replay(s, cfg.Steps, &seqJudger{th: thresholds, tr: NewTraffic(cfg.Rate, atLimit.Canary, seed), rng: rand.New(rand.NewPCG(seed, 1))})
	})
	fixed := runs(cfg, "false-abort "+atLimit.Name, cfg.Releases, func(seed uint64) Outcome {
		return replay(s, cfg.Steps, &fixedJudger{th: thresholds, tr: NewTraffic(cfg.Rate, atLimit.Canary, seed)})
	})
	if got := failed(seq); got > budget {
		t.Errorf("sequential: %.1f%% of canaries at their limit failed, budget %.0f%%", 100*got, 100*budget)
	}
	if got := failed(fixed); got <= budget {
		t.Errorf("today's scheme failed %.1f%% of canaries at their limit, within the budget: the figure shows nothing", 100*got)
	}
	half := detection(runs(cfg, "detection errors 50%", cfg.Runs, func(seed uint64) Outcome {
		return replay(s, cfg.Steps, &seqJudger{th: thresholds, tr: NewTraffic(cfg.Rate, faults[0].Canary, seed), rng: rand.New(rand.NewPCG(seed, 1))})
	}))
	if half.Detected != half.Runs || half.Median > 4*time.Second || half.P95 > 6*time.Second {
		t.Errorf("half the requests failing: %+v", half)
	}
}

// TestReport: the tables and the plot of a report.
func TestReport(t *testing.T) {
	cfg := small()
	d := Detection{Runs: 10, Detected: 10, Median: 2 * time.Second, P95: 4 * time.Second}
	never := Detection{Runs: 10, Detected: 3, Median: -1, P95: -1}
	rep := Report{Config: cfg, Schedule: schedule(cfg, false), Thresholds: thresholds, Calibrated: 0.995,
		FalseAborts: []AbortRow{{Scenario: healthy, Fixed: Tally{Runs: 10, Promoted: 10}, Sequential: Tally{Runs: 10, Promoted: 9, Failed: 1}}},
		Percentiles: map[string][2]float64{}}
	for _, f := range faults {
		rep.Detection = append(rep.Detection, DetectionRow{Scenario: f, Fixed: d, Calibrated: d, Sequential: d, Flagger: never})
	}
	rep.EarlyPass = []EarlyPassRow{{Rate: 100, Scenario: healthy, Fixed: Tally{Runs: 2, Promoted: 2, Promotions: []time.Duration{time.Minute, 2 * time.Minute}}, Early: Tally{Runs: 2}}}
	var md bytes.Buffer
	rep.Markdown(&md)
	for _, want := range []string{"False aborts", "| healthy (identical to stable) | 10 | sequential (anytime-valid) | 10.00% (1) |", "| errors 2% |", "2 s / 4 s", "— / — (30% detected)", "| 100 | healthy (identical to stable) | 100.00% (2) | 60 s / 120 s | 0.00% (0) | — |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the tables lack %q:\n%s", want, md.String())
		}
	}
	svg := rep.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the plot is no well-formed SVG: %v", err)
		}
	}
	if !strings.Contains(svg, "errors 50%") || !strings.Contains(svg, "never aborted (30% detected)") || strings.Count(svg, "<circle") < 3*len(rep.Detection) {
		t.Error("the plot lacks its rows")
	}
}

// TestRunsAreSeeded: the same seed gives the same figures, whatever the number of workers.
func TestRunsAreSeeded(t *testing.T) {
	cfg := small()
	one := func(workers int) []Outcome {
		cfg.Workers = workers
		return runs(cfg, "detection errors 5%", 40, func(seed uint64) Outcome {
			return replay(schedule(cfg, false), cfg.Steps, &seqJudger{th: thresholds, tr: NewTraffic(cfg.Rate, faults[2].Canary, seed), rng: rand.New(rand.NewPCG(seed, 1))})
		})
	}
	if a, b := one(1), one(3); !slices.Equal(a, b) {
		t.Errorf("1 worker: %v\n3 workers: %v", a, b)
	}
}

func TestWindowAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w window
	var all []float64
	for range 50 {
		var b Batch
		for range rng.IntN(30) {
			b.Latencies = append(b.Latencies, float64(rng.IntN(100)))
		}
		all = append(all, b.Latencies...)
		w.add(b)
	}
	slices.Sort(all)
	if !slices.Equal(all, w.sorted) {
		t.Fatal("the window's latencies are not the sorted union of its batches")
	}
}

// BenchmarkSimulate runs the experiments small and reports their headline figures: the share of
// canaries at their error limit each scheme aborts on a failed check, and the median seconds to abort
// a canary with 5% errors.
func BenchmarkSimulate(b *testing.B) {
	for b.Loop() {
		rep := Simulate(small())
		lim := rep.FalseAborts[1]
		b.ReportMetric(100*float64(lim.Sequential.Failed)/float64(lim.Sequential.Runs), "%false-seq")
		b.ReportMetric(100*float64(lim.Fixed.Failed)/float64(lim.Fixed.Runs), "%false-fixed")
		b.ReportMetric(rep.Detection[2].Sequential.Median.Seconds(), "s-5%-seq")
		b.ReportMetric(rep.Detection[2].Fixed.Median.Seconds(), "s-5%-fixed")
	}
}
