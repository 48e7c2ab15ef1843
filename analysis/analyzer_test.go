package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// stubQuerier stands in for InfluxDB in the tests of Analyze's own logic.
type stubQuerier struct {
	canary, stable verdict.Metrics
	err            error
}

func (s stubQuerier) Metrics(context.Context, time.Time, time.Time) (verdict.Metrics, verdict.Metrics, []string, error) {
	return s.canary, s.stable, []string{"the query"}, s.err
}

func (s stubQuerier) Interval(context.Context, time.Time, time.Time, Cuts) (Interval, Interval, []string, error) {
	return Interval{}, Interval{}, nil, errors.New("stubQuerier: no intervals")
}

func (s stubQuerier) Totals(context.Context, time.Time, time.Time) (Interval, Interval, []string, error) {
	return Interval{}, Interval{}, nil, errors.New("stubQuerier: no totals")
}

func (s stubQuerier) Custom(context.Context, CustomMetric, time.Time, time.Time) CustomValue {
	return CustomValue{Canary: 1, Stable: 1, Queries: []string{"custom canary", "custom stable"}}
}

func TestAnalyze(t *testing.T) {
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, FixedSample: true}
	good := group(make([]float64, 500), 0)
	noData := fmt.Errorf("analysis: %w: no requests of the canary servers canary1", ErrNoData)
	unreachable := fmt.Errorf("analysis: InfluxDB at http://127.0.0.1:1: connect: connection refused: check influxdb.url: %w", ErrUnreachable)
	tests := []struct {
		name   string
		q      stubQuerier
		want   verdict.Result
		reason string
		checks bool
	}{
		{name: "good numbers pass", q: stubQuerier{canary: good, stable: good}, want: verdict.ResultPass, checks: true},
		{name: "bad numbers fail", q: stubQuerier{canary: group(make([]float64, 500), 250), stable: good}, want: verdict.ResultFail, reason: "canary error rate 50% > 1%", checks: true},
		{name: "unreachable is inconclusive", q: stubQuerier{err: unreachable}, want: verdict.ResultInconclusive, reason: "InfluxDB at http://127.0.0.1:1: connect: connection refused"},
		{name: "good numbers with an error are no pass", q: stubQuerier{canary: good, stable: good, err: unreachable}, want: verdict.ResultInconclusive},
		{name: "no data is inconclusive and says why", q: stubQuerier{stable: good, err: noData}, want: verdict.ResultInconclusive, reason: "no data: no requests of the canary servers canary1", checks: true},
		{name: "no data with good numbers is no pass", q: stubQuerier{canary: good, stable: good, err: noData}, want: verdict.ResultInconclusive, checks: true},
		{name: "no latency but every request failed is a fail", q: stubQuerier{canary: verdict.Metrics{Requests: 500, Errors: 500, ErrorRate: 100}, stable: good, err: noData}, want: verdict.ResultFail, checks: true},
		{name: "caller gone is inconclusive", q: stubQuerier{err: fmt.Errorf("analysis: query stopped: %w", context.Canceled)}, want: verdict.ResultInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			v, err := NewAnalyzer(tt.q, th).Analyze(context.Background(), verdict.Window{From: now.Add(-time.Minute), To: now, Share: 10})
			if v.Result != tt.want {
				t.Fatalf("result %s (%s), want %s", v.Result, v.Reason, tt.want)
			}
			if !errors.Is(err, tt.q.err) || (tt.q.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.q.err)
			}
			if v.Reason == "" || strings.HasPrefix(v.Reason, "analysis: ") {
				t.Errorf("reason %q", v.Reason)
			}
			if tt.reason != "" && !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.reason)
			}
			if (len(v.Checks) > 0) != tt.checks {
				t.Errorf("%d checks, want some: %v", len(v.Checks), tt.checks)
			}
			if len(v.Queries) != 1 {
				t.Errorf("queries %q: the evidence is lost", v.Queries)
			}
		})
	}
}
