package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Defaults of Thresholds.
const (
	// DefaultMinRequests is the sample size each group needs before a canary can pass; it follows
	// Kayenta's guidance of at least 50 data points per metric.
	DefaultMinRequests = 50
	// DefaultConfidence is the confidence a statistical test needs to fail a canary (Kayenta's 0.98).
	DefaultConfidence = 0.98
	// DefaultMinRequestsToFail is how many requests (or sampled latencies) of the canary a statistical
	// test needs before it may fail the canary, however small its p-value: one slow request of a cold
	// start is no regression.
	DefaultMinRequestsToFail = 10
	// DefaultMaxTelemetryGap is how far, in percent, InfluxDB's request count of a group may be from
	// HAProxy's own before the step cannot be judged.
	DefaultMaxTelemetryGap = 10
	// DefaultMaxShareGap is how far, in percent of the step's share, the share of requests HAProxy
	// served the canary may be from the step's (beyond what the sample size explains) before the step
	// cannot pass.
	DefaultMaxShareGap = 25
)

// Thresholds are what a canary must meet at every step.
type Thresholds struct {
	// MinRequests is how many requests each group needs in the window before the canary can pass;
	// fewer makes the verdict inconclusive. A clearly bad canary fails with fewer: a failure needs
	// statistical evidence, not a sample size. 0 or less means DefaultMinRequests.
	MinRequests int64
	// Confidence is how sure a statistical test must be that the canary is worse than allowed before
	// the canary fails, in (0, 1); α = 1 − Confidence. 0 means DefaultConfidence.
	Confidence float64
	// MaxErrorRate is the highest acceptable canary error rate, in percent (1.0 = 1%).
	MaxErrorRate float64
	// MaxP50, MaxP90, MaxP95 and MaxP99 are absolute limits on canary latency; 0 turns one off.
	MaxP50, MaxP90, MaxP95, MaxP99 time.Duration
	// MaxErrorRateIncrease is how many percentage points the canary's error rate may exceed stable's.
	MaxErrorRateIncrease float64
	// MaxLatencyRatio bounds canary latency relative to stable's in the same window: the canary's p50,
	// p95 and p99 may each be at most MaxLatencyRatio × stable's + LatencySlack. The p50 bound is the
	// practical size a Mann–Whitney shift must have to fail the canary; the p95 and p99 bounds catch a
	// fatter tail at the same median. 0 turns the relative latency checks off.
	MaxLatencyRatio float64
	// LatencySlack is the practical-size margin of the relative latency checks, so that a shift of a
	// few milliseconds on a fast service does not fail a release.
	LatencySlack time.Duration
	// MinRequestsToFail is how many canary requests (or sampled latencies) a statistical test needs
	// before it may fail the canary, at any look. 0 means DefaultMinRequestsToFail.
	MinRequestsToFail int64
	// MaxTelemetryGap is how far, in percent, InfluxDB's count of a group's requests (and 5xx answers)
	// may be from HAProxy's own counters before the step is inconclusive. 0 means DefaultMaxTelemetryGap;
	// negative turns the comparison off.
	MaxTelemetryGap float64
	// MaxShareGap is how far, in percent of the step's share, the canary's share of the requests
	// HAProxy served may be from the step's, when a binomial test says the sample does not explain the
	// difference, before the step is inconclusive: the split users got is not the one being judged.
	// 0 means DefaultMaxShareGap; negative turns the check off (sticky cohorts with a few heavy
	// visitors can legitimately be far off).
	MaxShareGap float64
	// Custom are the user's own metrics.
	Custom []CustomMetric
	// FixedSample judges each window on its own with fixed-sample tests (each early look of a bake at
	// α divided by the bake's looks, the final look at α), as fridaymorning did before its sequential
	// tests: every look and every step then spends budget of its own. false (the default) is the
	// sequential analysis of Analyzer.Analyze and JudgeLook.
	FixedSample bool
}

// alpha is the significance level of a final judgement.
func (th Thresholds) alpha() float64 {
	c := th.Confidence
	if c <= 0 || c >= 1 || math.IsNaN(c) {
		c = DefaultConfidence
	}
	// Rounded, so that 1 − 0.98 reads 0.02 and not 0.020000000000000018.
	return math.Round((1-c)*1e9) / 1e9
}

// Input is everything Judge judges.
type Input struct {
	Canary, Stable verdict.Metrics
	// Custom holds the values of the custom metrics, in the order of Thresholds.Custom.
	Custom []CustomValue
	Window verdict.Window
}

// The tests named in Check.Test.
const (
	testBinomial      = "exact binomial"
	testTwoProportion = "two-proportion z (Agresti-Caffo)"
	testMannWhitney   = "Mann-Whitney U"
)

// judge carries one judgement's inputs.
type judge struct {
	in           Input
	th           Thresholds
	alpha        float64
	minReq       int64
	relative     bool
	canaryEnough bool
	stableEnough bool
	notJudged    string
	notCompared  string
	// latNotJudged and latNotCompared say why the latency checks cannot pass ("" when they can): the
	// requests that have a latency (a response) are what a percentile is made of.
	latNotJudged   string
	latNotCompared string
	// lostErrors are canary 5xx answers HAProxy counted and the metrics store lacks; they are counted.
	lostErrors int64
	// failedAttempts are attempts on the canary's servers that got no answer (HAProxy retried them on
	// another server, or gave up): failures no per-request log line names the canary for.
	failedAttempts int64
	checks         []verdict.Check
	canary, stable verdict.Metrics
	// seq holds, in a sequential analysis, each check's sequential test over the release; nil when the
	// window is judged on its own.
	seq map[string]seqOutcome
}

// Judge judges the canary against stable. It is pure: no I/O, no logging, the same answer for the
// same input.
//
// Every check is listed, in a fixed order: the sample size of each group, the agreement of InfluxDB's
// counts with HAProxy's, the canary's error rate and latency percentiles against absolute limits,
// then its error rate and latency against stable's in the same window, then the custom metrics.
//
// A check whose numbers are within its limit passes, provided the groups it looks at have at least
// MinRequests requests (else it is inconclusive: a handful of requests proves nothing). A check whose
// numbers are beyond its limit fails only if a one-sided test at the Thresholds' confidence says the
// canary is worse than the limit allows; when the evidence is not yet strong enough it is
// inconclusive, and says how many more canary requests of the same kind would settle it. At a share
// of 100 or more stable carries no traffic and the checks relative to stable are skipped.
//
// The verdict fails if any check fails, else it is inconclusive if any check is, else it passes; its
// Reason is the first failing (or inconclusive) check's Detail. A NaN anywhere never makes a check
// pass. An early look (Window.Early) tests at α/Looks and cannot fail the canary before it has
// MinRequestsToFail requests.
func Judge(in Input, th Thresholds) verdict.Verdict {
	return judgeWith(in, th, nil)
}

// judgeWith judges in, with the sequential tests seq when not nil (see JudgeLook).
func judgeWith(in Input, th Thresholds, seq map[string]seqOutcome) verdict.Verdict {
	j := &judge{in: in, th: th, alpha: th.alpha(), canary: in.Canary, stable: in.Stable, seq: seq}
	j.minReq = th.MinRequests
	if j.minReq <= 0 {
		j.minReq = DefaultMinRequests
	}
	if in.Window.Early && seq == nil {
		j.alpha /= float64(max(in.Window.Looks, 1))
	}
	// NaN compares false: an unknown share is treated as one where stable has traffic to compare with.
	j.relative = !(in.Window.Share >= 100)
	j.canaryEnough = in.Canary.Requests >= j.minReq
	j.stableEnough = in.Stable.Requests >= j.minReq
	j.notJudged = fmt.Sprintf("canary has %d requests and needs at least %d to pass", in.Canary.Requests, j.minReq)
	switch {
	case !j.canaryEnough && !j.stableEnough:
		j.notCompared = fmt.Sprintf("canary has %d and stable %d requests and each needs at least %d to pass", in.Canary.Requests, in.Stable.Requests, j.minReq)
	case !j.canaryEnough:
		j.notCompared = j.notJudged
	case !j.stableEnough:
		j.notCompared = fmt.Sprintf("stable has %d requests to compare with and needs at least %d", in.Stable.Requests, j.minReq)
	}

	j.countLostErrors()
	j.countFailedAttempts()
	j.latencyCoverage()

	j.sampleChecks()
	j.telemetry()
	j.trafficShare()
	j.errorRate()
	for _, l := range j.percentiles() {
		j.latencyLimit(l)
	}
	j.errorRateIncrease()
	j.latencyShift()
	for _, l := range j.percentiles()[2:] {
		j.latencyTail(l)
	}
	for i, cm := range th.Custom {
		var cv CustomValue
		if i < len(in.Custom) {
			cv = in.Custom[i]
		}
		j.custom(cm, cv)
	}
	return j.verdict()
}

type pct struct {
	name           verdict.Metric
	q              float64
	canary, stable time.Duration
	limit          time.Duration
}

func (j *judge) percentiles() []pct {
	c, s, th := j.canary, j.stable, j.th
	return []pct{
		{verdict.MetricP50, 0.50, c.P50, s.P50, th.MaxP50},
		{verdict.MetricP90, 0.90, c.P90, s.P90, th.MaxP90},
		{verdict.MetricP95, 0.95, c.P95, s.P95, th.MaxP95},
		{verdict.MetricP99, 0.99, c.P99, s.P99, th.MaxP99},
	}
}

func (j *judge) add(c verdict.Check) {
	if j.seq != nil {
		j.sequential(&c)
	}
	j.checks = append(j.checks, c)
}

// countLostErrors adds to the canary's errors the 5xx answers HAProxy's own counters saw and the metrics
// store lacks: lost telemetry can only make a canary look worse, never better.
func (j *judge) countLostErrors() {
	w := j.in.Window
	if w.Canary == nil || w.Canary.Errors5xx <= j.canary.Errors5xx {
		return
	}
	j.lostErrors = w.Canary.Errors5xx - j.canary.Errors5xx
	j.canary.Errors += j.lostErrors
	j.canary.Errors5xx += j.lostErrors
	j.canary.Requests = max(j.canary.Requests, j.canary.Errors)
	j.canary.ErrorRate = 100 * float64(j.canary.Errors) / float64(j.canary.Requests)
}

// countFailedAttempts adds to each group's requests and errors the attempts on its servers that got no
// answer, from HAProxy's own counters (Tally.Failed): with retries and redispatch on, a canary that
// resets a share of its connections has them answered by stable, and the log line and HAProxy's
// response counters then name stable only. Each such attempt is a request the group failed.
func (j *judge) countFailedAttempts() {
	add := func(m *verdict.Metrics, t *verdict.Tally) int64 {
		if t == nil || t.Failed <= 0 {
			return 0
		}
		m.Errors += t.Failed
		m.Requests += t.Failed
		m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
		return t.Failed
	}
	j.failedAttempts = add(&j.canary, j.in.Window.Canary)
	add(&j.stable, j.in.Window.Stable)
}

// latencyCoverage decides whether the groups have enough requests with a latency for the latency checks
// to pass: percentiles of 3 timed requests out of 1,000 say nothing of the other 997.
func (j *judge) latencyCoverage() {
	c, s := j.canary, j.stable
	j.latNotJudged = j.notJudged
	if j.canaryEnough {
		j.latNotJudged = ""
		if c.Timed < j.minReq {
			j.latNotJudged = fmt.Sprintf("only %d of the canary's %d requests have a latency (got a response), and percentiles need at least %d", c.Timed, c.Requests, j.minReq)
		}
	}
	j.latNotCompared = j.notCompared
	if j.latNotCompared == "" {
		switch {
		case c.Timed < j.minReq:
			j.latNotCompared = j.latNotJudged
		case s.Timed < j.minReq:
			j.latNotCompared = fmt.Sprintf("only %d of stable's %d requests have a latency (got a response), and a comparison needs at least %d", s.Timed, s.Requests, j.minReq)
		}
	}
}

// latencyMore is how many more canary requests the latency checks need: enough requests in all, and
// enough of them with a latency at the rate seen so far (-1 when none has one: more of the same would
// not help).
func (j *judge) latencyMore(relative bool) int64 {
	more := max(j.minReq-j.canary.Requests, 0)
	if relative {
		more = j.moreToCompare()
	}
	for _, g := range []struct {
		m      verdict.Metrics
		stable bool
	}{{j.canary, false}, {j.stable, true}} {
		if g.stable && !relative || g.m.Timed >= j.minReq {
			continue
		}
		if g.m.Timed == 0 {
			return -1
		}
		need := int64(math.Ceil(float64(j.minReq-g.m.Timed) * float64(g.m.Requests) / float64(g.m.Timed)))
		if g.stable {
			need = j.canaryFor(need)
		}
		more = max(more, need)
	}
	return more
}

func (j *judge) sampleChecks() {
	group := func(name, who string, m verdict.Metrics) verdict.Check {
		c := verdict.Check{Name: name, Metric: verdict.MetricRequests, Canary: float64(j.canary.Requests), Stable: float64(j.stable.Requests), Limit: float64(j.minReq), Unit: "requests",
			CanaryN: j.canary.Requests, StableN: j.stable.Requests}
		if m.Requests < j.minReq {
			c.Result, c.More = verdict.ResultInconclusive, j.minReq-m.Requests
			c.Detail = fmt.Sprintf("%s has %d requests (%d errors), needs at least %d to pass", who, m.Requests, m.Errors, j.minReq)
			if who == "stable" {
				// More canary requests come with more stable ones, in proportion to the split.
				c.More = j.canaryFor(c.More)
			}
		} else {
			c.Result = verdict.ResultPass
			c.Detail = fmt.Sprintf("%s has %d requests (at least %d)", who, m.Requests, j.minReq)
		}
		return c
	}
	j.add(group(verdict.CheckCanaryRequests, "canary", j.canary))
	if j.relative {
		j.add(group(verdict.CheckStableRequests, "stable", j.stable))
	} else {
		j.add(skipped(verdict.Check{Name: verdict.CheckStableRequests, Metric: verdict.MetricRequests, Canary: float64(j.canary.Requests), Stable: float64(j.stable.Requests), Limit: float64(j.minReq), Unit: "requests"}))
	}
}

// canaryFor converts a number of stable requests into the canary requests that come with them at the
// window's split; it is what the estimate of "more requests needed" is counted in.
func (j *judge) canaryFor(stable int64) int64 {
	if j.stable.Requests > 0 && j.canary.Requests > 0 {
		return int64(math.Ceil(float64(stable) * float64(j.canary.Requests) / float64(j.stable.Requests)))
	}
	if s := j.in.Window.Share; s > 0 && s < 100 {
		return int64(math.Ceil(float64(stable) * s / (100 - s)))
	}
	return stable
}

// telemetry compares InfluxDB's counts with HAProxy's: telemetry that lags or loses points makes the
// numbers judged a sample of unknown bias, so a large gap is inconclusive.
func (j *judge) telemetry() {
	w := j.in.Window
	gap := j.th.MaxTelemetryGap
	if gap == 0 {
		gap = DefaultMaxTelemetryGap
	}
	if w.Early || w.Canary == nil || w.Stable == nil || gap < 0 {
		return
	}
	c := verdict.Check{Name: verdict.CheckTelemetry, Metric: verdict.MetricRequests, Canary: float64(j.in.Canary.Requests), Stable: float64(w.Canary.Requests), Limit: gap, Unit: "requests",
		CanaryN: j.in.Canary.Requests, StableN: j.in.Stable.Requests}
	type cmp struct {
		what         string
		influx, hapx int64
	}
	cmps := []cmp{
		{"canary requests", j.in.Canary.Requests, w.Canary.Requests},
		{"stable requests", j.in.Stable.Requests, w.Stable.Requests},
		{"canary 5xx answers", j.in.Canary.Errors5xx, w.Canary.Errors5xx},
	}
	var off []string
	for _, x := range cmps {
		// A few requests in flight at the window's edges are counted on one side only.
		diff := math.Abs(float64(x.influx - x.hapx))
		if diff > 5 && diff > gap/100*float64(max(x.hapx, x.influx)) {
			off = append(off, fmt.Sprintf("InfluxDB has %d %s, HAProxy counted %d", x.influx, x.what, x.hapx))
		}
	}
	if len(off) > 0 {
		c.Result = verdict.ResultInconclusive
		c.Detail = fmt.Sprintf("telemetry disagrees with HAProxy by more than %s%%: %s; points are lost or late, so the step cannot be judged",
			fmtNum(gap), strings.Join(off, "; "))
	} else {
		c.Result = verdict.ResultPass
		c.Detail = fmt.Sprintf("InfluxDB's counts agree with HAProxy's within %s%% (canary %d vs %d requests, stable %d vs %d)",
			fmtNum(gap), j.in.Canary.Requests, w.Canary.Requests, j.in.Stable.Requests, w.Stable.Requests)
	}
	j.add(c)
}

// trafficShare holds the share of requests HAProxy's counters say it served the canary to the step's:
// weights changed outside the release (an operator's `set weight`, a restart with the configured
// weights) give users another split than the one judged, and a step baked at 6% is no pass for 10%.
// A gap the sample size explains (a two-sided exact binomial test at α) or within MaxShareGap percent
// of the step's share passes.
func (j *judge) trafficShare() {
	w := j.in.Window
	gap := j.th.MaxShareGap
	if gap == 0 {
		gap = DefaultMaxShareGap
	}
	if w.Early || w.Canary == nil || w.Stable == nil || gap < 0 || !(w.Share > 0 && w.Share < 100) {
		return
	}
	k, n := w.Canary.Requests, w.Canary.Requests+w.Stable.Requests
	if n <= 0 {
		return
	}
	p0 := w.Share / 100
	observed := 100 * float64(k) / float64(n)
	c := verdict.Check{Name: verdict.CheckTrafficShare, Metric: verdict.MetricRequests, Canary: observed, Limit: w.Share, Unit: "%", CanaryN: k, StableN: w.Stable.Requests}
	// Two-sided: twice the smaller tail, P(X ≥ k) or P(X ≤ k).
	p := min(1, 2*min(binomialUpper(k, n, p0), 1-binomialUpper(k+1, n, p0)))
	c.Test, c.PValue, c.Alpha = testBinomial, p, j.alpha
	c.Statistic = fmt.Sprintf("%d of %d requests to the canary at a share of %s%%", k, n, fmtNum(w.Share))
	what := fmt.Sprintf("HAProxy served the canary %s%% of requests (%d of %d), the step asks %s%%", fmtNum(observed), k, n, fmtNum(w.Share))
	if math.Abs(observed-w.Share) > gap/100*w.Share && p < j.alpha {
		c.Result, c.More = verdict.ResultInconclusive, -1
		c.Detail = fmt.Sprintf("%s: beyond what %d requests explain (%s p = %s < α %s) and more than %s%% off; the split users got is not the one being judged: were the weights changed outside the release?",
			what, n, c.Test, fmtP(p), fmtP(j.alpha), fmtNum(gap))
	} else {
		c.Result, c.Detail = verdict.ResultPass, what+": within what the sample explains or "+fmtNum(gap)+"% of the step's share"
	}
	j.add(c)
}

// errorRate holds the canary's error rate to the absolute limit, with an exact binomial test.
func (j *judge) errorRate() {
	cm, lim := j.canary, j.th.MaxErrorRate
	c := verdict.Check{Name: verdict.CheckErrorRate, Metric: verdict.MetricErrorRate, Canary: cm.ErrorRate, Stable: j.stable.ErrorRate, Limit: lim, Unit: "%", CanaryN: cm.Requests, StableN: j.stable.Requests}
	counts := fmt.Sprintf("%d of %d requests", cm.Errors, cm.Requests)
	if j.lostErrors > 0 {
		counts += fmt.Sprintf(", %d of them counted by HAProxy only", j.lostErrors)
	}
	if j.failedAttempts > 0 {
		counts += fmt.Sprintf(", %d of them attempts HAProxy retried or got no answer for (connection and response errors, retries, redispatches)", j.failedAttempts)
	}
	switch {
	case math.IsNaN(cm.ErrorRate) || math.IsInf(cm.ErrorRate, 0) || math.IsNaN(lim):
		c.Result, c.Detail = verdict.ResultFail, fmt.Sprintf("canary error rate %s%% against %s%% cannot be judged (%s)", fmtNum(cm.ErrorRate), fmtNum(lim), counts)
	case cm.Requests == 0:
		c.Result, c.Detail, c.More = verdict.ResultInconclusive, "canary has no requests: "+j.notJudged, j.minReq
	case cm.ErrorRate <= lim:
		c.Result, c.Detail = verdict.ResultPass, fmt.Sprintf("canary error rate %s%% ≤ %s%% (%s)", fmtNum(cm.ErrorRate), fmtNum(lim), counts)
		if !j.canaryEnough {
			c.Result, c.More = verdict.ResultInconclusive, j.minReq-cm.Requests
			c.Detail = fmt.Sprintf("canary error rate %s%% ≤ %s%% (%s), but %s", fmtNum(cm.ErrorRate), fmtNum(lim), counts, j.notJudged)
		}
	default:
		what := fmt.Sprintf("canary error rate %s%% > %s%% (%s)", fmtNum(cm.ErrorRate), fmtNum(lim), counts)
		if j.seq != nil {
			j.seqDecide(&c, what)
		} else {
			p := binomialUpper(cm.Errors, cm.Requests, lim/100)
			c.Test, c.PValue, c.Alpha = testBinomial, p, j.alpha
			c.Statistic = fmt.Sprintf("P(≥%d errors of %d | rate %s%%) = %s", cm.Errors, cm.Requests, fmtNum(lim), fmtP(p))
			j.decide(&c, what, func(s float64) float64 {
				return binomialUpper(int64(math.Round(float64(cm.Errors)*s)), int64(math.Round(float64(cm.Requests)*s)), lim/100)
			}, cm.Requests)
		}
		if sm := j.stable; c.Result == verdict.ResultFail && sm.Requests >= j.minReq && sm.ErrorRate > lim && sm.ErrorRate >= cm.ErrorRate/2 {
			// Aborting stays right (a canary can break what stable shares), but the operator should know
			// that stable failed too, so that a retry after the outage is worth it.
			c.Detail += fmt.Sprintf("; stable failed as much (%s%% errors of %d requests): the cause may be shared (an outage), not the canary: retry the release once it is over",
				fmtNum(sm.ErrorRate), sm.Requests)
		}
	}
	j.add(c)
}

// decide settles a check whose numbers are beyond the limit: a fail if its test is significant, else
// inconclusive with how many more canary requests (of n so far) would make it so.
func (j *judge) decide(c *verdict.Check, what string, pAt func(s float64) float64, n int64) {
	failMin := j.th.MinRequestsToFail
	if failMin <= 0 {
		failMin = DefaultMinRequestsToFail
	}
	have := n
	if c.CanaryN > 0 {
		have = min(n, c.CanaryN)
	}
	if have < failMin {
		c.Result, c.More = verdict.ResultInconclusive, failMin-have
		c.Detail = fmt.Sprintf("%s, but %d canary requests are too few to fail it (%s p = %s; at least %d needed)", what, have, c.Test, fmtP(c.PValue), failMin)
		return
	}
	if c.PValue < j.alpha {
		c.Result = verdict.ResultFail
		c.Detail = fmt.Sprintf("%s; %s p = %s < α %s", what, c.Test, fmtP(c.PValue), fmtP(j.alpha))
		return
	}
	c.Result = verdict.ResultInconclusive
	c.More = moreFor(n, scaleNeeded(pAt, j.alpha))
	c.Detail = fmt.Sprintf("%s, but not yet beyond doubt (%s p = %s ≥ α %s)", what, c.Test, fmtP(c.PValue), fmtP(j.alpha))
}

// latencyLimit holds a canary percentile to its absolute limit; beyond it, exceedance decides.
func (j *judge) latencyLimit(l pct) {
	if l.limit <= 0 {
		return
	}
	cm := j.canary
	c := verdict.Check{Name: verdict.LatencyCheck(l.name), Metric: l.name, Canary: msOf(l.canary), Stable: msOf(l.stable), Limit: msOf(l.limit), Unit: "ms", CanaryN: cm.Timed, StableN: j.stable.Timed}
	switch {
	case cm.Requests == 0:
		c.Result, c.Detail, c.More = verdict.ResultInconclusive, "canary has no requests: "+j.notJudged, j.minReq
	case l.canary <= l.limit:
		c.Result, c.Detail = verdict.ResultPass, fmt.Sprintf("canary %s %sms ≤ %sms", l.name, fmtNum(c.Canary), fmtNum(c.Limit))
		if j.latNotJudged != "" {
			c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(false)
			c.Detail += ", but " + j.latNotJudged
		}
	default:
		j.exceedance(&c, l, msOf(l.limit), fmt.Sprintf("canary %s %sms > %sms (%d requests)", l.name, fmtNum(c.Canary), fmtNum(c.Limit), cm.Requests))
	}
	j.add(c)
}

// exceedance settles a check whose percentile l is beyond limit (ms). A percentile beyond its limit is
// never a pass: an exact binomial test on the sampled canary latencies asks whether more than the
// percentile's share of requests (1 − q) is slower than the limit; a fail when that is beyond doubt, else
// inconclusive, with how many more requests would settle it.
func (j *judge) exceedance(c *verdict.Check, l pct, limit float64, what string) {
	if j.seq != nil {
		j.seqDecide(c, what)
		return
	}
	cm := j.canary
	n := int64(len(cm.Latencies))
	k := above(cm.Latencies, limit)
	share := 1 - l.q
	c.CanaryN = n
	c.Statistic = fmt.Sprintf("%d of %d sampled canary requests > %sms, %s%% allowed", k, n, fmtNum(limit), fmtNum(100*share))
	p := binomialUpper(k, n, share)
	c.Test, c.PValue, c.Alpha = testBinomial, p, j.alpha
	j.decide(c, what, func(s float64) float64 {
		return binomialUpper(int64(math.Round(float64(k)*s)), int64(math.Round(float64(n)*s)), share)
	}, cm.Requests)
}

// errorRateIncrease holds the canary's error rate to stable's plus a margin, with a two-proportion test.
func (j *judge) errorRateIncrease() {
	cm, sm, margin := j.canary, j.stable, j.th.MaxErrorRateIncrease
	c := verdict.Check{Name: verdict.CheckErrorRateIncrease, Metric: verdict.MetricErrorRate, Canary: cm.ErrorRate, Stable: sm.ErrorRate, Limit: sm.ErrorRate + margin, Unit: "%", CanaryN: cm.Requests, StableN: sm.Requests}
	within := cm.ErrorRate <= c.Limit
	switch {
	case !j.relative:
		c = skipped(c)
	case math.IsNaN(c.Limit) || math.IsNaN(cm.ErrorRate) || math.IsInf(cm.ErrorRate, 0):
		c.Result, c.Detail = verdict.ResultFail, fmt.Sprintf("canary error rate %s%% against stable's %s%% + %s points cannot be judged", fmtNum(cm.ErrorRate), fmtNum(sm.ErrorRate), fmtNum(margin))
	case cm.Requests == 0 || sm.Requests == 0:
		c.Result, c.More = verdict.ResultInconclusive, j.minReq
		c.Detail = fmt.Sprintf("canary error rate %s%% vs stable's %s%%: %s", fmtNum(cm.ErrorRate), fmtNum(sm.ErrorRate), j.notCompared)
	case within:
		c.Result, c.Detail = verdict.ResultPass, fmt.Sprintf("canary error rate %s%% within %s points of stable's %s%%", fmtNum(cm.ErrorRate), fmtNum(margin), fmtNum(sm.ErrorRate))
		if j.notCompared != "" {
			c.Result, c.More = verdict.ResultInconclusive, j.moreToCompare()
			c.Detail += ", but " + j.notCompared
		}
	case j.seq != nil:
		j.seqDecide(&c, fmt.Sprintf("canary error rate %s%% > stable's %s%% + %s points (%d of %d canary requests, %d of %d stable)",
			fmtNum(cm.ErrorRate), fmtNum(sm.ErrorRate), fmtNum(margin), cm.Errors, cm.Requests, sm.Errors, sm.Requests))
	default:
		z, p := twoProportion(cm.Errors, cm.Requests, sm.Errors, sm.Requests, margin/100)
		c.Test, c.PValue, c.Alpha = testTwoProportion, p, j.alpha
		c.Statistic = fmt.Sprintf("z = %s", fmtNum(z))
		j.decide(&c, fmt.Sprintf("canary error rate %s%% > stable's %s%% + %s points (%d of %d canary requests, %d of %d stable)",
			fmtNum(cm.ErrorRate), fmtNum(sm.ErrorRate), fmtNum(margin), cm.Errors, cm.Requests, sm.Errors, sm.Requests),
			func(s float64) float64 {
				_, p := twoProportion(int64(math.Round(float64(cm.Errors)*s)), int64(math.Round(float64(cm.Requests)*s)),
					int64(math.Round(float64(sm.Errors)*s)), int64(math.Round(float64(sm.Requests)*s)), margin/100)
				return p
			}, cm.Requests)
	}
	j.add(c)
}

// moreToCompare is how many more canary requests it takes for both groups to reach the minimum.
func (j *judge) moreToCompare() int64 {
	more := max(j.minReq-j.canary.Requests, 0)
	if s := j.minReq - j.stable.Requests; s > 0 {
		more = max(more, j.canaryFor(s))
	}
	return more
}

// relativeLimit is ratio × stable + slack, in milliseconds.
func (j *judge) relativeLimit(stable time.Duration) (limit float64, formula string) {
	r, slack := j.th.MaxLatencyRatio, msOf(j.th.LatencySlack)
	return r*msOf(stable) + slack, fmt.Sprintf("%s × stable %sms + %sms", fmtNum(r), fmtNum(msOf(stable)), fmtNum(slack))
}

// latencyShift asks whether canary requests are slower than stable's across the board: a
// Mann–Whitney U test on the sampled latencies, failing the canary only when the shift is both
// significant and of practical size (canary p50 beyond MaxLatencyRatio × stable p50 + LatencySlack).
func (j *judge) latencyShift() {
	if j.th.MaxLatencyRatio == 0 {
		return
	}
	cm, sm := j.canary, j.stable
	limit, formula := j.relativeLimit(sm.P50)
	c := verdict.Check{Name: verdict.CheckLatencyShift, Metric: verdict.MetricP50, Canary: msOf(cm.P50), Stable: msOf(sm.P50), Limit: limit, Unit: "ms",
		CanaryN: j.sampled(cm), StableN: j.sampled(sm)}
	what := fmt.Sprintf("canary p50 %sms vs %sms (%s)", fmtNum(c.Canary), fmtNum(limit), formula)
	switch {
	case !j.relative:
		c = skipped(c)
		j.add(c)
		return
	case math.IsNaN(limit):
		c.Result, c.Detail = verdict.ResultFail, what+": the latency ratio is not a number"
		j.add(c)
		return
	case c.CanaryN == 0 || c.StableN == 0:
		c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(true)
		c.Detail = fmt.Sprintf("no latencies to compare (canary %d, stable %d sampled)", c.CanaryN, c.StableN)
		if j.latNotCompared != "" {
			c.Detail += ": " + j.latNotCompared
		}
		j.add(c)
		return
	case j.seq != nil:
		j.seqShift(&c, limit, formula)
		j.add(c)
		return
	}
	u, z, p, sup := mannWhitney(cm.Latencies, sm.Latencies)
	c.Test, c.PValue, c.Alpha = testMannWhitney, p, j.alpha
	c.Statistic = fmt.Sprintf("U = %s, z = %s, P(canary slower) = %s", fmtNum(u), fmtNum(z), fmtNum(sup))
	switch {
	case c.Canary <= limit:
		c.Result = verdict.ResultPass
		c.Detail = fmt.Sprintf("canary p50 %sms ≤ %sms (%s); any shift is within the practical margin (%s p = %s)", fmtNum(c.Canary), fmtNum(limit), formula, c.Test, fmtP(p))
		if j.latNotCompared != "" {
			c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(true)
			c.Detail += ", but " + j.latNotCompared
		}
	default:
		j.decide(&c, fmt.Sprintf("canary p50 %sms > %sms (%s)", fmtNum(c.Canary), fmtNum(limit), formula),
			func(s float64) float64 { return normalUpper(z * math.Sqrt(s)) }, cm.Requests)
	}
	j.add(c)
}

// latencyTail holds a canary tail percentile to stable's times MaxLatencyRatio plus LatencySlack: a
// fatter canary tail shows there even when the medians agree. Beyond it, exceedance decides.
func (j *judge) latencyTail(l pct) {
	if j.th.MaxLatencyRatio == 0 {
		return
	}
	cm, sm := j.canary, j.stable
	limit, formula := j.relativeLimit(l.stable)
	c := verdict.Check{Name: verdict.VsStableCheck(l.name), Metric: l.name, Canary: msOf(l.canary), Stable: msOf(l.stable), Limit: limit, Unit: "ms",
		CanaryN: j.sampled(cm), StableN: j.sampled(sm)}
	switch {
	case !j.relative:
		c = skipped(c)
	case math.IsNaN(limit):
		c.Result, c.Detail = verdict.ResultFail, fmt.Sprintf("canary %s %sms: the latency ratio is not a number", l.name, fmtNum(c.Canary))
	case cm.Requests == 0 || sm.Requests == 0:
		c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(true)
		c.Detail = fmt.Sprintf("canary %s %sms vs stable's %sms: %s", l.name, fmtNum(c.Canary), fmtNum(c.Stable), j.notCompared)
	case c.Canary <= limit:
		c.Result, c.Detail = verdict.ResultPass, fmt.Sprintf("canary %s %sms ≤ %sms (%s)", l.name, fmtNum(c.Canary), fmtNum(limit), formula)
		if j.latNotCompared != "" {
			c.Result, c.More = verdict.ResultInconclusive, j.latencyMore(true)
			c.Detail += ", but " + j.latNotCompared
		}
	default:
		j.exceedance(&c, l, limit, fmt.Sprintf("canary %s %sms > %sms (%s)", l.name, fmtNum(c.Canary), fmtNum(limit), formula))
		if need := tailSample(l.q); c.Result == verdict.ResultInconclusive && (cm.Timed < need || sm.Timed < need) {
			// A p99 of fewer than 500 requests is made of their few slowest: one slow request moves it, in
			// canary and stable alike, so comparing the two says nothing. A fat tail still fails above, on
			// the exceedance test's evidence; anything short of that is no comparison at all.
			c.Result, c.Skipped, c.More = verdict.ResultPass, true, 0
			c.Detail = fmt.Sprintf("canary %s %sms vs %sms (%s) not compared: a %s needs %d requests with a latency in each group (canary %d, stable %d), and the canary's share above the limit is no evidence of a fatter tail (%s p = %s)",
				l.name, fmtNum(c.Canary), fmtNum(limit), formula, l.name, need, cm.Timed, sm.Timed, c.Test, fmtP(c.PValue))
		}
	}
	j.add(c)
}

// tailSample is how many requests a group needs for its q-percentile to be compared with another's: enough
// that five of them lie beyond it (500 for a p99, 100 for a p95).
func tailSample(q float64) int64 {
	return int64(math.Ceil(5 / (1 - q) * (1 - 1e-9)))
}

// custom judges a custom metric: one number per group, held to the metric's own limits.
func (j *judge) custom(cm CustomMetric, v CustomValue) {
	c := verdict.Check{Name: verdict.CustomPrefix + cm.Name, Metric: verdict.MetricCustom, Canary: v.Canary, Stable: v.Stable, Unit: cm.Unit}
	if j.in.Window.Early {
		return
	}
	var broken []string
	var limits []string
	if v.Err != "" {
		c.Result, c.Detail, c.More = verdict.ResultInconclusive, fmt.Sprintf("custom metric %s: %s", cm.Name, v.Err), -1
		j.add(c)
		return
	}
	if cm.Max != nil {
		c.Limit = *cm.Max
		limits = append(limits, "≤ "+fmtNum(*cm.Max))
		if !(v.Canary <= *cm.Max) {
			broken = append(broken, fmt.Sprintf("%s > %s", fmtNum(v.Canary), fmtNum(*cm.Max)))
		}
	}
	if cm.Min != nil {
		limits = append(limits, "≥ "+fmtNum(*cm.Min))
		if !(v.Canary >= *cm.Min) {
			broken = append(broken, fmt.Sprintf("%s < %s", fmtNum(v.Canary), fmtNum(*cm.Min)))
		}
	}
	if cm.MaxRatio != 0 && j.relative {
		lim := cm.MaxRatio * v.Stable
		limits = append(limits, fmt.Sprintf("≤ %s × stable %s", fmtNum(cm.MaxRatio), fmtNum(v.Stable)))
		if !(v.Canary <= lim) {
			broken = append(broken, fmt.Sprintf("%s > %s × stable %s", fmtNum(v.Canary), fmtNum(cm.MaxRatio), fmtNum(v.Stable)))
		}
	}
	c.Test = "threshold"
	if len(broken) > 0 {
		c.Result, c.Detail = verdict.ResultFail, fmt.Sprintf("custom metric %s: canary %s", cm.Name, strings.Join(broken, ", "))
	} else {
		c.Result, c.Detail = verdict.ResultPass, fmt.Sprintf("custom metric %s: canary %s %s (stable %s)", cm.Name, fmtNum(v.Canary), strings.Join(limits, ", "), fmtNum(v.Stable))
	}
	j.add(c)
}

func (j *judge) verdict() verdict.Verdict {
	v := verdict.Verdict{Canary: j.canary, Stable: j.stable, Checks: j.checks, Early: j.in.Window.Early}
	if j.in.Window.Early {
		early := j.th.MinRequestsToFail
		if early <= 0 {
			early = DefaultMinRequestsToFail
		}
		if j.canary.Requests < early && !j.seqEnough(early) {
			for i, c := range v.Checks {
				if c.Result == verdict.ResultFail {
					v.Checks[i].Result = verdict.ResultInconclusive
					v.Checks[i].Detail = "too few requests for an early verdict: " + c.Detail
				}
			}
			v.Result = verdict.ResultInconclusive
			v.Reason = fmt.Sprintf("early look: canary has %d requests, an early verdict needs at least %d", j.canary.Requests, early)
			return v
		}
	}
	for _, want := range []verdict.Result{verdict.ResultFail, verdict.ResultInconclusive} {
		for _, c := range v.Checks {
			if c.Result == want {
				v.Result, v.Reason = want, c.Detail
				if want == verdict.ResultInconclusive {
					j.estimate(&v)
				}
				return v
			}
		}
	}
	cm, sm := j.canary, j.stable
	v.Result = verdict.ResultPass
	v.Reason = fmt.Sprintf("all %d checks pass (canary %d requests, %s%% errors, p95 %sms", len(v.Checks), cm.Requests, fmtNum(cm.ErrorRate), fmtNum(msOf(cm.P95)))
	if j.relative {
		v.Reason += fmt.Sprintf("; stable %d requests, %s%% errors, p95 %sms", sm.Requests, fmtNum(sm.ErrorRate), fmtNum(msOf(sm.P95)))
	}
	v.Reason += ")"
	return v
}

// estimate sets how many more canary requests the inconclusive checks need and how long that takes
// at the window's rate, and adds both to the Reason.
func (j *judge) estimate(v *verdict.Verdict) {
	settled := true
	for _, c := range v.Checks {
		if c.Result != verdict.ResultInconclusive {
			continue
		}
		if c.More < 0 {
			settled = false
			continue
		}
		v.More = max(v.More, c.More)
	}
	if !settled {
		v.More = -1
		v.Reason += "; more requests of the same kind may not settle it"
		return
	}
	if v.More <= 0 {
		return
	}
	v.Reason += fmt.Sprintf("; about %d more canary requests needed", v.More)
	w := j.in.Window
	if secs := w.To.Sub(w.From).Seconds(); secs > 0 && j.canary.Requests > 0 {
		rate := float64(j.canary.Requests) / secs
		v.Wait = time.Duration(float64(v.More) / rate * float64(time.Second)).Round(time.Second)
		v.Reason += fmt.Sprintf(", about %s at the current %s req/s", v.Wait, fmtNum(rate))
	}
}

// skipped marks a check relative to stable as passed without judging, at a step where stable carries
// no traffic.
func skipped(c verdict.Check) verdict.Check {
	c.Result, c.Skipped = verdict.ResultPass, true
	c.Detail = "skipped: stable carries no traffic at this step, the absolute checks decide"
	return c
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtNum renders v with at most two decimals and no trailing zeros: 48.58, 1, 0.5.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// fmtP renders a probability with two significant digits: 0.02, 0.0013, 3.1e-09.
func fmtP(p float64) string {
	if math.IsNaN(p) {
		return "n/a"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}
