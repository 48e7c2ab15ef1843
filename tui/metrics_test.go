package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// withChecks is the in-progress release whose latest verdict has these checks.
func withChecks(checks ...verdict.Check) Model {
	v := mkVerdict(verdict.ResultPass, 0, 14*time.Millisecond)
	v.Checks = checks
	evs := append(inProgress(), ev(86*time.Second, release.Event{Kind: release.KindAnalysis, Phase: release.PhaseBaking, Step: 2, Verdict: v}))
	return model(evs, 120, 40, nil)
}

func rowNamed(t *testing.T, m Model, name string) row {
	t.Helper()
	for _, r := range m.rows() {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no row %q in %v", name, m.rows())
	return row{}
}

// TestRowsChooseChecksByMetric: a row shows the checks about its metric, whatever they are called.
func TestRowsChooseChecksByMetric(t *testing.T) {
	m := withChecks(
		verdict.Check{Name: "tail", Metric: verdict.MetricP95, Result: verdict.ResultPass, Limit: 30, Unit: "ms"},
		verdict.Check{Name: "tail vs stable", Metric: verdict.MetricP95, Result: verdict.ResultFail, Limit: 20, Unit: "ms"},
		verdict.Check{Name: "p90 tail", Metric: verdict.MetricP90, Result: verdict.ResultFail, Limit: 5, Unit: "ms"},
	)
	r := rowNamed(t, m, "p95")
	if r.result != verdict.ResultFail || r.limit != "≤ 20ms" || len(r.checks) != 2 {
		t.Errorf("p95 row: result %q limit %q checks %d; want fail, ≤ 20ms, 2", r.result, r.limit, len(r.checks))
	}
	for _, name := range []string{"requests", "error rate", "p50", "p99"} {
		if r := rowNamed(t, m, name); r.result != "" || r.limit != "" {
			t.Errorf("%s row judged by another metric's checks: result %q limit %q", name, r.result, r.limit)
		}
	}
}

// TestSkippedChecksHoldNoLimit: a check that did not apply (stable carries no traffic) is listed but
// its limit is not the row's.
func TestSkippedChecksHoldNoLimit(t *testing.T) {
	m := withChecks(
		verdict.Check{Name: verdict.CheckErrorRate, Metric: verdict.MetricErrorRate, Result: verdict.ResultPass, Limit: 1, Unit: "%"},
		verdict.Check{Name: verdict.CheckErrorRateIncrease, Metric: verdict.MetricErrorRate, Result: verdict.ResultPass, Skipped: true, Limit: 0.5, Unit: "%",
			Detail: "stable carries no traffic at this step"},
		verdict.Check{Name: verdict.CheckStableRequests, Metric: verdict.MetricRequests, Result: verdict.ResultPass, Skipped: true, Limit: 10, Unit: "requests"},
		verdict.Check{Name: verdict.CheckCanaryRequests, Metric: verdict.MetricRequests, Result: verdict.ResultPass, Limit: 50, Unit: "requests"},
	)
	if r := rowNamed(t, m, "error rate"); r.limit != "≤ 1%" || len(r.checks) != 2 {
		t.Errorf("error rate row: limit %q with %d checks, want ≤ 1%% with 2", r.limit, len(r.checks))
	}
	if r := rowNamed(t, m, "requests"); r.limit != "≥ 50" {
		t.Errorf("requests row: limit %q, want ≥ 50", r.limit)
	}
}

// TestCustomChecksHaveARowEach: each custom check gets a row of its own, named without the prefix, in
// the verdict's order; its explanation is that check alone.
func TestCustomChecksHaveARowEach(t *testing.T) {
	m := withChecks(
		verdict.Check{Name: verdict.CustomPrefix + "queue_depth", Metric: verdict.MetricCustom, Result: verdict.ResultPass, Canary: 3, Stable: 2, Limit: 10, Detail: "custom metric queue_depth: canary 3 ≤ 10 (stable 2)"},
		verdict.Check{Name: verdict.CustomPrefix + "cache_hits", Metric: verdict.MetricCustom, Result: verdict.ResultFail, Canary: 40, Stable: 90, Unit: "%", Detail: "custom metric cache_hits: canary 40 < 80"},
	)
	rows := m.rows()
	var names []string
	for _, r := range rows[len(tableRows):] {
		names = append(names, r.name)
	}
	if got := strings.Join(names, ","); got != "queue_depth,cache_hits" {
		t.Fatalf("custom rows %q, want queue_depth,cache_hits", got)
	}
	if r := rows[len(tableRows)+1]; r.canary != "40%" || r.delta != "-50%" || r.result != verdict.ResultFail {
		t.Errorf("cache_hits row: canary %q delta %q result %q", r.canary, r.delta, r.result)
	}
	m, _ = press(m, "down", "down", "down", "down", "down", "down", "down", "enter")
	out := m.View()
	if !strings.Contains(out, "Why cache_hits: ✗ fail") || !strings.Contains(out, "canary 40 < 80") || strings.Contains(out, "queue_depth:") {
		t.Errorf("explain of cache_hits:\n%s", out)
	}
}
