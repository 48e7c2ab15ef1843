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

// SampleSize is how many latencies of each group the statistical tests look at, at most. A sample of
// 5,000 finds a shift of a few percent in the chance that a canary request is slower than a stable one;
// a larger one costs transfer and sorting without changing a verdict.
const SampleSize = 5000

// CustomMetric is a user's own metric: a query template in the backend's language returning one number
// for a group, and the limits the canary's number is held to. The template sees .Bucket, .Database,
// .RetentionPolicy, .Measurement, .Backend, .Servers (a filter expression matching the group's
// servers), .Start, .Stop and .Group, each already a literal (or expression) of the query language, so
// no name can change the query.
type CustomMetric struct {
	// Name names the check ("custom_" + Name).
	Name string
	// Source is where the query goes: "" for the InfluxDB store of the built-in checks (the query in its
	// language), SourcePrometheus for Prometheus (the query in PromQL).
	Source string
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
