package analysis

import (
	"fmt"
	"math"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// JudgeLook judges one look of a release's sequential analysis. It folds the look's interval into the
// release's Sequence (look.Window.Sequence; nil at the release's first look) and judges the window so
// far, like Judge, with one difference: a check beyond its limit fails when its sequential test says so
// beyond doubt over the whole release, not when a fixed-sample test of this window would. The tests
// share the release's budget α = 1 − Confidence (half for the error checks, half for the latency
// checks; see seqTests), and looking costs none of it: a canary within every limit is aborted by any
// of them, at any look of any step, with probability at most α. A check whose
// test crossed its threshold fails even where this window's figures are within its limit (the
// evidence is the release's); latency_shift, whose test asks whether the canary is slower at all, fails
// only while the window's p50 is also beyond its practical margin.
//
// The Verdict carries the new Sequence for the next look. Its figures (counts, error rates,
// percentiles) are the window's, added up look by look; percentiles come from the looks' latency
// samples and are exact while every request is sampled. On an early look it sets PassEarly when every
// check is within its limit in this window beyond doubt (each at level α: a false early pass needs all
// of them wrong), which lets a step end before its bake does.
//
// JudgeLook is pure: the Sequence it was given is not changed.
func JudgeLook(look Look, th Thresholds) verdict.Verdict {
	tests := seqTests(th)
	next, step, seq := foldLook(look.Window.Sequence, look, th, tests)
	in := Input{Canary: step.canary.metrics(), Stable: step.stable.metrics(), Custom: look.Custom, Window: look.Window}
	v := judgeWith(in, th, seq)
	if look.Window.Early && v.Result == verdict.ResultPass {
		v.PassEarly = true
		relative := !(look.Window.Share >= 100)
		for _, t := range tests {
			if (relative || !t.relative) && !seq[t.name].passShown {
				v.PassEarly = false
			}
		}
		if v.PassEarly {
			v.Reason += "; every check is within its limit beyond doubt: the step may end early"
		}
	}
	v.Sequence = &next
	return v
}

// sampled is how many latencies of m the latency tests look at: its sample for a window judged on its
// own, every timed request in a sequential analysis (whose tests count them in the store).
func (j *judge) sampled(m verdict.Metrics) int64 {
	if j.seq != nil {
		return m.Timed
	}
	return int64(len(m.Latencies))
}

// failMin is how many canary requests a test needs before it may fail the canary.
func (j *judge) failMin() int64 {
	if j.th.MinRequestsToFail > 0 {
		return j.th.MinRequestsToFail
	}
	return DefaultMinRequestsToFail
}

// seqEnough says whether the release has had at least n canary requests, so that an early look of a
// young window may fail the canary on the release's evidence.
func (j *judge) seqEnough(n int64) bool {
	return j.seq != nil && j.seq[verdict.CheckErrorRate].ev.N >= n
}

// evidence puts a sequential test's evidence on c: the test, its e-value, its group's always-valid
// p-value and the group's share of the release's budget.
func (j *judge) evidence(c *verdict.Check, o seqOutcome) {
	// e^700 still fits a float64, and JSON.
	c.Test, c.EValue, c.PValue, c.Alpha = o.test, math.Exp(min(o.ev.Max, 700)), min(math.Exp(-o.groupMax), 1), o.alpha
	var data string
	switch o.test {
	case testSeqBinomial:
		if c.Name == verdict.CheckErrorRate {
			data = fmt.Sprintf("%d errors in %d canary requests", o.ev.K, o.ev.N)
		} else {
			data = fmt.Sprintf("%d of %d canary requests slower than %sms", o.ev.K, o.ev.N, fmtNum(c.Limit))
		}
	case testSeqIncrease:
		data = fmt.Sprintf("%d errors in %d canary requests, against stable's in the same looks", o.ev.K, o.ev.N)
	case testSeqRank:
		data = fmt.Sprintf("ranks of %d canary latencies among stable's, look by look", o.ev.N)
	case testSeqExceeding:
		data = fmt.Sprintf("%d of %d canary requests slower than %s × stable's %s + %sms, against stable's share beyond its %s",
			o.ev.K, o.ev.N, fmtNum(j.th.MaxLatencyRatio), c.Metric, fmtNum(msOf(j.th.LatencySlack)), c.Metric)
	}
	c.Statistic = fmt.Sprintf("%s since the release began; e = %s; the %s checks' mean e = %s, they fail at %s (α %s, their share of the release's %s)",
		data, fmtE(c.EValue), o.group, fmtE(math.Exp(min(o.groupLog, 700))), fmtE(1/o.alpha), fmtP(o.alpha), fmtP(j.th.alpha()))
}

// proof says what a sequential test found, for a Detail: "sequential binomial e = 560, the error
// checks' mean 330 ≥ 100 (always-valid p = 0.003 < α 0.01)".
func proof(c *verdict.Check, o seqOutcome) string {
	rel := "<"
	if o.crossed() {
		rel = "≥"
	}
	cmp := "≥"
	if c.PValue < o.alpha {
		cmp = "<"
	}
	return fmt.Sprintf("%s e = %s, the %s checks' mean %s %s %s (always-valid p = %s %s α %s)",
		c.Test, fmtE(c.EValue), o.group, fmtE(math.Exp(min(o.groupMax, 700))), rel, fmtE(1/o.alpha), fmtP(c.PValue), cmp, fmtP(o.alpha))
}

// seqDecide settles a check whose window is beyond its limit on its sequential test: a fail once the
// test crossed its threshold, else inconclusive with how many more canary requests would settle it.
func (j *judge) seqDecide(c *verdict.Check, what string) {
	o, ok := j.seq[c.Name]
	if !ok {
		c.Result, c.More, c.Detail = verdict.ResultInconclusive, -1, what+", but no sequential test judges it"
		return
	}
	j.evidence(c, o)
	if n := j.failMin(); o.ev.N < n {
		c.Result, c.More = verdict.ResultInconclusive, n-o.ev.N
		c.Detail = fmt.Sprintf("%s, but %d canary requests are too few to fail it (%s e = %s; at least %d needed)", what, o.ev.N, c.Test, fmtE(c.EValue), n)
		return
	}
	if o.crossed() {
		c.Result = verdict.ResultFail
		c.Detail = fmt.Sprintf("%s; %s", what, proof(c, o))
		return
	}
	c.Result, c.More = verdict.ResultInconclusive, o.more
	c.Detail = fmt.Sprintf("%s, but not yet beyond doubt (%s)", what, proof(c, o))
}

// seqShift settles latency_shift on its sequential rank test: a fail needs the test beyond doubt and
// the window's p50 beyond the practical margin.
func (j *judge) seqShift(c *verdict.Check, limit float64, formula string) {
	if c.Canary > limit {
		j.seqDecide(c, fmt.Sprintf("canary p50 %sms > %sms (%s)", fmtNum(c.Canary), fmtNum(limit), formula))
		return
	}
	if o, ok := j.seq[c.Name]; ok {
		j.evidence(c, o)
	}
	c.Result = verdict.ResultPass
	c.Detail = fmt.Sprintf("canary p50 %sms ≤ %sms (%s); any shift is within the practical margin (%s e = %s)", fmtNum(c.Canary), fmtNum(limit), formula, c.Test, fmtE(c.EValue))
	if j.latNotCompared != "" {
		c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(true)
		c.Detail += ", but " + j.latNotCompared
	}
}

// sequential completes a check of a sequential analysis before it is listed: it carries its test's
// evidence, and a check whose test crossed its threshold over the release fails, whatever this window's
// figures (except latency_shift, whose margin is the window's p50).
func (j *judge) sequential(c *verdict.Check) {
	o, ok := j.seq[c.Name]
	if !ok || c.Skipped {
		return
	}
	if c.Test == "" {
		j.evidence(c, o)
	}
	if c.Name == verdict.CheckLatencyShift || c.Result == verdict.ResultFail || !o.crossed() || o.ev.N < j.failMin() {
		return
	}
	c.Result, c.More = verdict.ResultFail, 0
	c.Detail = fmt.Sprintf("%s, but over the release it is beyond its limit, beyond doubt: %s", c.Detail, proof(c, o))
}

// fmtE renders an e-value with two significant digits: 0.41, 37, 3.1e+12.
func fmtE(e float64) string {
	if e >= 1e6 {
		return fmt.Sprintf("%.2g", e)
	}
	if e >= 10 {
		return fmt.Sprintf("%.0f", e)
	}
	return fmtP(e)
}
