// Package analysis judges a canary against stable from the request metrics HAProxy writes to InfluxDB.
//
// A Store (InfluxQL or Flux, the same numbers from either) asks InfluxDB for each server group's request
// count, error count, latency percentiles and a sample of latencies over a step's window; Judge, a pure
// function, turns those numbers and the Thresholds into a Verdict that carries every check with its
// evidence: values, limits, sample sizes, the statistical test and its p-value; Analyzer puts the two
// together for the release engine, for final verdicts and for the early looks taken during a bake.
//
// A check fails only on evidence: a one-sided test (exact binomial, two-proportion, Mann-Whitney U) at
// the configured confidence. A canary that looks bad on too little evidence, or has too few requests to
// pass, is inconclusive, with an estimate of how many more requests would settle it.
//
// The package fails closed: no data, too little data, an unreachable InfluxDB or a failed query is never
// a pass. It imports no other package of fridaymorning.
package analysis

import (
	"errors"
	"time"
)

// Sentinel errors for the outcomes a caller branches on; match them with errors.Is.
var (
	// ErrNoData means the window holds nothing to judge: no requests of the canary servers, an empty
	// window, or requests without any latency.
	ErrNoData = errors.New("no data")
	// ErrUnreachable means InfluxDB could not be asked or did not answer the query: connection refused,
	// timeout, refused credentials, missing bucket, or a query error.
	ErrUnreachable = errors.New("InfluxDB unreachable or the query failed")
)

// Metrics are one group's request statistics over a window.
type Metrics struct {
	// Requests counts the requests the group's servers logged; Errors counts those with an error status
	// (by default 5xx), Errors5xx those with a 5xx status, to compare with HAProxy's own counters.
	Requests, Errors, Errors5xx int64
	// ErrorRate is Errors as a share of Requests, in percent (0 when there are no requests).
	ErrorRate float64
	// Timed counts the requests that have a latency (a negative timer means no response).
	Timed int64
	// P50, P90, P95 and P99 are latency percentiles over the requests that have a latency.
	P50, P90, P95, P99 time.Duration
	// Latencies is a sample of the group's latencies in milliseconds, every one when there are at most
	// SampleSize, else SampleSize of them spread over the window; the rank and tail tests use it.
	Latencies []float64
}

// SampleSize is how many latencies of each group the statistical tests look at, at most. A sample of
// 5,000 finds a shift of a few percent in the chance that a canary request is slower than a stable one;
// a larger one costs transfer and sorting without changing a verdict.
const SampleSize = 5000

// Result is the outcome of a check or of a whole verdict.
type Result string

// The results. Only ResultPass lets a release go on.
const (
	// ResultPass: the canary meets every threshold.
	ResultPass Result = "pass"
	// ResultFail: the canary breaks at least one threshold, beyond doubt.
	ResultFail Result = "fail"
	// ResultInconclusive: there is not enough data, or no data, to decide.
	ResultInconclusive Result = "inconclusive"
)

// Check is one criterion of a verdict with the evidence behind it. Latencies are in milliseconds, rates
// in percent, sample sizes in requests.
type Check struct {
	// Name identifies the criterion, e.g. "error_rate" or "p95_vs_stable"; it is the same at every step.
	Name string
	// Result is this criterion's outcome; a criterion that could not be judged is inconclusive.
	Result Result
	// Canary and Stable are the groups' values; Limit is what Canary was held to.
	Canary, Stable, Limit float64
	// Unit is the unit of Canary, Stable and Limit: "requests", "%" or "ms".
	Unit string
	// CanaryN and StableN are the sample sizes the check looked at.
	CanaryN, StableN int64
	// Test names the statistical test behind a verdict beyond the limit ("" when none ran); Statistic
	// gives its numbers, PValue its one-sided p-value and Alpha the level it was held to.
	Test, Statistic string
	PValue, Alpha   float64
	// More is, for an inconclusive check, about how many more canary requests would settle it; -1 when
	// more requests of the same kind would not.
	More int64
	// Detail is one line saying what was compared and how it came out.
	Detail string
}

// Verdict is the judgement of one window, with its evidence.
type Verdict struct {
	// Result is fail if any check failed, else inconclusive if any check could not be judged, else pass.
	Result Result
	// Reason is one line saying why, with the numbers that decided it.
	Reason string
	// Canary and Stable are the numbers judged.
	Canary, Stable Metrics
	// Checks are every criterion in a fixed order, including skipped ones.
	Checks []Check
	// Queries are the queries that produced the numbers.
	Queries []string
	// More is, for an inconclusive verdict, about how many more canary requests would settle it (-1
	// when more of the same would not); Wait is about how long they take at the window's rate.
	More int64
	Wait time.Duration
	// Early marks the verdict of an early look during a bake.
	Early bool
}

// CustomMetric is a user's own metric: a query template in the backend's language returning one number
// for a group, and the limits the canary's number is held to. The template sees .Bucket, .Database,
// .RetentionPolicy, .Measurement, .Backend, .Servers (a filter expression matching the group's
// servers), .Start, .Stop and .Group, each already a literal (or expression) of the query language, so
// no name can change the query.
type CustomMetric struct {
	// Name names the check ("custom_" + Name).
	Name string
	// Query is the template.
	Query string
	// Unit is the number's unit, for display.
	Unit string
	// Max and Min are absolute limits on the canary's number; nil turns one off.
	Max, Min *float64
	// MaxRatio, if not 0, holds the canary's number to at most MaxRatio × stable's.
	MaxRatio float64
}

// CustomValue is a custom metric's value for each group, or why it has none.
type CustomValue struct {
	Canary, Stable float64
	// Err says why there is no value (no data, query failed); "" when there is.
	Err string
	// Queries are the rendered queries.
	Queries []string
}
