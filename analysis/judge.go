package analysis

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// DefaultMinRequests is the sample size each group needs when Thresholds.MinRequests is not set; it
// follows Kayenta's guidance of at least 50 data points per metric.
const DefaultMinRequests = 50

// Thresholds are what a canary must meet at every step.
type Thresholds struct {
	// MinRequests is how many requests each group needs in the window to be judged at all; fewer makes
	// the verdict inconclusive. 0 or less means DefaultMinRequests.
	MinRequests int64
	// MaxErrorRate is the highest acceptable canary error rate, in percent (1.0 = 1%).
	MaxErrorRate float64
	// MaxP50, MaxP95 and MaxP99 are absolute limits on canary latency; 0 turns one off.
	MaxP50, MaxP95, MaxP99 time.Duration
	// MaxErrorRateIncrease is how many percentage points the canary's error rate may exceed stable's.
	MaxErrorRateIncrease float64
	// MaxP95Ratio bounds canary p95 relative to stable's: canary ≤ MaxP95Ratio × stable + LatencySlack;
	// 0 turns it off.
	MaxP95Ratio float64
	// LatencySlack is the practical-size margin of the relative latency check, so that a shift of a few
	// milliseconds on a fast service does not fail a release.
	LatencySlack time.Duration
}

// The names of the checks, in the order a Verdict lists them.
const (
	checkCanaryRequests    = "canary_requests"
	checkStableRequests    = "stable_requests"
	checkErrorRate         = "error_rate"
	checkErrorRateIncrease = "error_rate_increase"
	checkP95VsStable       = "p95_vs_stable"
)

// Judge judges canary against stable under th, for a window in which the canary was given canaryShare
// percent of requests. It is pure: no I/O, no logging, the same answer for the same input.
//
// Every check is listed, in a fixed order: the sample size of each group, the canary's absolute error
// rate and latency percentiles (those with a limit), then the canary's error rate and p95 relative to
// stable's. A check on a group with fewer than MinRequests requests is not judged but inconclusive: a
// handful of requests proves nothing either way. At a share of 100 or more stable carries no traffic,
// so the checks relative to stable are skipped (they pass, saying so) and the absolute ones decide.
//
// The verdict fails if any check fails, else it is inconclusive if any check is, else it passes; its
// Reason is the first failing (or inconclusive) check's Detail. A NaN anywhere never makes a check
// pass: comparisons are written so that NaN fails them.
func Judge(canary, stable Metrics, th Thresholds, canaryShare float64) Verdict {
	minReq := th.MinRequests
	if minReq <= 0 {
		minReq = DefaultMinRequests
	}
	// NaN compares false: an unknown share is treated as one where stable has traffic to compare with.
	relative := !(canaryShare >= 100)
	canaryEnough := canary.Requests >= minReq
	stableEnough := stable.Requests >= minReq
	v := Verdict{Canary: canary, Stable: stable}
	add := func(c Check) { v.Checks = append(v.Checks, c) }

	add(sampleCheck(checkCanaryRequests, "canary", canary, canary, stable, minReq))
	if relative {
		add(sampleCheck(checkStableRequests, "stable", stable, canary, stable, minReq))
	} else {
		add(skipped(Check{Name: checkStableRequests, Canary: float64(canary.Requests), Stable: float64(stable.Requests), Limit: float64(minReq), Unit: "requests"}))
	}

	// Absolute checks: the canary alone.
	notJudged := fmt.Sprintf("not judged, canary has %d requests and needs at least %d", canary.Requests, minReq)
	c := Check{Name: checkErrorRate, Canary: canary.ErrorRate, Stable: stable.ErrorRate, Limit: th.MaxErrorRate, Unit: "%"}
	switch {
	case !canaryEnough:
		c.Result, c.Detail = ResultInconclusive, fmt.Sprintf("canary error rate %s%% (%d of %d requests): %s", fmtNum(canary.ErrorRate), canary.Errors, canary.Requests, notJudged)
	case canary.ErrorRate <= th.MaxErrorRate:
		c.Result, c.Detail = ResultPass, fmt.Sprintf("canary error rate %s%% ≤ %s%% (%d of %d requests)", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRate), canary.Errors, canary.Requests)
	default:
		c.Result, c.Detail = ResultFail, fmt.Sprintf("canary error rate %s%% > %s%% (%d of %d requests)", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRate), canary.Errors, canary.Requests)
	}
	add(c)
	for _, l := range []struct {
		name          string
		canary, limit time.Duration
		stable        time.Duration
	}{
		{"p50", canary.P50, th.MaxP50, stable.P50},
		{"p95", canary.P95, th.MaxP95, stable.P95},
		{"p99", canary.P99, th.MaxP99, stable.P99},
	} {
		if l.limit <= 0 {
			continue
		}
		c := Check{Name: "latency_" + l.name, Canary: msOf(l.canary), Stable: msOf(l.stable), Limit: msOf(l.limit), Unit: "ms"}
		switch {
		case !canaryEnough:
			c.Result, c.Detail = ResultInconclusive, fmt.Sprintf("canary %s %sms: %s", l.name, fmtNum(c.Canary), notJudged)
		case l.canary <= l.limit:
			c.Result, c.Detail = ResultPass, fmt.Sprintf("canary %s %sms ≤ %sms", l.name, fmtNum(c.Canary), fmtNum(c.Limit))
		default:
			c.Result, c.Detail = ResultFail, fmt.Sprintf("canary %s %sms > %sms (%d requests)", l.name, fmtNum(c.Canary), fmtNum(c.Limit), canary.Requests)
		}
		add(c)
	}

	// Relative checks: the canary against stable over the same window.
	notCompared := ""
	switch {
	case !canaryEnough && !stableEnough:
		notCompared = fmt.Sprintf("not judged, canary has %d and stable %d requests and each needs at least %d", canary.Requests, stable.Requests, minReq)
	case !canaryEnough:
		notCompared = notJudged
	case !stableEnough:
		notCompared = fmt.Sprintf("not judged, stable has %d requests to compare with and needs at least %d", stable.Requests, minReq)
	}
	c = Check{Name: checkErrorRateIncrease, Canary: canary.ErrorRate, Stable: stable.ErrorRate, Limit: stable.ErrorRate + th.MaxErrorRateIncrease, Unit: "%"}
	switch {
	case !relative:
		c = skipped(c)
	case notCompared != "":
		c.Result, c.Detail = ResultInconclusive, fmt.Sprintf("canary error rate %s%% vs stable's %s%%: %s", fmtNum(canary.ErrorRate), fmtNum(stable.ErrorRate), notCompared)
	case canary.ErrorRate <= c.Limit:
		c.Result, c.Detail = ResultPass, fmt.Sprintf("canary error rate %s%% within %s points of stable's %s%%", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRateIncrease), fmtNum(stable.ErrorRate))
	default:
		c.Result, c.Detail = ResultFail, fmt.Sprintf("canary error rate %s%% > stable's %s%% + %s points (%d of %d canary requests, %d of %d stable)",
			fmtNum(canary.ErrorRate), fmtNum(stable.ErrorRate), fmtNum(th.MaxErrorRateIncrease), canary.Errors, canary.Requests, stable.Errors, stable.Requests)
	}
	add(c)
	// NaN compares false: a ratio that is not a number turns the check on, and it cannot pass.
	if !(th.MaxP95Ratio <= 0) {
		limit := th.MaxP95Ratio*msOf(stable.P95) + msOf(th.LatencySlack)
		c := Check{Name: checkP95VsStable, Canary: msOf(canary.P95), Stable: msOf(stable.P95), Limit: limit, Unit: "ms"}
		formula := fmt.Sprintf("%s × stable p95 %sms + %sms", fmtNum(th.MaxP95Ratio), fmtNum(c.Stable), fmtNum(msOf(th.LatencySlack)))
		switch {
		case !relative:
			c = skipped(c)
		case notCompared != "":
			c.Result, c.Detail = ResultInconclusive, fmt.Sprintf("canary p95 %sms vs stable's %sms: %s", fmtNum(c.Canary), fmtNum(c.Stable), notCompared)
		case c.Canary <= limit:
			c.Result, c.Detail = ResultPass, fmt.Sprintf("canary p95 %sms ≤ %sms (%s)", fmtNum(c.Canary), fmtNum(limit), formula)
		default:
			c.Result, c.Detail = ResultFail, fmt.Sprintf("canary p95 %sms > %sms (%s)", fmtNum(c.Canary), fmtNum(limit), formula)
		}
		add(c)
	}

	for _, want := range []Result{ResultFail, ResultInconclusive} {
		for _, c := range v.Checks {
			if c.Result == want {
				v.Result, v.Reason = want, c.Detail
				return v
			}
		}
	}
	v.Result = ResultPass
	v.Reason = fmt.Sprintf("all %d checks pass (canary %d requests, %s%% errors, p95 %sms", len(v.Checks), canary.Requests, fmtNum(canary.ErrorRate), fmtNum(msOf(canary.P95)))
	if relative {
		v.Reason += fmt.Sprintf("; stable %d requests, %s%% errors, p95 %sms", stable.Requests, fmtNum(stable.ErrorRate), fmtNum(msOf(stable.P95)))
	}
	v.Reason += ")"
	return v
}

// sampleCheck says whether group, whose metrics are m, has enough requests to be judged.
func sampleCheck(name, group string, m, canary, stable Metrics, minReq int64) Check {
	c := Check{Name: name, Canary: float64(canary.Requests), Stable: float64(stable.Requests), Limit: float64(minReq), Unit: "requests"}
	if m.Requests < minReq {
		c.Result = ResultInconclusive
		c.Detail = fmt.Sprintf("%s has %d requests (%d errors), needs at least %d to judge", group, m.Requests, m.Errors, minReq)
	} else {
		c.Result = ResultPass
		c.Detail = fmt.Sprintf("%s has %d requests (at least %d)", group, m.Requests, minReq)
	}
	return c
}

// skipped marks a check relative to stable as passed without judging, at a step where stable carries
// no traffic.
func skipped(c Check) Check {
	c.Result = ResultPass
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
