package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestJudge(t *testing.T) {
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP50: ms(100), MaxP95: ms(300), MaxP99: ms(500), MaxP95Ratio: 1.25, LatencySlack: ms(5)}
	healthy := Metrics{Requests: 200, P50: ms(3), P95: ms(8), P99: ms(12)}
	stable := Metrics{Requests: 1800, Errors: 2, ErrorRate: 100 * 2.0 / 1800, P50: ms(3), P95: ms(8), P99: ms(12)}
	with := func(m Metrics, f func(*Metrics)) Metrics { f(&m); return m }
	withTh := func(f func(*Thresholds)) Thresholds { th := th; f(&th); return th }
	tests := []struct {
		name   string
		canary Metrics
		stable Metrics
		th     *Thresholds
		share  float64
		want   Result
		// failing is the check that must fail (the first, whose Detail is the Reason).
		failing string
		// checks must have these results.
		checks map[string]Result
		reason string
	}{
		{name: "healthy canary passes", canary: healthy, stable: stable, share: 10, want: ResultPass, reason: "all 8 checks pass (canary 200 requests, 0% errors, p95 8ms; stable 1800 requests"},
		{name: "absolute error rate over the limit fails", canary: with(healthy, func(m *Metrics) { m.Requests, m.Errors, m.ErrorRate = 212, 103, 100*103.0/212 }), stable: stable, share: 10,
			want: ResultFail, failing: "error_rate", reason: "canary error rate 48.58% > 1% (103 of 212 requests)"},
		{name: "error rate above stable's by more than the margin fails", canary: with(healthy, func(m *Metrics) { m.Requests, m.Errors, m.ErrorRate = 400, 3, 0.75 }), stable: stable, share: 10,
			want: ResultFail, failing: "error_rate_increase", reason: "canary error rate 0.75% > stable's 0.11% + 0.5 points (3 of 400 canary requests, 2 of 1800 stable)"},
		{name: "error rate within the margin over stable's passes", canary: with(healthy, func(m *Metrics) { m.Requests, m.Errors, m.ErrorRate = 400, 2, 0.5 }), stable: stable, share: 10, want: ResultPass},
		{name: "p50 over the absolute limit fails", canary: with(healthy, func(m *Metrics) { m.P50 = ms(101) }), stable: stable, share: 10,
			want: ResultFail, failing: "latency_p50", reason: "canary p50 101ms > 100ms (200 requests)"},
		{name: "p95 over the absolute limit fails", canary: with(healthy, func(m *Metrics) { m.P95 = ms(301) }), stable: stable, share: 10,
			want: ResultFail, failing: "latency_p95", reason: "canary p95 301ms > 300ms"},
		{name: "p99 over the absolute limit fails", canary: with(healthy, func(m *Metrics) { m.P99 = ms(650) }), stable: stable, share: 10,
			want: ResultFail, failing: "latency_p99", reason: "canary p99 650ms > 500ms"},
		{name: "a latency exactly at its limit passes", canary: with(healthy, func(m *Metrics) { m.P99 = ms(500) }), stable: stable, share: 10, want: ResultPass},
		{name: "p95 far above stable's fails", canary: with(healthy, func(m *Metrics) { m.P95 = ms(260) }), stable: stable, share: 10,
			want: ResultFail, failing: "p95_vs_stable", reason: "canary p95 260ms > 15ms (1.25 × stable p95 8ms + 5ms)"},
		{name: "p95 a few ms above stable's is within the slack", canary: with(healthy, func(m *Metrics) { m.P95 = ms(15) }), stable: stable, share: 10, want: ResultPass},
		{name: "absolute latency limits of 0 are off", canary: with(healthy, func(m *Metrics) { m.P50, m.P95, m.P99 = ms(9000), ms(9000), ms(9000) }), stable: with(stable, func(m *Metrics) { m.P95 = ms(9000) }),
			th: &Thresholds{MinRequests: 50, MaxErrorRate: 1}, share: 10, want: ResultPass},
		{name: "too few canary requests is inconclusive, even with errors", canary: Metrics{Requests: 12, Errors: 6, ErrorRate: 50}, stable: stable, share: 10,
			want: ResultInconclusive, reason: "canary has 12 requests (6 errors), needs at least 50 to judge",
			checks: map[string]Result{"canary_requests": ResultInconclusive, "error_rate": ResultInconclusive, "latency_p99": ResultInconclusive, "error_rate_increase": ResultInconclusive, "stable_requests": ResultPass}},
		{name: "too few stable requests is inconclusive", canary: healthy, stable: Metrics{Requests: 3}, share: 10,
			want: ResultInconclusive, reason: "stable has 3 requests (0 errors), needs at least 50",
			checks: map[string]Result{"error_rate": ResultPass, "error_rate_increase": ResultInconclusive, "p95_vs_stable": ResultInconclusive}},
		{name: "a bad canary fails even with too few stable requests", canary: with(healthy, func(m *Metrics) { m.Errors, m.ErrorRate = 100, 50 }), stable: Metrics{Requests: 3}, share: 10,
			want: ResultFail, failing: "error_rate"},
		{name: "one request short of the minimum is inconclusive", canary: with(healthy, func(m *Metrics) { m.Requests = 49 }), stable: stable, share: 10, want: ResultInconclusive},
		{name: "MinRequests 0 means the default of 50", canary: with(healthy, func(m *Metrics) { m.Requests = 49 }), stable: stable, th: &Thresholds{MaxErrorRate: 1}, share: 10, want: ResultInconclusive,
			reason: "needs at least 50"},
		{name: "no data at all is inconclusive", share: 10, want: ResultInconclusive, reason: "canary has 0 requests"},
		{name: "at 100% the absolute checks decide and the relative ones are skipped", canary: healthy, stable: Metrics{}, share: 100, want: ResultPass,
			checks: map[string]Result{"stable_requests": ResultPass, "error_rate_increase": ResultPass, "p95_vs_stable": ResultPass}},
		{name: "above 100% is treated as 100%", canary: healthy, stable: Metrics{}, share: 150, want: ResultPass},
		{name: "at 100% a bad canary still fails", canary: with(healthy, func(m *Metrics) { m.Errors, m.ErrorRate = 100, 50 }), share: 100, want: ResultFail, failing: "error_rate"},
		{name: "at 100% too few canary requests is still inconclusive", canary: Metrics{Requests: 10}, share: 100, want: ResultInconclusive},
		{name: "at 0% the canary has no requests: inconclusive", canary: Metrics{}, stable: stable, share: 0, want: ResultInconclusive},
		{name: "NaN canary error rate fails", canary: with(healthy, func(m *Metrics) { m.ErrorRate = math.NaN() }), stable: stable, share: 10, want: ResultFail, failing: "error_rate", reason: "n/a"},
		{name: "NaN stable error rate fails the relative check", canary: healthy, stable: with(stable, func(m *Metrics) { m.ErrorRate = math.NaN() }), share: 10, want: ResultFail, failing: "error_rate_increase"},
		{name: "infinite canary error rate fails", canary: with(healthy, func(m *Metrics) { m.ErrorRate = math.Inf(1) }), stable: stable, share: 10, want: ResultFail, failing: "error_rate"},
		{name: "NaN error rate limit fails", canary: healthy, stable: stable, th: ptr(withTh(func(th *Thresholds) { th.MaxErrorRate = math.NaN() })), share: 10, want: ResultFail, failing: "error_rate"},
		{name: "NaN error rate margin fails", canary: healthy, stable: stable, th: ptr(withTh(func(th *Thresholds) { th.MaxErrorRateIncrease = math.NaN() })), share: 10, want: ResultFail, failing: "error_rate_increase"},
		{name: "NaN p95 ratio fails", canary: healthy, stable: stable, th: ptr(withTh(func(th *Thresholds) { th.MaxP95Ratio = math.NaN() })), share: 10, want: ResultFail, failing: "p95_vs_stable"},
		{name: "NaN share compares with stable", canary: healthy, stable: Metrics{Requests: 3}, share: math.NaN(), want: ResultInconclusive, checks: map[string]Result{"stable_requests": ResultInconclusive}},
		{name: "zero error rate limit: any canary error fails", canary: with(healthy, func(m *Metrics) { m.Errors, m.ErrorRate = 1, 0.5 }), stable: stable, th: ptr(withTh(func(th *Thresholds) { th.MaxErrorRate = 0 })), share: 10,
			want: ResultFail, failing: "error_rate"},
		{name: "zero error rate limit: no errors pass", canary: healthy, stable: stable, th: ptr(withTh(func(th *Thresholds) { th.MaxErrorRate = 0 })), share: 10, want: ResultPass},
		{name: "stable p95 of 0ms: the slack alone is the limit", canary: with(healthy, func(m *Metrics) { m.P95 = ms(6) }), stable: with(stable, func(m *Metrics) { m.P95 = 0 }), share: 10,
			want: ResultFail, failing: "p95_vs_stable", reason: "canary p95 6ms > 5ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := th
			if tt.th != nil {
				th = *tt.th
			}
			v := Judge(tt.canary, tt.stable, th, tt.share)
			if v.Result != tt.want {
				t.Fatalf("result %s, want %s (%s)\n%s", v.Result, tt.want, v.Reason, dumpChecks(v.Checks))
			}
			if tt.failing != "" {
				first := ""
				for _, c := range v.Checks {
					if c.Result == ResultFail {
						first = c.Name
						if c.Detail != v.Reason {
							t.Errorf("reason %q is not the failing check's detail %q", v.Reason, c.Detail)
						}
						break
					}
				}
				if first != tt.failing {
					t.Errorf("first failing check %q, want %q\n%s", first, tt.failing, dumpChecks(v.Checks))
				}
			}
			byName := map[string]Check{}
			for _, c := range v.Checks {
				byName[c.Name] = c
				if c.Detail == "" || strings.Contains(c.Detail, "\n") {
					t.Errorf("check %s: detail %q is not one line", c.Name, c.Detail)
				}
			}
			for name, want := range tt.checks {
				if got := byName[name].Result; got != want {
					t.Errorf("check %s: %s, want %s (%s)", name, got, want, byName[name].Detail)
				}
			}
			if !(tt.share < 100) && !math.IsNaN(tt.share) {
				for _, name := range []string{"stable_requests", "error_rate_increase", "p95_vs_stable"} {
					if !strings.HasPrefix(byName[name].Detail, "skipped: stable carries no traffic") {
						t.Errorf("check %s at %v%%: %q, want it skipped", name, tt.share, byName[name].Detail)
					}
				}
			}
			if tt.reason != "" && !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.reason)
			}
			if v.Canary.Requests != tt.canary.Requests || v.Stable.Requests != tt.stable.Requests || v.Canary.P95 != tt.canary.P95 {
				t.Errorf("verdict does not carry the metrics judged")
			}
		})
	}
}

// TestJudgeNames: the checks keep their names and order from step to step, whatever the numbers.
func TestJudgeNames(t *testing.T) {
	th := Thresholds{MaxErrorRate: 1, MaxP50: 1, MaxP95: 1, MaxP99: 1, MaxP95Ratio: 2}
	want := "canary_requests stable_requests error_rate latency_p50 latency_p95 latency_p99 error_rate_increase p95_vs_stable"
	for _, share := range []float64{0, 10, 100} {
		for _, m := range []Metrics{{}, {Requests: 1000, Errors: 1000, ErrorRate: 100, P95: time.Hour}} {
			var names []string
			for _, c := range Judge(m, m, th, share).Checks {
				names = append(names, c.Name)
			}
			if got := strings.Join(names, " "); got != want {
				t.Errorf("share %v: checks %s, want %s", share, got, want)
			}
		}
	}
}

// TestJudgeProperties checks, over random inputs, what must hold whatever the numbers: a pass needs
// every check to pass and enough requests; a verdict is fail exactly when a check fails.
func TestJudgeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	metrics := func() Metrics {
		n := rng.Int64N(300)
		e := rng.Int64N(n + 1)
		m := Metrics{Requests: n, Errors: e, P50: ms(rng.Float64() * 50), P95: ms(rng.Float64() * 200), P99: ms(rng.Float64() * 400)}
		if n > 0 {
			m.ErrorRate = 100 * float64(e) / float64(n)
		}
		if rng.IntN(20) == 0 {
			m.ErrorRate = math.NaN()
		}
		return m
	}
	for i := 0; i < 20000; i++ {
		canary, stable := metrics(), metrics()
		th := Thresholds{MinRequests: rng.Int64N(100), MaxErrorRate: rng.Float64() * 5, MaxErrorRateIncrease: rng.Float64() * 2,
			MaxP99: ms(rng.Float64() * 500), MaxP95Ratio: rng.Float64() * 2, LatencySlack: ms(rng.Float64() * 10)}
		share := []float64{1, 10, 50, 100, math.NaN()}[rng.IntN(5)]
		v := Judge(canary, stable, th, share)
		minReq := max(th.MinRequests, 1)
		if th.MinRequests <= 0 {
			minReq = DefaultMinRequests
		}
		anyFail := false
		for _, c := range v.Checks {
			anyFail = anyFail || c.Result == ResultFail
			if v.Result == ResultPass && c.Result != ResultPass {
				t.Fatalf("pass with check %s %s", c.Name, c.Result)
			}
		}
		if anyFail != (v.Result == ResultFail) {
			t.Fatalf("result %s, a check failed: %v", v.Result, anyFail)
		}
		if v.Result == ResultPass && (canary.Requests < minReq || (!(share >= 100) && stable.Requests < minReq)) {
			t.Fatalf("pass with %d canary and %d stable requests, min %d, share %v", canary.Requests, stable.Requests, minReq, share)
		}
		if v.Result == ResultPass && !(canary.ErrorRate <= th.MaxErrorRate) {
			t.Fatalf("pass with canary error rate %v > %v", canary.ErrorRate, th.MaxErrorRate)
		}
		if v.Reason == "" {
			t.Fatal("no reason")
		}
	}
}

func ptr[T any](v T) *T { return &v }

func dumpChecks(cs []Check) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.Name + " " + string(c.Result) + ": " + c.Detail + "\n")
	}
	return b.String()
}

func BenchmarkJudge(b *testing.B) {
	th := Thresholds{MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP99: ms(500), MaxP95Ratio: 1.25, LatencySlack: ms(5)}
	canary := Metrics{Requests: 200, P50: ms(3), P95: ms(8), P99: ms(12)}
	stable := Metrics{Requests: 1800, Errors: 2, ErrorRate: 0.11, P50: ms(3), P95: ms(8), P99: ms(12)}
	for b.Loop() {
		Judge(canary, stable, th, 10)
	}
}
