// Package verdict holds the plain types of a canary judgement: the Window judged, the load balancer's
// Tally of it, each group's Metrics, and the Verdict with its Checks and their evidence. It is a leaf:
// it imports nothing of fridaymorning and does no I/O. The analysis package produces verdicts, the
// release engine acts on them, and the front ends (tui, headless) render them; all three share these
// types instead of copying them field by field.
package verdict

import "time"

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

// Worse returns the worse of two results: fail over inconclusive over pass over "" (not judged).
func Worse(a, b Result) Result {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func rank(r Result) int {
	switch r {
	case ResultPass:
		return 1
	case ResultInconclusive:
		return 2
	case ResultFail:
		return 3
	}
	return 0
}

// Metric is the quantity a check is about: the row a display shows it on.
type Metric string

// The metrics checks are about.
const (
	MetricRequests  Metric = "requests"
	MetricErrorRate Metric = "error_rate"
	MetricP50       Metric = "p50"
	MetricP90       Metric = "p90"
	MetricP95       Metric = "p95"
	MetricP99       Metric = "p99"
	// MetricCustom: a user's own metric (Check.Name is CustomPrefix + its name).
	MetricCustom Metric = "custom"
)

// The names of the built-in checks, in the order a Verdict lists them. Latency checks are named per
// percentile by LatencyCheck and VsStableCheck; custom ones by CustomPrefix and the metric's name.
const (
	CheckCanaryRequests    = "canary_requests"
	CheckStableRequests    = "stable_requests"
	CheckTelemetry         = "telemetry"
	CheckTrafficShare      = "traffic_share"
	CheckErrorRate         = "error_rate"
	CheckErrorRateIncrease = "error_rate_increase"
	CheckLatencyShift      = "latency_shift"
	CustomPrefix           = "custom_"
)

// LatencyCheck names the check of percentile q ("p99") against its absolute limit: "latency_p99".
func LatencyCheck(q Metric) string { return "latency_" + string(q) }

// VsStableCheck names the check of percentile q ("p95") against stable's: "p95_vs_stable".
func VsStableCheck(q Metric) string { return string(q) + "_vs_stable" }

// Tally is what the load balancer's own counters say of one group over a window.
type Tally struct {
	// Requests answered and, of those, answered with a 5xx status.
	Requests, Errors5xx int64
	// Failed counts the attempts on the group's servers that got no answer: connection and response
	// errors, and attempts the load balancer retried or sent to another server. Users may never see
	// them (a retry elsewhere answered), and no per-request log names the server that failed.
	Failed int64 `json:",omitempty"`
}

// Minus is t − u, counter by counter.
func (t Tally) Minus(u Tally) Tally {
	return Tally{Requests: t.Requests - u.Requests, Errors5xx: t.Errors5xx - u.Errors5xx, Failed: t.Failed - u.Failed}
}

// Window is what is judged: the time span, the canary's share of requests in it and, if known, the load
// balancer's own counts for the same span.
type Window struct {
	From, To time.Time
	// Share is the canary's share of requests, in percent.
	Share float64
	// Early marks one of the looks taken during a bake: it can only fail the canary (or find nothing),
	// at α divided by Looks, so that looking often does not make a healthy canary fail by chance.
	Early bool
	// Looks is how many early looks the bake takes (α is shared among them); at least 1.
	Looks int
	// Canary and Stable are the load balancer's counts of the window, a second signal to check the
	// metrics store against; nil when unknown.
	Canary, Stable *Tally
	// Sequence is the release's sequential analysis before this look: what the looks so far found. Nil
	// before the first look of a release, and ignored when each window is judged on its own (Early and
	// Looks then share α among the bake's looks).
	Sequence *Sequence
}

// Sequence is the running state of a release's sequential analysis, which every look folds its new
// data into: the evidence of each check that can abort the release, over all of its steps. The
// analysis package makes and reads it; the release engine only carries it from one look to the next
// and keeps it in the release record, so that a release taken over by another process keeps the
// evidence, and the spent budget, it had.
type Sequence struct {
	// From is the start of the window (step) the looks currently add to; Through is where the data
	// folded in ends: the next look reads from there.
	From    time.Time `json:"from"`
	Through time.Time `json:"through"`
	// Looks counts the looks folded in; Windows the windows begun (a step, a nudge, a takeover).
	Looks   int `json:"looks"`
	Windows int `json:"windows"`
	// Evidence is each check's sequential test, by check name.
	Evidence map[string]Evidence `json:"evidence,omitempty"`
	// Groups holds, for each group of checks sharing a part of the budget (errors, latency), the
	// logarithm of the largest mean e-value its checks have had.
	Groups map[string]float64 `json:"groups,omitempty"`
	// Cuts are stable's latency percentiles (ms) as estimated so far, by metric: the latencies the next
	// look counts slow requests against.
	Cuts map[Metric]float64 `json:"cuts,omitempty"`
	// Step holds the analysis package's running figures of the current window (counts, latency
	// histograms, the evidence for an early pass). It is not kept in the release record: a release taken
	// over starts its step again.
	Step any `json:"-"`
}

// Evidence is one check's e-process over a release: a mixture of bets on alternatives, each one's
// stake kept as a natural logarithm. Its e-value is the mean of the stakes; the check fails once that
// reaches 1/α.
type Evidence struct {
	// Log holds each alternative's stake, as a logarithm.
	Log []float64 `json:"log"`
	// Max is the logarithm of the largest e-value reached; 1/e^Max is the always-valid p-value.
	Max float64 `json:"max"`
	// N counts the canary requests the test has seen, K those that counted against it (errors, slow
	// requests).
	N int64 `json:"n"`
	K int64 `json:"k,omitempty"`
}

// Metrics are one group's request statistics over a window.
type Metrics struct {
	// Requests counts the requests the group's servers logged; Errors counts those with an error status
	// (by default 5xx), Errors5xx those with a 5xx status, to compare with the load balancer's counters.
	Requests, Errors int64
	Errors5xx        int64 `json:",omitempty"`
	// ErrorRate is Errors as a share of Requests, in percent (0 when there are no requests).
	ErrorRate float64
	// Timed counts the requests that have a latency (a negative timer means no response).
	Timed int64 `json:",omitempty"`
	// P50, P90, P95 and P99 are latency percentiles over the requests that have a latency.
	P50, P90, P95, P99 time.Duration
	// Latencies is a sample of the group's latencies in milliseconds, for the rank and tail tests. It is
	// never stored with a release record (it can hold thousands of numbers).
	Latencies []float64 `json:"-"`
}

// Check is one criterion of a verdict with the evidence behind it. Latencies are in milliseconds, rates
// in percent, sample sizes in requests.
type Check struct {
	// Name identifies the criterion (one of the Check* names, LatencyCheck, VsStableCheck or a custom
	// one); it is the same at every step.
	Name string
	// Metric is the quantity the criterion is about.
	Metric Metric `json:",omitempty"`
	// Result is this criterion's outcome; a criterion that could not be judged is inconclusive.
	Result Result
	// Skipped says the criterion did not apply to this window (it then passes and holds no limit).
	Skipped bool `json:",omitempty"`
	// Canary and Stable are the groups' values; Limit is what Canary was held to.
	Canary, Stable, Limit float64
	// Unit is the unit of Canary, Stable and Limit: "requests", "%" or "ms".
	Unit string
	// CanaryN and StableN are the sample sizes the check looked at.
	CanaryN, StableN int64
	// Test names the statistical test behind a verdict beyond the limit ("" when none ran); Statistic
	// gives its numbers, PValue its one-sided p-value (always valid for a sequential test: 1/e-value at
	// its largest) and Alpha the level it was held to (a sequential test's share of the release's budget).
	Test, Statistic string
	PValue, Alpha   float64
	// EValue is a sequential test's evidence over the release, the largest its e-value has been: the
	// check fails once it reaches 1/Alpha.
	EValue float64 `json:",omitempty"`
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
	// PassEarly says that an early look found the canary within every limit beyond doubt, so that the
	// step may end before its bake does (analysis.early_pass).
	PassEarly bool `json:",omitempty"`
	// Sequence is the release's sequential analysis after this look, for the next one; nil when the
	// window was judged on its own.
	Sequence *Sequence `json:"-"`
}

// FailClosed makes sure a verdict that came with an error, or with no result, is no pass: no data, an
// unreachable store or a failed query never counts as healthy.
func FailClosed(v Verdict, err error) Verdict {
	if err != nil && v.Result == ResultPass {
		v.Result = ResultInconclusive
	}
	if v.Result == "" {
		v.Result = ResultInconclusive
	}
	if err != nil && v.Reason == "" {
		v.Reason = err.Error()
	}
	return v
}
