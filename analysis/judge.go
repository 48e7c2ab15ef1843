// Package analysis judges a canary against stable from request metrics kept in InfluxDB: it queries
// request counts, error rates and latency percentiles of both server groups over a step's window and turns
// them, with thresholds, into a Verdict that carries its evidence. Judging is a pure function (Judge);
// querying is done by Flux, and Analyzer puts the two together. No data, too little data or an unreachable
// InfluxDB never counts as healthy.
package analysis

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Thresholds are what a canary must meet at every step.
type Thresholds struct {
	// MinRequests is how many requests each group needs in the window to judge at all (default 50).
	MinRequests int64
	// MaxErrorRate is the highest acceptable canary error rate, in percent.
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

// Metrics are one group's request statistics over a window.
type Metrics struct {
	Requests, Errors int64
	// ErrorRate is the share of requests that failed, in percent.
	ErrorRate     float64
	P50, P95, P99 time.Duration
}

// Result is the outcome of a check or of a whole verdict.
type Result string

// The results. Only ResultPass lets a release go on.
const (
	ResultPass         Result = "pass"
	ResultFail         Result = "fail"
	ResultInconclusive Result = "inconclusive"
)

// Check is one criterion with the numbers behind it. Latencies are in milliseconds, rates in percent.
type Check struct {
	Name                  string
	Result                Result
	Canary, Stable, Limit float64
	Unit                  string
	Detail                string
}

// Verdict is the judgement of one window, with its evidence.
type Verdict struct {
	Result Result
	// Reason is one line saying why, with the numbers that decided it.
	Reason         string
	Canary, Stable Metrics
	Checks         []Check
	// Queries are the queries that produced the numbers.
	Queries []string
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	s := fmt.Sprintf("%.2f", v)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// Judge judges canary against stable under th while the canary had canaryShare percent of requests. It
// is pure. The verdict fails if any check fails; otherwise it is inconclusive if any check could not be
// made (too few requests in either group); otherwise it passes. At a share of 100 stable carries no
// traffic, so the checks relative to stable are skipped and the absolute ones decide.
func Judge(canary, stable Metrics, th Thresholds, canaryShare float64) Verdict {
	if th.MinRequests <= 0 {
		th.MinRequests = 50
	}
	relative := canaryShare < 100
	v := Verdict{Canary: canary, Stable: stable}
	add := func(c Check) { v.Checks = append(v.Checks, c) }

	enough := func(name, group string, m Metrics) bool {
		c := Check{Name: name, Canary: float64(m.Requests), Limit: float64(th.MinRequests), Unit: "requests", Result: ResultPass}
		if group == "stable" {
			c.Canary, c.Stable = 0, float64(m.Requests)
		}
		if m.Requests < th.MinRequests {
			c.Result = ResultInconclusive
			c.Detail = fmt.Sprintf("%s has %d requests, needs at least %d to judge", group, m.Requests, th.MinRequests)
		} else {
			c.Detail = fmt.Sprintf("%s has %d requests (at least %d)", group, m.Requests, th.MinRequests)
		}
		add(c)
		return c.Result == ResultPass
	}
	canaryOK := enough("canary_requests", "canary", canary)
	stableOK := true
	if relative {
		stableOK = enough("stable_requests", "stable", stable)
	}

	if canaryOK {
		c := Check{Name: "error_rate", Canary: canary.ErrorRate, Stable: stable.ErrorRate, Limit: th.MaxErrorRate, Unit: "%", Result: ResultPass}
		if canary.ErrorRate > th.MaxErrorRate || math.IsNaN(canary.ErrorRate) {
			c.Result = ResultFail
			c.Detail = fmt.Sprintf("canary error rate %s%% > %s%% (%d of %d requests)", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRate), canary.Errors, canary.Requests)
		} else {
			c.Detail = fmt.Sprintf("canary error rate %s%% ≤ %s%%", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRate))
		}
		add(c)
		for _, l := range []struct {
			name  string
			got   time.Duration
			limit time.Duration
			other time.Duration
		}{{"p50", canary.P50, th.MaxP50, stable.P50}, {"p95", canary.P95, th.MaxP95, stable.P95}, {"p99", canary.P99, th.MaxP99, stable.P99}} {
			if l.limit <= 0 {
				continue
			}
			c := Check{Name: "latency_" + l.name, Canary: msOf(l.got), Stable: msOf(l.other), Limit: msOf(l.limit), Unit: "ms", Result: ResultPass}
			if l.got > l.limit {
				c.Result = ResultFail
				c.Detail = fmt.Sprintf("canary %s %sms > %sms", l.name, fmtNum(c.Canary), fmtNum(c.Limit))
			} else {
				c.Detail = fmt.Sprintf("canary %s %sms ≤ %sms", l.name, fmtNum(c.Canary), fmtNum(c.Limit))
			}
			add(c)
		}
	}

	switch {
	case !relative:
		add(Check{Name: "relative_to_stable", Result: ResultPass, Detail: "skipped: stable carries no traffic at this step, the absolute checks decide"})
	case canaryOK && stableOK:
		c := Check{Name: "error_rate_increase", Canary: canary.ErrorRate, Stable: stable.ErrorRate,
			Limit: stable.ErrorRate + th.MaxErrorRateIncrease, Unit: "%", Result: ResultPass}
		if canary.ErrorRate > c.Limit {
			c.Result = ResultFail
			c.Detail = fmt.Sprintf("canary error rate %s%% exceeds stable's %s%% by more than %s points", fmtNum(canary.ErrorRate), fmtNum(stable.ErrorRate), fmtNum(th.MaxErrorRateIncrease))
		} else {
			c.Detail = fmt.Sprintf("canary error rate %s%% within %s points of stable's %s%%", fmtNum(canary.ErrorRate), fmtNum(th.MaxErrorRateIncrease), fmtNum(stable.ErrorRate))
		}
		add(c)
		if th.MaxP95Ratio > 0 {
			limit := th.MaxP95Ratio*msOf(stable.P95) + msOf(th.LatencySlack)
			c := Check{Name: "p95_vs_stable", Canary: msOf(canary.P95), Stable: msOf(stable.P95), Limit: limit, Unit: "ms", Result: ResultPass}
			if c.Canary > limit {
				c.Result = ResultFail
				c.Detail = fmt.Sprintf("canary p95 %sms > %s × stable p95 %sms + %sms = %sms", fmtNum(c.Canary), fmtNum(th.MaxP95Ratio), fmtNum(c.Stable), fmtNum(msOf(th.LatencySlack)), fmtNum(limit))
			} else {
				c.Detail = fmt.Sprintf("canary p95 %sms ≤ %sms (%s × stable p95 %sms + %sms)", fmtNum(c.Canary), fmtNum(limit), fmtNum(th.MaxP95Ratio), fmtNum(c.Stable), fmtNum(msOf(th.LatencySlack)))
			}
			add(c)
		}
	}

	v.Result = ResultPass
	for _, c := range v.Checks {
		if c.Result == ResultFail {
			v.Result, v.Reason = ResultFail, c.Detail
			return v
		}
	}
	for _, c := range v.Checks {
		if c.Result == ResultInconclusive {
			v.Result, v.Reason = ResultInconclusive, c.Detail
			return v
		}
	}
	v.Reason = fmt.Sprintf("all %d checks pass (canary %d requests, %s%% errors, p95 %sms)", len(v.Checks), canary.Requests, fmtNum(canary.ErrorRate), fmtNum(msOf(canary.P95)))
	return v
}
