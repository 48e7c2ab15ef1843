package main

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/analysis"
	"github.com/fridaymorning/fridaymorning/release"
)

// thresholds are the defaults (50 requests per group to pass, confidence 0.98, at most 1% errors and 1
// point more than stable, p50/p95/p99 at most 1.25 × stable's + 10 ms) with the example
// configuration's p99 limit of 500 ms.
var thresholds = func() analysis.Thresholds {
	th := analysis.DefaultThresholds()
	th.MaxP99 = 500 * time.Millisecond
	return th
}()

// Scenario is a canary to release.
type Scenario struct {
	Name   string
	Canary Service
}

func canary(f func(*Service)) Service {
	s := stableService
	f(&s)
	return s
}

// healthy is a canary identical to stable; atLimit one whose error rate is exactly its limit (1%), the
// worst case a false abort can be measured at.
var (
	healthy = Scenario{"healthy (identical to stable)", stableService}
	atLimit = Scenario{"at its error limit (1% errors)", canary(func(s *Service) { s.ErrorRate = 0.01 })}
	// pastLimit is beyond both error margins (1% and stable + 1 point), but not by much: what an early
	// pass must not promote more often than fixed bakes do.
	pastLimit = Scenario{"past its error limit (1.5% errors)", canary(func(s *Service) { s.ErrorRate = 0.015 })}
)

// faults are the detection scenarios: error rates against stable's 0.1%, and slower canaries.
var faults = []Scenario{
	{"errors 50%", canary(func(s *Service) { s.ErrorRate = 0.5 })},
	{"errors 10%", canary(func(s *Service) { s.ErrorRate = 0.1 })},
	{"errors 5%", canary(func(s *Service) { s.ErrorRate = 0.05 })},
	{"errors 2%", canary(func(s *Service) { s.ErrorRate = 0.02 })},
	{"latency +250 ms", canary(func(s *Service) { s.Shift = 250 })},
	{"median +50%", canary(func(s *Service) { s.Scale = 1.5 })},
	// A wider spread at the same median: p99 doubles (z₀.₉₉ = 2.326).
	{"p99 doubled", canary(func(s *Service) { s.Sigma += math.Ln2 / 2.326 })},
}

// Tally counts how releases of one scheme ended.
type Tally struct {
	Runs, Promoted, Failed, Inconclusive int
	// Promotions are the promoted releases' times, from the canary's first traffic to the promotion.
	Promotions []time.Duration
}

func (t *Tally) add(o Outcome) {
	t.Runs++
	switch o.Result {
	case promoted:
		t.Promoted++
		t.Promotions = append(t.Promotions, o.At)
	case abortedInconclusive:
		t.Inconclusive++
	default:
		t.Failed++
	}
}

// Detection is how fast a scheme aborted a faulty canary: the median and p95 of the time from its
// first traffic to the abort, over every run (a run not aborted counts as never: +Inf).
type Detection struct {
	Runs, Detected int
	Median, P95    time.Duration
}

func detection(outs []Outcome) Detection {
	d := Detection{Runs: len(outs)}
	times := make([]float64, len(outs))
	for i, o := range outs {
		times[i] = math.Inf(1)
		if o.Result != promoted {
			d.Detected++
			times[i] = float64(o.At)
		}
	}
	slices.Sort(times)
	q := func(p float64) time.Duration {
		v := times[max(int(math.Ceil(p*float64(len(times))))-1, 0)]
		if math.IsInf(v, 1) {
			return -1
		}
		return time.Duration(v)
	}
	d.Median, d.P95 = q(0.5), q(0.95)
	return d
}

// AbortRow is the false-abort figure of a healthy canary under both schemes.
type AbortRow struct {
	Scenario          Scenario
	Fixed, Sequential Tally
}

// DetectionRow is the detection figure of one fault under the schemes.
type DetectionRow struct {
	Scenario Scenario
	// Calibrated is today's scheme at the confidence that holds it to the budget at the error limit.
	Fixed, Calibrated, Sequential, Flagger Detection
}

// EarlyPassRow is a canary's release under fixed bakes and with an early pass, at a rate.
type EarlyPassRow struct {
	Rate         float64
	Scenario     Scenario
	Fixed, Early Tally
}

// Report is every figure of a simulation.
type Report struct {
	Config      Config
	Schedule    release.Schedule
	Thresholds  analysis.Thresholds
	FalseAborts []AbortRow
	// Calibrated is the confidence at which today's scheme fails a canary at its error limit no more
	// often than the budget allows, and CalibratedAtLimit how that canary fared at it.
	Calibrated        float64
	CalibratedAtLimit Tally
	Detection         []DetectionRow
	EarlyPass         []EarlyPassRow
	// Percentiles are each service's p50 and p99 (ms), measured, for the tables' captions.
	Percentiles map[string][2]float64
	// Simulated counts the releases simulated.
	Simulated int
}

// schedule is the engine's schedule with the defaults of fridaymorning.yaml: early looks every 2 s,
// 1 s for telemetry to land, 2 extensions; an early pass after at least 10 s.
func schedule(cfg Config, earlyPass bool) release.Schedule {
	return release.Schedule{Bake: cfg.Bake, EarlyInterval: 2 * time.Second, AnalysisDelay: time.Second, MaxExtensions: 2,
		EarlyPass: earlyPass, MinBake: 10 * time.Second}
}

// Simulate runs every experiment of cfg.
func Simulate(cfg Config) Report {
	rep := Report{Config: cfg, Schedule: schedule(cfg, false), Thresholds: thresholds, Percentiles: map[string][2]float64{}}
	services := append([]Scenario{healthy, atLimit}, faults...)
	for _, s := range services {
		rep.Percentiles[s.Name] = percentiles(s.Canary, cfg.Seed)
	}
	fixedAt := func(th analysis.Thresholds, sc Scenario, rate float64, s release.Schedule) func(seed uint64) Outcome {
		return func(seed uint64) Outcome {
			return replay(s, cfg.Steps, &fixedJudger{th: th, tr: NewTraffic(rate, sc.Canary, seed)})
		}
	}
	fixedRun := func(sc Scenario, rate float64, s release.Schedule) func(seed uint64) Outcome {
		return fixedAt(thresholds, sc, rate, s)
	}
	seqRun := func(sc Scenario, rate float64, s release.Schedule) func(seed uint64) Outcome {
		return func(seed uint64) Outcome {
			return replay(s, cfg.Steps, &seqJudger{th: thresholds, tr: NewTraffic(rate, sc.Canary, seed), rng: rand.New(rand.NewPCG(seed, 1))})
		}
	}
	flaggerRun := func(sc Scenario) func(seed uint64) Outcome {
		return func(seed uint64) Outcome { return flagger(cfg.Steps, NewTraffic(cfg.Rate, sc.Canary, seed)) }
	}
	tally := func(outs []Outcome) Tally {
		var t Tally
		for _, o := range outs {
			t.add(o)
		}
		return t
	}

	// A canary at its limit takes its steps to the end, extensions and all: a fifth as many runs.
	atLimitRuns := max(cfg.Releases/5, 1)
	for _, sc := range []struct {
		s Scenario
		n int
	}{{healthy, cfg.Releases}, {atLimit, atLimitRuns}} {
		row := AbortRow{Scenario: sc.s}
		row.Fixed = tally(runs(cfg, "false-abort "+sc.s.Name, sc.n, fixedRun(sc.s, cfg.Rate, rep.Schedule)))
		row.Sequential = tally(runs(cfg, "false-abort "+sc.s.Name, sc.n, seqRun(sc.s, cfg.Rate, rep.Schedule)))
		rep.FalseAborts = append(rep.FalseAborts, row)
		rep.Simulated += 2 * sc.n
	}
	// Today's scheme held to the budget: the confidence at which a canary at its error limit fails
	// no more often than 1 − confidence of the defaults, found by scaling α down by what it overspent.
	budget := 1 - thresholds.Confidence
	calibrated := thresholds
	failed := float64(rep.FalseAborts[1].Fixed.Failed) / float64(rep.FalseAborts[1].Fixed.Runs)
	for range 4 {
		if failed <= budget {
			break
		}
		alpha := (1 - calibrated.Confidence) * budget / failed * 0.9
		calibrated.Confidence = 1 - alpha
		rep.CalibratedAtLimit = tally(runs(cfg, "false-abort "+atLimit.Name, atLimitRuns, fixedAt(calibrated, atLimit, cfg.Rate, rep.Schedule)))
		rep.Simulated += atLimitRuns
		failed = float64(rep.CalibratedAtLimit.Failed) / float64(rep.CalibratedAtLimit.Runs)
	}
	rep.Calibrated = calibrated.Confidence
	for _, sc := range faults {
		name := "detection " + sc.Name
		rep.Detection = append(rep.Detection, DetectionRow{Scenario: sc,
			Fixed:      detection(runs(cfg, name, cfg.Runs, fixedRun(sc, cfg.Rate, rep.Schedule))),
			Calibrated: detection(runs(cfg, name, cfg.Runs, fixedAt(calibrated, sc, cfg.Rate, rep.Schedule))),
			Sequential: detection(runs(cfg, name, cfg.Runs, seqRun(sc, cfg.Rate, rep.Schedule))),
			Flagger:    detection(runs(cfg, name, cfg.Runs, flaggerRun(sc))),
		})
		rep.Simulated += 4 * cfg.Runs
	}
	for _, rate := range []float64{cfg.Rate, 10 * cfg.Rate} {
		for _, sc := range []Scenario{healthy, pastLimit} {
			name := "early pass " + sc.Name
			rep.EarlyPass = append(rep.EarlyPass, EarlyPassRow{Rate: rate, Scenario: sc,
				Fixed: tally(runs(cfg, name, cfg.Runs, seqRun(sc, rate, schedule(cfg, false)))),
				Early: tally(runs(cfg, name, cfg.Runs, seqRun(sc, rate, schedule(cfg, true)))),
			})
			rep.Simulated += 2 * cfg.Runs
		}
	}
	return rep
}

// runs simulates n releases of an experiment with cfg.Workers workers; the i-th release's seed
// depends only on cfg.Seed, the experiment's name and i.
func runs(cfg Config, experiment string, n int, release func(seed uint64) Outcome) []Outcome {
	out := make([]Outcome, n)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				out[i] = release(seedOf(cfg.Seed, experiment, i))
			}
		}()
	}
	wg.Wait()
	return out
}

func seedOf(seed uint64, experiment string, i int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(experiment))
	return h.Sum64() ^ seed*0x9e3779b97f4a7c15 ^ uint64(i)*0xbf58476d1ce4e5b9
}

// percentiles measures a service's p50 and p99 (ms) over 200,000 requests.
func percentiles(s Service, seed uint64) [2]float64 {
	tr := NewTraffic(200_000, s, seed)
	tr.Stable = s
	_, b := tr.Serve(0, time.Second, 0)
	slices.Sort(b.Latencies)
	return [2]float64{nearestRank(b.Latencies, 0.5), nearestRank(b.Latencies, 0.99)}
}
