package analysis

import (
	"math"
	"slices"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Look is one look of a release's sequential analysis: what a store read of the interval since the
// previous look, [Since, Window.To).
type Look struct {
	// Window is the step's window so far (From is where the step began, To where this look's data
	// ends), with the share, the load balancer's counts of the whole window when known, and the
	// Sequence the looks before left.
	Window verdict.Window
	// Since is where the interval read begins: the previous look's end, or the window's start.
	Since time.Time
	// Canary and Stable are what each group served in the interval.
	Canary, Stable Interval
	// Custom holds the custom metrics' values over the whole window, in the order of Thresholds.Custom
	// (final looks only).
	Custom []CustomValue
	// Recount, at a final look, is the whole window's counts as the store has them now: points that
	// landed after the look that read their interval are counted with this look (in the error tests
	// and the window's figures, so that the telemetry check does not take them for lost).
	Recount *Recount
}

// Recount is each group's counts over a whole window (Interval's counts, no cuts, no sample).
type Recount struct {
	Canary, Stable Interval
}

// Interval is what a group served in the interval of one look: counts, counts of slow requests, and a
// bounded sample of latencies. Its size does not grow with the window, so neither does a look's cost.
type Interval struct {
	// Requests, Errors, Errors5xx and Timed count as verdict.Metrics does.
	Requests, Errors, Errors5xx, Timed int64
	// Above counts the timed requests slower than each of the group's cuts (LookCuts), in their order.
	Above []int64
	// Latencies is a uniform sample of the interval's latencies (ms), at most LookSample of them.
	Latencies []float64
}

// LookSample is how many latencies of each group a look samples at most: enough for a rank test and
// for the window's percentiles, and a fixed cost per look whatever the traffic.
const LookSample = 1000

// Cut is a latency (ms) a look counts a group's slower requests against.
type Cut struct {
	// Name says what the cut is for: "limit_p99" (a latency limit), "margin_p95" (ratio × stable's
	// p95 + slack, for the canary), "p95" (stable's p95, for stable).
	Name string
	Ms   float64
}

// Cuts are the latencies a look counts each group's slow requests against.
type Cuts struct {
	Canary, Stable []Cut
}

// tailMetrics are the percentiles of the tests against stable: the median (latency_shift's early pass)
// and the tails.
var tailMetrics = []struct {
	metric verdict.Metric
	q      float64
}{{verdict.MetricP50, 0.5}, {verdict.MetricP95, 0.95}, {verdict.MetricP99, 0.99}}

// LookCuts are the cuts the next look after seq counts against: the latency limits for the canary and,
// once stable's percentiles are estimated, ratio × stable's percentile + slack for the canary and the
// percentile itself for stable. They come from the looks before, so that no look picks its own cut.
func LookCuts(seq *verdict.Sequence, th Thresholds) Cuts {
	var c Cuts
	for _, l := range limitsOf(th) {
		c.Canary = append(c.Canary, Cut{Name: "limit_" + string(l.metric), Ms: msOf(l.limit)})
	}
	r := th.MaxLatencyRatio
	if r == 0 || math.IsNaN(r) || seq == nil {
		return c
	}
	for _, t := range tailMetrics {
		cut, ok := seq.Cuts[t.metric]
		if !ok || math.IsNaN(cut) {
			continue
		}
		c.Canary = append(c.Canary, Cut{Name: "margin_" + string(t.metric), Ms: r*cut + msOf(th.LatencySlack)})
		c.Stable = append(c.Stable, Cut{Name: string(t.metric), Ms: cut})
	}
	return c
}

type limit struct {
	metric verdict.Metric
	q      float64
	limit  time.Duration
}

// limitsOf are the latency limits set in th.
func limitsOf(th Thresholds) []limit {
	var out []limit
	for _, l := range []limit{{verdict.MetricP50, 0.5, th.MaxP50}, {verdict.MetricP90, 0.9, th.MaxP90}, {verdict.MetricP95, 0.95, th.MaxP95}, {verdict.MetricP99, 0.99, th.MaxP99}} {
		if l.limit > 0 {
			out = append(out, l)
		}
	}
	return out
}

// above is what a group's Above says for the cut named name, and whether it was counted.
func (iv Interval) above(cuts []Cut, name string) (int64, bool) {
	i := slices.IndexFunc(cuts, func(c Cut) bool { return c.Name == name })
	if i < 0 || i >= len(iv.Above) {
		return 0, false
	}
	return iv.Above[i], true
}

// The sequential tests, named in Check.Test.
const (
	testSeqBinomial  = "sequential binomial"
	testSeqIncrease  = "sequential two-proportion"
	testSeqRank      = "sequential rank-sum"
	testSeqExceeding = "sequential exceedance vs stable"
)

// seqTest is one check's sequential test: its name, its test, its group and, for a latency test, its
// percentile.
type seqTest struct {
	name  string
	test  string
	group string
	// share is the check's weight in its group's evidence.
	share  float64
	metric verdict.Metric
	q      float64
	limit  time.Duration
	// relative: the test compares with stable.
	relative bool
	tilts    []float64
}

// The groups of checks that share a part of the release's budget.
const (
	groupErrors  = "errors"
	groupLatency = "latency"
)

// seqTests are the tests of the checks that can abort a release under th, in the order of the checks.
// They come in groups, the error checks and the latency checks, and each group has an equal share of
// the release's budget: the group's evidence is a weighted mean of its checks' e-values (an e-value for
// all of its checks' null hypotheses at once), and the group fails when that reaches 1/its share.
// Checks of a group mostly see a fault together (a failing canary breaks the error limit and the
// margin over stable at once), so the mean costs little against the best of them, and far less than
// a share per check would. Of the error checks, error_rate has three quarters of the weight: with
// stable's rate unknown, error_rate_increase gathers evidence more slowly from the same errors.
func seqTests(th Thresholds) []seqTest {
	ts := seqTestList(th)
	latency := 0
	for _, t := range ts {
		if t.group == groupLatency {
			latency++
		}
	}
	for i := range ts {
		switch {
		case ts[i].name == verdict.CheckErrorRate:
			ts[i].share = 0.75
		case ts[i].name == verdict.CheckErrorRateIncrease:
			ts[i].share = 0.25
		default:
			ts[i].share = 1 / float64(latency)
		}
	}
	return ts
}

func seqTestList(th Thresholds) []seqTest {
	ts := []seqTest{{name: verdict.CheckErrorRate, test: testSeqBinomial, group: groupErrors, metric: verdict.MetricErrorRate, tilts: tilts}}
	for _, l := range limitsOf(th) {
		ts = append(ts, seqTest{name: verdict.LatencyCheck(l.metric), test: testSeqBinomial, group: groupLatency, metric: l.metric, q: l.q, limit: l.limit, tilts: tilts})
	}
	ts = append(ts, seqTest{name: verdict.CheckErrorRateIncrease, test: testSeqIncrease, group: groupErrors, metric: verdict.MetricErrorRate, relative: true, tilts: tilts})
	if th.MaxLatencyRatio != 0 {
		ts = append(ts, seqTest{name: verdict.CheckLatencyShift, test: testSeqRank, group: groupLatency, metric: verdict.MetricP50, q: 0.5, relative: true, tilts: rankTilts})
		for _, t := range tailMetrics[1:] {
			ts = append(ts, seqTest{name: verdict.VsStableCheck(t.metric), test: testSeqExceeding, group: groupLatency, metric: t.metric, q: t.q, relative: true, tilts: tilts})
		}
	}
	return ts
}

// stepState is what a window's looks have added up: the analysis package's part of a Sequence that is
// not kept in the release record.
type stepState struct {
	from           time.Time
	canary, stable stepGroup
	// stableAll is every stable latency sampled since the release (or this process) began: what the
	// cuts are estimated from.
	stableAll histogram
	// lost are canary 5xx answers the load balancer counted in the window and the store lacks, as far as
	// they have been counted against the canary.
	lost int64
	// failed are the attempts on each group's servers (canary, stable) that got no answer, which the
	// load balancer counted in the window (Tally.Failed), as far as the error tests have counted them.
	failed [2]int64
	// pass is each check's evidence, over this window, that the canary is within its limit (the
	// early pass); drift the sum of each alternative's log factors in this window, per canary request
	// (for the estimate of how many more requests would settle a test).
	pass  map[string]verdict.Evidence
	drift map[string]drift
}

type stepGroup struct {
	requests, errors, errors5xx, timed int64
	hist                               histogram
}

type drift struct {
	sum []float64
	n   int64
}

func (d drift) add(logf []float64, n int64) drift {
	out := drift{sum: slices.Clone(d.sum), n: d.n + n}
	if out.sum == nil {
		out.sum = make([]float64, len(logf))
	}
	for i := range logf {
		if i < len(out.sum) {
			out.sum[i] += logf[i]
		}
	}
	return out
}

func (d drift) perRequest() []float64 {
	out := make([]float64, len(d.sum))
	for i, s := range d.sum {
		if d.n > 0 {
			out[i] = s / float64(d.n)
		}
	}
	return out
}

func (s *stepState) clone() *stepState {
	c := *s
	c.pass = cloneEvidence(s.pass)
	c.drift = make(map[string]drift, len(s.drift))
	for k, v := range s.drift {
		c.drift[k] = v
	}
	return &c
}

func cloneFloats(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneEvidence(m map[string]verdict.Evidence) map[string]verdict.Evidence {
	out := make(map[string]verdict.Evidence, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// metrics are the window's figures as verdict.Metrics: counts, error rate and percentiles (from the
// sampled latencies, exact while every request is in the sample).
func (g stepGroup) metrics() verdict.Metrics {
	m := verdict.Metrics{Requests: g.requests, Errors: g.errors, Errors5xx: g.errors5xx, Timed: g.timed}
	if m.Requests > 0 {
		m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
	}
	if g.hist.total > 0 {
		for _, p := range []struct {
			d *time.Duration
			q float64
		}{{&m.P50, 0.5}, {&m.P90, 0.9}, {&m.P95, 0.95}, {&m.P99, 0.99}} {
			*p.d = millis(g.hist.quantile(p.q))
		}
	}
	return m
}

func millis(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

// seqOutcome is what a check's sequential tests say after a look.
type seqOutcome struct {
	test string
	ev   verdict.Evidence
	// group is the check's group, groupLog the log of its checks' weighted mean e-value now and
	// groupMax the largest it has been; alpha is the group's share of the budget.
	group              string
	groupLog, groupMax float64
	alpha              float64
	// more is about how many more canary requests of the window's kind would make the test fail (-1:
	// more of the same would not).
	more int64
	// passShown: this window's evidence shows the canary within the check's limit beyond doubt.
	passShown bool
}

// crossed says whether the check fails on its test: its group's evidence reached 1/α, and the check's
// own e-value did too at some look. The group's mean keeps the release's error budget; the check's own
// threshold keeps one check's evidence (latency_shift's, say, whose canary is slower but within its
// practical margin) from failing another check of the group whose own test found nothing. Requiring both
// only makes the test more conservative, so the budget still holds.
func (o seqOutcome) crossed() bool {
	thr := -math.Log(o.alpha)
	return o.groupMax >= thr && o.ev.Max >= thr
}

// foldLook adds a look to the sequence prev (nil before the release's first look): a new window when
// the look's window is not the one the sequence was adding to, then the look's factor for every test.
// It changes nothing it is given.
func foldLook(prev *verdict.Sequence, look Look, th Thresholds, tests []seqTest) (verdict.Sequence, *stepState, map[string]seqOutcome) {
	var next verdict.Sequence
	if prev != nil {
		next = *prev
	}
	next.Evidence = cloneEvidence(next.Evidence)
	cuts := LookCuts(prev, th)
	w := look.Window
	var step *stepState
	if s, ok := next.Step.(*stepState); ok && prev != nil && prev.From.Equal(w.From) {
		step = s.clone()
	} else {
		next.Windows++
		step = &stepState{from: w.From, pass: map[string]verdict.Evidence{}, drift: map[string]drift{}}
		if ok {
			step.stableAll = s.stableAll
		}
		for name, ev := range next.Evidence {
			next.Evidence[name] = restart(ev, next.Windows)
		}
	}
	groups := map[string]int{}
	for _, t := range tests {
		groups[t.group]++
	}
	alpha := th.alpha() / float64(len(groups))

	c, s := look.Canary, look.Stable
	// Points that landed late count with this look: as requests and errors (their latencies, with no
	// sample or count against the cuts, only in the window's figures).
	var lateTimed [2]int64
	if r := look.Recount; r != nil {
		for i, g := range []struct {
			iv   *Interval
			have stepGroup
			all  Interval
		}{{&c, step.canary, r.Canary}, {&s, step.stable, r.Stable}} {
			late := func(all, have, read int64) int64 { return max(all-have-read, 0) }
			g.iv.Requests += late(g.all.Requests, g.have.requests, g.iv.Requests)
			g.iv.Errors += late(g.all.Errors, g.have.errors, g.iv.Errors)
			g.iv.Errors5xx += late(g.all.Errors5xx, g.have.errors5xx, g.iv.Errors5xx)
			lateTimed[i] = late(g.all.Timed, g.have.timed, g.iv.Timed)
		}
	}
	// Each sample is sorted once, for the rank test and the histograms.
	c.Latencies, s.Latencies = sortedCopy(c.Latencies), sortedCopy(s.Latencies)
	// What the load balancer counted and the store lacks counts against the groups in the tests, as the
	// window's judgement counts it in its figures (see countLostErrors, countFailedAttempts), once: canary
	// 5xx answers lost on the way to the store, and each group's attempts that got no answer (HAProxy
	// retried them elsewhere: no log line names the server that failed them).
	tc, ts := c, s
	if w.Canary != nil {
		if lost := w.Canary.Errors5xx - (step.canary.errors5xx + c.Errors5xx); lost > step.lost {
			tc.Errors += lost - step.lost
			tc.Requests = max(tc.Requests, tc.Errors)
			step.lost = lost
		}
	}
	for i, g := range []struct {
		iv *Interval
		t  *verdict.Tally
	}{{&tc, w.Canary}, {&ts, w.Stable}} {
		if g.t != nil && g.t.Failed > step.failed[i] {
			d := g.t.Failed - step.failed[i]
			g.iv.Errors, g.iv.Requests = g.iv.Errors+d, g.iv.Requests+d
			step.failed[i] = g.t.Failed
		}
	}
	var rk *ranks
	out := make(map[string]seqOutcome, len(tests))
	for _, t := range tests {
		fail, pass, n, k, ok := t.factors(tc, ts, cuts, th, &rk)
		ev, have := next.Evidence[t.name]
		if !have {
			ev = newEvidence(len(t.tilts), windowWeight(next.Windows))
		}
		pev, have := step.pass[t.name]
		if !have {
			// An early pass has a budget of its own in each window (a false pass needs every check to
			// pass, so the checks need not share it), staked whole at the window's start.
			pev = newEvidence(len(t.tilts), 0)
		}
		if ok {
			ev = fold(ev, fail)
			ev.N, ev.K = ev.N+n, ev.K+k
			pev = fold(pev, pass)
			pev.N, pev.K = pev.N+n, pev.K+k
			step.drift[t.name] = step.drift[t.name].add(fail, n)
		}
		next.Evidence[t.name] = ev
		step.pass[t.name] = pev
		// Alone, the check makes its group's mean reach 1/α at 1/(α·share).
		thr := -math.Log(alpha * t.share)
		out[t.name] = seqOutcome{test: t.test, ev: ev, group: t.group, alpha: alpha,
			more: moreToCross(ev, step.drift[t.name].perRequest(), thr), passShown: pev.Max >= -math.Log(th.alpha())}
	}
	next.Groups = cloneFloats(next.Groups)
	for g := range groups {
		var logs []float64
		for _, t := range tests {
			if t.group == g {
				logs = append(logs, math.Log(t.share)+logE(next.Evidence[t.name]))
			}
		}
		mean := logSumExp(logs)
		top, seen := next.Groups[g]
		if !seen || mean > top {
			top = mean
		}
		next.Groups[g] = top
		for _, t := range tests {
			if o := out[t.name]; o.group == g {
				o.groupLog, o.groupMax = mean, top
				out[t.name] = o
			}
		}
	}

	weight := func(iv Interval) float64 {
		if len(iv.Latencies) == 0 {
			return 0
		}
		return float64(max(iv.Timed, int64(len(iv.Latencies)))) / float64(len(iv.Latencies))
	}
	for i, g := range []struct {
		sg *stepGroup
		iv Interval
	}{{&step.canary, c}, {&step.stable, s}} {
		g.sg.requests += g.iv.Requests
		g.sg.errors += g.iv.Errors
		g.sg.errors5xx += g.iv.Errors5xx
		g.sg.timed += g.iv.Timed + lateTimed[i]
		g.sg.hist = g.sg.hist.add(g.iv.Latencies, weight(g.iv))
	}
	step.stableAll = step.stableAll.add(s.Latencies, weight(s))
	next.Cuts = updateCuts(prev, step.stableAll)
	next.From, next.Through = w.From, w.To
	next.Looks++
	next.Step = step
	return next, step, out
}

// factors are a test's log factors for one look, for failing (each tilt) and for an early pass, with
// how many canary requests the look showed it and how many counted against the canary. ok is false
// when the look holds nothing for the test (its factors would all be 1).
func (t seqTest) factors(c, s Interval, cuts Cuts, th Thresholds, rk **ranks) (fail, pass []float64, n, k int64, ok bool) {
	fail, pass = make([]float64, len(t.tilts)), make([]float64, len(t.tilts))
	switch {
	case t.name == verdict.CheckErrorRate:
		if c.Requests == 0 {
			return fail, pass, 0, 0, false
		}
		p0 := th.MaxErrorRate / 100
		for i, tl := range t.tilts {
			fail[i] = logBinomialBet(c.Errors, c.Requests, p0, tl)
			pass[i] = logBinomialBet(c.Errors, c.Requests, p0, -tl)
		}
		return fail, pass, c.Requests, c.Errors, true
	case t.name == verdict.CheckErrorRateIncrease:
		if c.Requests == 0 || s.Requests == 0 {
			return fail, pass, 0, 0, false
		}
		d := th.MaxErrorRateIncrease / 100
		for i, tl := range t.tilts {
			fail[i] = logIncreaseBet(c.Errors, c.Requests, s.Errors, s.Requests, d, tl)
			pass[i] = logNoIncreaseBet(c.Errors, c.Requests, s.Errors, s.Requests, d, tl)
		}
		return fail, pass, c.Requests, c.Errors, true
	case !t.relative:
		// A latency limit: the share of canary requests slower than it, against 1 − q.
		above, counted := c.above(cuts.Canary, "limit_"+string(t.metric))
		if !counted || c.Timed == 0 {
			return fail, pass, 0, 0, false
		}
		for i, tl := range t.tilts {
			fail[i] = logBinomialBet(above, c.Timed, 1-t.q, tl)
			pass[i] = logBinomialBet(above, c.Timed, 1-t.q, -tl)
		}
		return fail, pass, c.Timed, above, true
	}
	// Against stable: the canary's requests slower than ratio × stable's percentile + slack, against
	// stable's requests slower than the percentile (for latency_shift, the early pass only).
	kc, okc := c.above(cuts.Canary, "margin_"+string(t.metric))
	ks, oks := s.above(cuts.Stable, string(t.metric))
	exceed := okc && oks && c.Timed > 0 && s.Timed > 0
	if t.name == verdict.CheckLatencyShift {
		if len(c.Latencies) == 0 || len(s.Latencies) == 0 {
			return fail, pass, 0, 0, false
		}
		if *rk == nil {
			r := rankScores(c.Latencies, s.Latencies)
			*rk = &r
		}
		for i, tl := range t.tilts {
			fail[i] = logRankBet(**rk, tl)
			if exceed {
				pass[i] = logConditionalBet(kc, c.Timed, ks, s.Timed, -tilts[min(i, len(tilts)-1)])
			}
		}
		return fail, pass, c.Timed, 0, true
	}
	if !exceed {
		return fail, pass, 0, 0, false
	}
	for i, tl := range t.tilts {
		fail[i] = logIncreaseBet(kc, c.Timed, ks, s.Timed, 0, tl)
		pass[i] = logNoIncreaseBet(kc, c.Timed, ks, s.Timed, 0, tl)
	}
	return fail, pass, c.Timed, kc, true
}

// updateCuts estimates stable's percentiles for the next look's cuts from the stable latencies sampled
// so far, once there are 20, else keeps the cuts of before (those a release taken over had). Any cut
// chosen before a look keeps the tests valid; a good one makes them find a slow canary sooner.
func updateCuts(prev *verdict.Sequence, stable histogram) map[verdict.Metric]float64 {
	out := map[verdict.Metric]float64{}
	if prev != nil {
		for k, v := range prev.Cuts {
			out[k] = v
		}
	}
	for _, t := range tailMetrics {
		if stable.total >= 20 {
			out[t.metric] = stable.quantile(t.q)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
