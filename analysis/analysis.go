// Package analysis judges a canary against stable from the request metrics HAProxy writes to InfluxDB.
//
// Flux asks InfluxDB for each server group's request count, error count and latency percentiles over a
// step's window; Judge, a pure function, turns those numbers and the Thresholds into a Verdict that
// carries every check with its numbers; Analyzer puts the two together for the release engine.
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
	// Requests counts the requests the group's servers logged; Errors counts those with an error status.
	Requests, Errors int64
	// ErrorRate is Errors as a share of Requests, in percent (0 when there are no requests).
	ErrorRate float64
	// P50, P95 and P99 are latency percentiles over the requests that have a latency.
	P50, P95, P99 time.Duration
}

// Result is the outcome of a check or of a whole verdict.
type Result string

// The results. Only ResultPass lets a release go on.
const (
	// ResultPass: the canary meets every threshold.
	ResultPass Result = "pass"
	// ResultFail: the canary breaks at least one threshold.
	ResultFail Result = "fail"
	// ResultInconclusive: there is not enough data, or no data, to decide.
	ResultInconclusive Result = "inconclusive"
)

// Check is one criterion of a verdict with the numbers behind it. Latencies are in milliseconds, rates
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
}
