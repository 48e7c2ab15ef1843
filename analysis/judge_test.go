package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// group builds a group's Metrics from its requests' latencies (ms) and error count, as a store would:
// nearest-rank percentiles, every latency in the sample.
func group(lat []float64, errors int64) verdict.Metrics {
	s := slices.Clone(lat)
	slices.Sort(s)
	m := verdict.Metrics{Requests: int64(len(lat)), Errors: errors, Errors5xx: errors, Timed: int64(len(lat)), Latencies: lat}
	if len(s) > 0 {
		m.ErrorRate = 100 * float64(errors) / float64(len(s))
		m.P50, m.P90, m.P95, m.P99 = ms(nearestRank(s, 0.5)), ms(nearestRank(s, 0.9)), ms(nearestRank(s, 0.95)), ms(nearestRank(s, 0.99))
	}
	return m
}

// nearestRank is the value at rank ceil(q·n) of sorted values: what both backends return.
func nearestRank(sorted []float64, q float64) float64 {
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

// latencies draws n latencies of a service answering in base ms plus an exponential tail of mean tail ms,
// in whole milliseconds as HAProxy logs them.
func latencies(rng *rand.Rand, n int, base, tail float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Round(base + rng.ExpFloat64()*tail)
	}
	return out
}

func window(share float64) verdict.Window {
	now := time.Now()
	return verdict.Window{From: now.Add(-time.Minute), To: now, Share: share}
}

func TestJudge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP50: ms(100), MaxP95: ms(300), MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5)}
	stable := group(latencies(rng, 1800, 3, 2), 2)
	healthy := group(latencies(rng, 200, 3, 2), 0)
	withTh := func(f func(*Thresholds)) *Thresholds { th := th; f(&th); return &th }
	withLat := func(m verdict.Metrics, lat []float64) verdict.Metrics { return group(lat, m.Errors) }
	withErrors := func(n, e int64) verdict.Metrics {
		m := group(latencies(rng, int(n), 3, 2), e)
		return m
	}
	tests := []struct {
		name           string
		canary, stable verdict.Metrics
		th             *Thresholds
		w              verdict.Window
		want           verdict.Result
		// failing is the first failing check (whose Detail is the Reason).
		failing string
		checks  map[string]verdict.Result
		reason  string
	}{
		{name: "healthy canary passes", canary: healthy, stable: stable, want: verdict.ResultPass, reason: "all 10 checks pass (canary 200 requests, 0% errors"},
		{name: "half the requests failing fails beyond doubt", canary: withErrors(212, 103), stable: stable,
			want: verdict.ResultFail, failing: "error_rate", reason: "canary error rate 48.58% > 1% (103 of 212 requests); exact binomial p = "},
		{name: "a few errors over the limit are not yet beyond doubt", canary: withErrors(100, 3), stable: stable,
			want: verdict.ResultInconclusive, reason: "canary error rate 3% > 1% (3 of 100 requests), but not yet beyond doubt (exact binomial p = 0.079 ≥ α 0.02); about"},
		{name: "an outage of everyone fails the canary and says stable failed as much", canary: withErrors(100, 72), stable: withErrors(900, 630),
			want: verdict.ResultFail, failing: "error_rate", reason: "; stable failed as much (70% errors of 900 requests): the cause may be shared (an outage), not the canary: retry the release once it is over"},
		{name: "error rate above stable's plus the margin fails", canary: withErrors(600, 15), stable: withErrors(5000, 0),
			th: withTh(func(th *Thresholds) { th.MaxErrorRate = 5 }), want: verdict.ResultFail, failing: "error_rate_increase",
			reason: "canary error rate 2.5% > stable's 0% + 0.5 points (15 of 600 canary requests, 0 of 5000 stable)"},
		{name: "error rate within the margin over stable's passes", canary: withErrors(400, 2), stable: withErrors(1800, 2), want: verdict.ResultPass},
		{name: "p50 over the absolute limit fails", canary: withLat(healthy, latencies(rng, 200, 150, 10)), stable: stable,
			want: verdict.ResultFail, failing: "latency_p50", reason: "> 100ms (200 requests)"},
		{name: "p99 over its limit on 3 of 200 requests is not a pass", canary: withLat(healthy, append(latencies(rng, 197, 3, 2), 900, 950, 990)), stable: stable,
			want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"latency_p99": verdict.ResultInconclusive}},
		{name: "one slow request of 75 is no fatter tail than stable's: p99 of 75 requests is their slowest", canary: withLat(healthy, append(latencies(rng, 74, 3, 2), 60)),
			stable: group(latencies(rng, 220, 3, 2), 0), th: withTh(func(th *Thresholds) { th.MaxP99, th.MaxP95 = 0, 0 }), want: verdict.ResultPass,
			checks: map[string]verdict.Result{"p99_vs_stable": verdict.ResultPass}},
		{name: "a fat tail of 20% of 75 requests fails though a p99 of 75 is not estimable", canary: withLat(healthy, append(latencies(rng, 60, 3, 2), latencies(rng, 15, 200, 10)...)),
			stable: group(latencies(rng, 220, 3, 2), 0), th: withTh(func(th *Thresholds) { th.MaxP99, th.MaxP95 = 0, 0 }), want: verdict.ResultFail,
			checks: map[string]verdict.Result{"p99_vs_stable": verdict.ResultFail, "p95_vs_stable": verdict.ResultFail}},
		{name: "a bad tail of 1.8% of 5000 requests beyond a p99 limit fails", canary: withLat(healthy, append(latencies(rng, 4910, 3, 2), latencies(rng, 90, 2000, 0)...)),
			stable: group(latencies(rng, 20000, 3, 2), 2), th: withTh(func(th *Thresholds) { th.MaxP99 = ms(800) }),
			want: verdict.ResultFail, failing: "latency_p99", checks: map[string]verdict.Result{"latency_p99": verdict.ResultFail, "p99_vs_stable": verdict.ResultFail}},
		{name: "percentiles of 3 timed requests out of 1000 are not judged", canary: func() verdict.Metrics {
			m := withErrors(1000, 0)
			t := group([]float64{3, 4, 5}, 0)
			m.Timed, m.Latencies, m.P50, m.P90, m.P95, m.P99 = 3, t.Latencies, t.P50, t.P90, t.P95, t.P99
			return m
		}(), stable: stable, want: verdict.ResultInconclusive,
			checks: map[string]verdict.Result{"latency_p50": verdict.ResultInconclusive, "latency_p99": verdict.ResultInconclusive, "latency_shift": verdict.ResultInconclusive, "p95_vs_stable": verdict.ResultInconclusive, "error_rate": verdict.ResultPass}},
		{name: "canary 5xx that HAProxy counted and InfluxDB lost still count", canary: withErrors(400, 2), stable: stable,
			w:    verdict.Window{Share: 18, Canary: &verdict.Tally{Requests: 400, Errors5xx: 7}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2}},
			want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"error_rate": verdict.ResultInconclusive, "telemetry": verdict.ResultPass},
			reason: "canary error rate 1.75% > 1% (7 of 400 requests"},
		{name: "p99 over its limit on 5 of 200 requests is not beyond doubt", canary: withLat(healthy, append(latencies(rng, 195, 3, 2), 900, 950, 990, 991, 992)), stable: stable,
			th: withTh(func(th *Thresholds) { th.MaxLatencyRatio = 0 }), want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"latency_p99": verdict.ResultInconclusive},
			reason: "canary p99 990ms > 500ms (200 requests), but not yet beyond doubt (exact binomial p = 0.052 ≥ α 0.02); about 100 more canary requests needed"},
		{name: "p99 over its limit on 10% of requests fails", canary: withLat(healthy, append(latencies(rng, 180, 3, 2), latencies(rng, 20, 900, 10)...)), stable: stable,
			// 10% slow requests also put p95 beyond its 300ms limit: more than 5% are slower, which fails it first.
			want: verdict.ResultFail, failing: "latency_p95", checks: map[string]verdict.Result{"latency_p99": verdict.ResultFail, "p99_vs_stable": verdict.ResultFail}},
		{name: "a slower canary fails the shift test", canary: withLat(healthy, latencies(rng, 200, 40, 2)), stable: stable,
			want: verdict.ResultFail, failing: "latency_shift", reason: "Mann-Whitney U p = "},
		{name: "a tiny but significant shift passes", canary: withLat(healthy, latencies(rng, 3000, 4, 2)), stable: group(latencies(rng, 5000, 3, 2), 0),
			want: verdict.ResultPass, checks: map[string]verdict.Result{"latency_shift": verdict.ResultPass}},
		{name: "a fatter tail at the same median fails", canary: withLat(healthy, append(latencies(rng, 170, 3, 2), latencies(rng, 30, 120, 30)...)), stable: stable,
			th: withTh(func(th *Thresholds) { th.MaxP95, th.MaxP99 = 0, 0 }), want: verdict.ResultFail, failing: "p95_vs_stable",
			checks: map[string]verdict.Result{"latency_shift": verdict.ResultPass, "p99_vs_stable": verdict.ResultFail}},
		{name: "absolute latency limits of 0 are off", canary: withLat(healthy, latencies(rng, 200, 9000, 2)), stable: stable,
			th: &Thresholds{MinRequests: 50, MaxErrorRate: 1}, want: verdict.ResultPass},
		{name: "too few canary requests is inconclusive", canary: withErrors(12, 0), stable: stable,
			want: verdict.ResultInconclusive, reason: "canary has 12 requests (0 errors), needs at least 50 to pass; about 38 more canary requests needed, about",
			checks: map[string]verdict.Result{"canary_requests": verdict.ResultInconclusive, "error_rate": verdict.ResultInconclusive, "stable_requests": verdict.ResultPass}},
		{name: "one slow request of a cold start does not fail the canary", canary: group([]float64{13}, 0), stable: group(latencies(rng, 200, 0, 0.5), 0),
			want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"latency_shift": verdict.ResultInconclusive},
			reason: "canary has 1 requests (0 errors), needs at least 50 to pass"},
		{name: "one failed request does not fail the canary", canary: withErrors(1, 1), stable: stable, want: verdict.ResultInconclusive,
			checks: map[string]verdict.Result{"error_rate": verdict.ResultInconclusive}},
		{name: "a clearly bad canary fails before the minimum", canary: withErrors(30, 15), stable: stable, want: verdict.ResultFail, failing: "error_rate"},
		{name: "too few stable requests is inconclusive", canary: healthy, stable: withErrors(3, 0),
			want: verdict.ResultInconclusive, reason: "stable has 3 requests (0 errors), needs at least 50",
			checks: map[string]verdict.Result{"error_rate": verdict.ResultPass, "error_rate_increase": verdict.ResultInconclusive, "p95_vs_stable": verdict.ResultInconclusive}},
		{name: "MinRequests 0 means the default of 50", canary: withErrors(49, 0), stable: stable, th: &Thresholds{MaxErrorRate: 1}, want: verdict.ResultInconclusive, reason: "needs at least 50"},
		{name: "no data at all is inconclusive", want: verdict.ResultInconclusive, reason: "canary has 0 requests"},
		{name: "at 100% the relative checks are skipped", canary: healthy, w: window(100), want: verdict.ResultPass,
			checks: map[string]verdict.Result{"stable_requests": verdict.ResultPass, "error_rate_increase": verdict.ResultPass, "latency_shift": verdict.ResultPass, "p95_vs_stable": verdict.ResultPass}},
		{name: "at 100% a bad canary still fails", canary: withErrors(200, 100), w: window(100), want: verdict.ResultFail, failing: "error_rate"},
		{name: "NaN canary error rate fails", canary: func() verdict.Metrics { m := healthy; m.ErrorRate = math.NaN(); return m }(), stable: stable, want: verdict.ResultFail, failing: "error_rate", reason: "n/a"},
		{name: "NaN error rate limit fails", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) { th.MaxErrorRate = math.NaN() }), want: verdict.ResultFail, failing: "error_rate"},
		{name: "NaN error rate margin fails", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) { th.MaxErrorRateIncrease = math.NaN() }), want: verdict.ResultFail, failing: "error_rate_increase"},
		{name: "NaN latency ratio fails", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) { th.MaxLatencyRatio = math.NaN() }), want: verdict.ResultFail, failing: "latency_shift"},
		{name: "zero error rate limit: errors fail", canary: withErrors(200, 2), stable: stable, th: withTh(func(th *Thresholds) { th.MaxErrorRate = 0 }), want: verdict.ResultFail, failing: "error_rate"},
		{name: "HAProxy counted many more requests than InfluxDB: inconclusive", canary: healthy, stable: stable,
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 300}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2}},
			want: verdict.ResultInconclusive, reason: "telemetry disagrees with HAProxy by more than 10%: InfluxDB has 200 canary requests, HAProxy counted 300"},
		{name: "HAProxy saw 5xx answers InfluxDB lacks: they count against the canary", canary: healthy, stable: stable,
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 200, Errors5xx: 40}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2}},
			want: verdict.ResultFail, failing: "error_rate", checks: map[string]verdict.Result{"telemetry": verdict.ResultInconclusive},
			reason: "canary error rate 20% > 1% (40 of 200 requests, 40 of them counted by HAProxy only)"},
		{name: "attempts HAProxy retried elsewhere count against the canary", canary: healthy, stable: stable,
			// A canary resetting 20% of its connections: each reset was retried on stable, so users saw no
			// error and the log names stable; only the canary server's own counters tell.
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 200, Failed: 50}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2}},
			want: verdict.ResultFail, failing: "error_rate", checks: map[string]verdict.Result{"telemetry": verdict.ResultPass, "error_rate_increase": verdict.ResultFail},
			reason: "canary error rate 20% > 1% (50 of 250 requests, 50 of them attempts HAProxy retried or got no answer for"},
		{name: "stable's failed attempts count against stable", canary: healthy, stable: stable,
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 200}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2, Failed: 200}},
			want: verdict.ResultPass, checks: map[string]verdict.Result{"telemetry": verdict.ResultPass, "error_rate_increase": verdict.ResultPass}},
		{name: "a split far from the step's is not a pass", canary: healthy, stable: withErrors(3000, 2),
			// An operator set the canary's weight lower mid-bake: HAProxy served it 200 of 3,200 requests
			// (6.25%) at a step of 10%, far beyond what 3,200 requests explain.
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 200}, Stable: &verdict.Tally{Requests: 3000, Errors5xx: 2}},
			want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"traffic_share": verdict.ResultInconclusive, "error_rate": verdict.ResultPass},
			reason: "HAProxy served the canary 6.25% of requests (200 of 3200), the step asks 10%"},
		{name: "a split within what the sample explains passes", canary: healthy, stable: stable,
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 200}, Stable: &verdict.Tally{Requests: 1800, Errors5xx: 2}},
			want: verdict.ResultPass, checks: map[string]verdict.Result{"traffic_share": verdict.ResultPass}},
		{name: "a small sample explains a split off the step", canary: withErrors(3, 0), stable: withErrors(60, 0),
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 3}, Stable: &verdict.Tally{Requests: 60}},
			want: verdict.ResultInconclusive, checks: map[string]verdict.Result{"traffic_share": verdict.ResultPass}},
		{name: "counts that agree pass the telemetry check", canary: healthy, stable: stable,
			w:    verdict.Window{Share: 10, Canary: &verdict.Tally{Requests: 203}, Stable: &verdict.Tally{Requests: 1795, Errors5xx: 2}},
			want: verdict.ResultPass, checks: map[string]verdict.Result{"telemetry": verdict.ResultPass}},
		{name: "early look: too few requests to fail yet", canary: withErrors(6, 6), stable: stable, w: verdict.Window{Share: 10, Early: true, Looks: 10},
			want: verdict.ResultInconclusive, reason: "early look: canary has 6 requests, an early verdict needs at least 10"},
		{name: "early look: half failing fails at once", canary: withErrors(20, 10), stable: stable, w: verdict.Window{Share: 10, Early: true, Looks: 30}, want: verdict.ResultFail, failing: "error_rate"},
		{name: "early look: weak evidence does not fail", canary: withErrors(60, 3), stable: stable, w: verdict.Window{Share: 10, Early: true, Looks: 30}, want: verdict.ResultInconclusive},
		{name: "custom metric within its limits passes", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) {
			th.Custom = []CustomMetric{{Name: "bytes", Max: ptr(1000.0), MaxRatio: 2}}
		}), want: verdict.ResultPass, checks: map[string]verdict.Result{"custom_bytes": verdict.ResultPass}},
		{name: "custom metric over its ratio fails", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) {
			th.Custom = []CustomMetric{{Name: "bytes", Max: ptr(1000.0), MaxRatio: 1.5}}
		}), want: verdict.ResultFail, failing: "custom_bytes", reason: "custom metric bytes: canary 800 > 1.5 × stable 500"},
		{name: "custom metric without data is inconclusive", canary: healthy, stable: stable, th: withTh(func(th *Thresholds) {
			th.Custom = []CustomMetric{{Name: "gone", Min: ptr(1.0)}}
		}), want: verdict.ResultInconclusive, reason: "custom metric gone: no data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := th
			if tt.th != nil {
				th = *tt.th
			}
			w := tt.w
			if w.From.IsZero() {
				w.From, w.To = time.Now().Add(-time.Minute), time.Now()
			}
			if w.Share == 0 {
				w.Share = 10
			}
			in := Input{Canary: tt.canary, Stable: tt.stable, Window: w}
			for _, cm := range th.Custom {
				switch cm.Name {
				case "bytes":
					in.Custom = append(in.Custom, CustomValue{Canary: 800, Stable: 500})
				default:
					in.Custom = append(in.Custom, CustomValue{Err: "no data: the query returned no number for canary"})
				}
			}
			v := Judge(in, th)
			if v.Result != tt.want {
				t.Fatalf("result %s, want %s (%s)\n%s", v.Result, tt.want, v.Reason, dumpChecks(v.Checks))
			}
			byName := map[string]verdict.Check{}
			first := ""
			for _, c := range v.Checks {
				byName[c.Name] = c
				if c.Detail == "" || strings.Contains(c.Detail, "\n") {
					t.Errorf("check %s: detail %q is not one line", c.Name, c.Detail)
				}
				if c.Result == verdict.ResultFail && first == "" {
					first = c.Name
					if c.Detail != v.Reason {
						t.Errorf("reason %q is not the failing check's detail %q", v.Reason, c.Detail)
					}
				}
				if c.Result == verdict.ResultFail && c.Test != "" && c.Test != "threshold" && !(c.PValue < c.Alpha) {
					t.Errorf("check %s failed with p %v ≥ α %v", c.Name, c.PValue, c.Alpha)
				}
			}
			if tt.failing != "" && first != tt.failing {
				t.Errorf("first failing check %q, want %q\n%s", first, tt.failing, dumpChecks(v.Checks))
			}
			for name, want := range tt.checks {
				if got := byName[name].Result; got != want {
					t.Errorf("check %s: %s, want %s (%s)", name, got, want, byName[name].Detail)
				}
			}
			if tt.reason != "" && !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.reason)
			}
			if v.Result == verdict.ResultInconclusive && !w.Early && v.More == 0 && byName["telemetry"].Result != verdict.ResultInconclusive {
				t.Errorf("inconclusive without saying how many more requests are needed: %s", v.Reason)
			}
		})
	}
}

// TestJudgeNames: the checks keep their names and order from step to step, whatever the numbers.
func TestJudgeNames(t *testing.T) {
	th := Thresholds{MaxErrorRate: 1, MaxP50: 1, MaxP90: 1, MaxP95: 1, MaxP99: 1, MaxLatencyRatio: 2}
	want := "canary_requests stable_requests error_rate latency_p50 latency_p90 latency_p95 latency_p99 error_rate_increase latency_shift p95_vs_stable p99_vs_stable"
	for _, share := range []float64{0, 10, 100} {
		for _, m := range []verdict.Metrics{{}, group([]float64{1, 2, 3000}, 3)} {
			var names []string
			for _, c := range Judge(Input{Canary: m, Stable: m, Window: verdict.Window{Share: share}}, th).Checks {
				names = append(names, c.Name)
			}
			if got := strings.Join(names, " "); got != want {
				t.Errorf("share %v: checks %s, want %s", share, got, want)
			}
		}
	}
}

// TestJudgeProperties checks, over random inputs, what must hold whatever the numbers: a pass needs
// every check to pass and enough requests; a verdict is fail exactly when a check fails, and a
// statistical check fails only below its α.
func TestJudgeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	metrics := func() verdict.Metrics {
		n := rng.IntN(300)
		m := group(latencies(rng, n, rng.Float64()*20, rng.Float64()*50), rng.Int64N(int64(n)+1))
		if rng.IntN(20) == 0 {
			m.ErrorRate = math.NaN()
		}
		return m
	}
	for range 3000 {
		canary, stable := metrics(), metrics()
		th := Thresholds{MinRequests: rng.Int64N(100), MaxErrorRate: rng.Float64() * 5, MaxErrorRateIncrease: rng.Float64() * 2,
			MaxP99: ms(rng.Float64() * 500), MaxLatencyRatio: rng.Float64() * 2, LatencySlack: ms(rng.Float64() * 10)}
		w := verdict.Window{Share: []float64{1, 10, 50, 100, math.NaN()}[rng.IntN(5)], Early: rng.IntN(3) == 0, Looks: 1 + rng.IntN(30)}
		v := Judge(Input{Canary: canary, Stable: stable, Window: w}, th)
		minReq := th.MinRequests
		if minReq <= 0 {
			minReq = DefaultMinRequests
		}
		anyFail := false
		for _, c := range v.Checks {
			anyFail = anyFail || c.Result == verdict.ResultFail
			if v.Result == verdict.ResultPass && c.Result != verdict.ResultPass {
				t.Fatalf("pass with check %s %s", c.Name, c.Result)
			}
			if c.Result == verdict.ResultFail && c.Test != "" && !(c.PValue < c.Alpha) {
				t.Fatalf("check %s failed with p %v ≥ α %v", c.Name, c.PValue, c.Alpha)
			}
		}
		if w.Early && canary.Requests < DefaultMinRequestsToFail {
			if v.Result != verdict.ResultInconclusive {
				t.Fatalf("early look with %d canary requests: %s", canary.Requests, v.Result)
			}
			continue
		}
		if anyFail != (v.Result == verdict.ResultFail) {
			t.Fatalf("result %s, a check failed: %v", v.Result, anyFail)
		}
		if v.Result == verdict.ResultPass && (canary.Requests < minReq || (!(w.Share >= 100) && stable.Requests < minReq)) {
			t.Fatalf("pass with %d canary and %d stable requests, min %d, share %v", canary.Requests, stable.Requests, minReq, w.Share)
		}
		if v.Result == verdict.ResultPass && !(canary.ErrorRate <= th.MaxErrorRate) {
			t.Fatalf("pass with canary error rate %v > %v", canary.ErrorRate, th.MaxErrorRate)
		}
		if v.Reason == "" {
			t.Fatal("no reason")
		}
	}
}

// TestHealthyCanaryNotAbortedByNoise runs many bakes of a canary drawn from the same distribution as
// stable, each with early looks every few seconds: the early looks and the final verdict together must
// fail such a canary rarely (the final look alone allows α = 2%).
func TestHealthyCanaryNotAbortedByNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5)}
	const bakes, looks = 300, 10
	failed := 0
	for range bakes {
		var cLat, sLat []float64
		var cErr, sErr int64
		for look := 1; look <= looks; look++ {
			// 2 seconds of 100 requests a second, 10% to the canary; 0.2% errors everywhere.
			cLat = append(cLat, latencies(rng, 20, 3, 4)...)
			sLat = append(sLat, latencies(rng, 180, 3, 4)...)
			for range 20 {
				if rng.Float64() < 0.002 {
					cErr++
				}
			}
			for range 180 {
				if rng.Float64() < 0.002 {
					sErr++
				}
			}
			w := verdict.Window{Share: 10, Early: look < looks, Looks: looks - 1}
			v := Judge(Input{Canary: group(cLat, cErr), Stable: group(sLat, sErr), Window: w}, th)
			if v.Result == verdict.ResultFail {
				failed++
				break
			}
		}
	}
	if rate := float64(failed) / bakes; rate > 0.04 {
		t.Errorf("%d of %d healthy canaries failed (%.1f%%)", failed, bakes, 100*rate)
	}
}

func ptr[T any](v T) *T { return &v }

func dumpChecks(cs []verdict.Check) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.Name + " " + string(c.Result) + ": " + c.Detail + "\n")
	}
	return b.String()
}

func BenchmarkJudge(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	th := Thresholds{MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5)}
	in := Input{Canary: group(latencies(rng, SampleSize, 3, 4), 2), Stable: group(latencies(rng, SampleSize, 3, 4), 20), Window: window(10)}
	for b.Loop() {
		Judge(in, th)
	}
}
