package analysis

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Querier reports both groups' metrics over a window; *Flux and *InfluxQL are two. Its error follows
// Flux.Metrics: ErrNoData when there is nothing to judge, ErrUnreachable when the store could not be
// asked.
type Querier interface {
	// Metrics returns the canary's and stable's metrics over [from, to) and the queries that produced them.
	Metrics(ctx context.Context, from, to time.Time) (canary, stable verdict.Metrics, queries []string, err error)
	// Interval returns what each group served over [from, to), counted against the cuts, for one look
	// of a sequential analysis; an interval without requests is no error.
	// ErrNoData comes with the counts when the interval itself holds no canary requests, or a group's
	// requests have no latency.
	Interval(ctx context.Context, from, to time.Time, cuts Cuts) (canary, stable Interval, queries []string, err error)
	// Totals returns each group's counts over [from, to) (requests, errors, 5xx answers, timed
	// requests; no cuts, no sample), for a final look to count what landed late.
	Totals(ctx context.Context, from, to time.Time) (canary, stable Interval, queries []string, err error)
	// Custom returns a custom metric's value for each group over [from, to), or why there is none.
	Custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue
}

// CustomQuerier answers custom checks: a Querier, or *Prometheus for checks written in PromQL.
type CustomQuerier interface {
	// Custom returns a custom metric's value for each group over [from, to), or why there is none.
	Custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue
}

// Analyzer judges windows with a querier and thresholds.
type Analyzer struct {
	q    Querier
	th   Thresholds
	prom CustomQuerier
}

// NewAnalyzer returns an Analyzer that judges what q reports against th.
func NewAnalyzer(q Querier, th Thresholds) *Analyzer {
	return &Analyzer{q: q, th: th}
}

// WithPrometheus returns a copy of a that asks p the custom checks whose Source is SourcePrometheus.
func (a *Analyzer) WithPrometheus(p CustomQuerier) *Analyzer {
	b := *a
	b.prom = p
	return &b
}

// custom asks cm of its source; a check of a source that is not configured has no value.
func (a *Analyzer) custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue {
	switch cm.Source {
	case "":
		return a.q.Custom(ctx, cm, from, to)
	case SourcePrometheus:
		if a.prom == nil {
			return CustomValue{Err: "custom metric " + cm.Name + " asks Prometheus, but none is configured: set prometheus.url in fridaymorning.yaml"}
		}
		return a.prom.Custom(ctx, cm, from, to)
	}
	return CustomValue{Err: "custom metric " + cm.Name + ": unknown source " + cm.Source + ": want prometheus, or none for InfluxDB"}
}

// Analyze judges the window w.
//
// It fails closed: whenever it returns an error, the Verdict is not a pass, and its Reason says why.
//   - No error: the Verdict is Judge's, pass, fail or inconclusive. Too few requests in a group (fewer
//     than MinRequests) is no error but an inconclusive Verdict.
//   - ErrNoData (empty window, no requests of the canary servers, requests without any latency): the
//     Verdict lists Judge's checks on what there is; it is inconclusive, or a fail when what there is
//     already fails a check beyond doubt (say every canary request failed and none had a response time).
//   - ErrUnreachable (connection refused, timeout, credentials refused, missing bucket, query error):
//     an inconclusive Verdict without checks; the error names InfluxDB's URL, never the token.
//   - The context's error when ctx ended during the query: an inconclusive Verdict.
//
// Custom metrics are queried at final looks only (an early look judges the built-in metrics), over
// the whole window. The Verdict's Queries hold every query sent.
//
// Unless the Thresholds ask for FixedSample tests, the analysis is sequential: Analyze reads only what
// is new since the look before (w.Sequence says where that ended), folds it into the release's tests
// with JudgeLook and returns the new Sequence in the Verdict; when it fails, the Verdict carries the
// Sequence it was given, so that nothing is lost and the next look reads the interval again. ErrNoData
// then says the window as a whole (not just the new interval) has nothing to judge, as above.
func (a *Analyzer) Analyze(ctx context.Context, w verdict.Window) (verdict.Verdict, error) {
	if !a.th.FixedSample {
		return a.look(ctx, w)
	}
	canary, stable, queries, err := a.q.Metrics(ctx, w.From, w.To)
	in := Input{Canary: canary, Stable: stable, Window: w}
	if err == nil && !w.Early {
		for _, cm := range a.th.Custom {
			cv := a.custom(ctx, cm, w.From, w.To)
			queries = append(queries, cv.Queries...)
			in.Custom = append(in.Custom, cv)
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	if err == nil {
		v := Judge(in, a.th)
		v.Queries = queries
		return v, nil
	}
	reason := strings.TrimPrefix(err.Error(), "analysis: ")
	if errors.Is(err, ErrNoData) {
		in.Custom = nil
		th := a.th
		th.Custom = nil
		v := Judge(in, th)
		v.Queries = queries
		if v.Result != verdict.ResultFail {
			v.Result, v.Reason, v.More, v.Wait = verdict.ResultInconclusive, reason, 0, 0
		}
		return v, err
	}
	return verdict.Verdict{Result: verdict.ResultInconclusive, Reason: reason, Queries: queries, Early: w.Early}, err
}

// look is Analyze's sequential analysis.
func (a *Analyzer) look(ctx context.Context, w verdict.Window) (verdict.Verdict, error) {
	since := w.From
	if s := w.Sequence; s != nil && s.From.Equal(w.From) && s.Through.After(since) {
		since = s.Through
	}
	canary, stable, queries, err := a.q.Interval(ctx, since, w.To, LookCuts(w.Sequence, a.th))
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	// An interval with nothing new is no error while the window has something to judge.
	var noData error
	if errors.Is(err, ErrNoData) {
		noData, err = err, nil
	}
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), "analysis: ")
		return verdict.Verdict{Result: verdict.ResultInconclusive, Reason: reason, Queries: queries, Early: w.Early, Sequence: w.Sequence}, err
	}
	look := Look{Window: w, Since: since, Canary: canary, Stable: stable}
	if !w.Early && w.Canary != nil && w.Stable != nil {
		// Held to the load balancer's counts, the window must hold the points that landed after the look
		// that read their interval: the final look counts them once (a failed count changes nothing:
		// the telemetry check then sees the window as the looks read it).
		if c, s, q, err := a.q.Totals(ctx, w.From, w.To); err == nil {
			look.Recount = &Recount{Canary: c, Stable: s}
			queries = append(queries, q...)
		}
	}
	if !w.Early {
		for _, cm := range a.th.Custom {
			cv := a.custom(ctx, cm, w.From, w.To)
			queries = append(queries, cv.Queries...)
			look.Custom = append(look.Custom, cv)
		}
	}
	v := JudgeLook(look, a.th)
	v.Queries = queries
	c, s := v.Canary, v.Stable
	if noData != nil && (c.Requests == 0 || c.Timed == 0 || s.Requests > 0 && s.Timed == 0) {
		// As for a window judged on its own: what there is may fail the canary beyond doubt; short of
		// that, the verdict is inconclusive and says why.
		if v.Result != verdict.ResultFail {
			v.Result, v.Reason, v.More, v.Wait = verdict.ResultInconclusive, strings.TrimPrefix(noData.Error(), "analysis: "), 0, 0
		}
		return v, noData
	}
	return v, nil
}
