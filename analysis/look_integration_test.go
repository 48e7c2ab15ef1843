//go:build integration

package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// TestIntervalCounts: both backends read an interval's counts exactly, [from, to) and no more:
// requests, failed requests (no response included), 5xx answers, timed requests, the timed requests
// slower than each cut, and a sample of the interval's own latencies.
func TestIntervalCounts(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(11, 12))
	type truth struct{ requests, errors, errors5xx, timed int64 }
	var lines []string
	var canaryLat, stableLat []float64
	var c, s truth
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 7 * time.Millisecond) } // 3000 points: 21 s
	for i := range 3000 {
		lat := math.Round(rng.ExpFloat64()*40) + 1
		status := 200.0
		switch {
		case i%97 == 0:
			status, lat = -1, -1 // no response
		case i%41 == 0:
			status = 503
		case i%53 == 0:
			status = 404
		}
		server, g, lats := "stable1", &s, &stableLat
		if i%4 == 0 {
			server, g, lats = "canary1", &c, &canaryLat
		}
		lines = append(lines, point(backend, server, status, lat, at(i)))
		if i >= 1000 && i < 2000 { // the interval read: [at(1000), at(2000))
			g.requests++
			if status < 0 || status >= 500 {
				g.errors++
			}
			if status >= 500 {
				g.errors5xx++
			}
			if lat >= 0 {
				g.timed++
				*lats = append(*lats, lat)
			}
		}
	}
	write(t, lines)
	cuts := Cuts{Canary: []Cut{{Name: "limit_p99", Ms: 100}, {Name: "margin_p95", Ms: 37.5}}, Stable: []Cut{{Name: "p95", Ms: 120}}}
	above := func(lats []float64, cut float64) int64 {
		var n int64
		for _, v := range lats {
			if v > cut {
				n++
			}
		}
		return n
	}
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			canary, stable, queries, err := newStore(t, lang, testConfig(backend)).Interval(context.Background(), at(1000), at(2000), cuts)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []struct {
				name string
				got  Interval
				want truth
				lats []float64
				cuts []Cut
			}{{"canary", canary, c, canaryLat, cuts.Canary}, {"stable", stable, s, stableLat, cuts.Stable}} {
				if got := (truth{g.got.Requests, g.got.Errors, g.got.Errors5xx, g.got.Timed}); got != g.want {
					t.Errorf("%s counts %+v, want %+v", g.name, got, g.want)
				}
				for i, cut := range g.cuts {
					if i >= len(g.got.Above) || g.got.Above[i] != above(g.lats, cut.Ms) {
						t.Errorf("%s above %s: %v, want %d", g.name, cut.Name, g.got.Above, above(g.lats, cut.Ms))
					}
				}
				if len(g.got.Latencies) != len(g.lats) || !slices.Equal(slices.Sorted(slices.Values(g.got.Latencies)), slices.Sorted(slices.Values(g.lats))) {
					t.Errorf("%s sample of %d latencies, want the interval's %d", g.name, len(g.got.Latencies), len(g.lats))
				}
			}
			if len(queries) == 0 || !strings.Contains(queries[0], backend) {
				t.Errorf("queries %q", queries)
			}
			tc, ts, _, err := newStore(t, lang, testConfig(backend)).Totals(context.Background(), at(1000), at(2000))
			if err != nil {
				t.Fatal(err)
			}
			if got := (truth{tc.Requests, tc.Errors, tc.Errors5xx, tc.Timed}); got != c || ts.Requests != s.requests || ts.Timed != s.timed || len(tc.Latencies) != 0 {
				t.Errorf("totals: canary %+v, stable %+v; want %+v and %+v", tc, ts, c, s)
			}
		})
	}
}

// TestAnalyzeSequentialOnRealData: looks of 2 seconds over a minute of real points, folded by the
// analyzer: healthy canaries pass the step, failing ones fail within seconds, both backends alike.
func TestAnalyzeSequentialOnRealData(t *testing.T) {
	backend := uniqueBackend(t)
	start := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	rng := rand.New(rand.NewPCG(8, 9))
	lat := func(base, tail float64) float64 { return math.Round(base + rng.ExpFloat64()*tail) }
	var lines []string
	for i := range 6000 {
		lines = append(lines, point(backend, []string{"stable1", "stable2"}[i%2], 200, lat(3, 3), start.Add(time.Duration(i)*10*time.Millisecond)))
	}
	write(t, append(lines, canaryPoints(backend, start, 600, lat)...))
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(5)}
	for _, tt := range []struct {
		name, canary string
		want         verdict.Result
		failing      string
	}{
		{"healthy canary passes", "canary1", verdict.ResultPass, ""},
		{"half the canary's requests failing fails at once", "canary2", verdict.ResultFail, verdict.CheckErrorRate},
		{"a slower canary fails against stable", "canary3", verdict.ResultFail, verdict.CheckLatencyShift},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var reasons []string
			for _, lang := range languages {
				cfg := testConfig(backend, tt.canary)
				cfg.Timeout = 30 * time.Second
				a := NewAnalyzer(newStore(t, lang, cfg), th)
				var seq *verdict.Sequence
				var v verdict.Verdict
				var err error
				looks := 0
				for to := start.Add(2 * time.Second); !to.After(start.Add(time.Minute)); to = to.Add(2 * time.Second) {
					looks++
					early := to.Before(start.Add(time.Minute))
					t0 := time.Now()
					v, err = a.Analyze(context.Background(), verdict.Window{From: start, To: to, Share: 10, Early: early, Sequence: seq})
					if d := time.Since(t0); d > 2*time.Second {
						t.Logf("%s look %d took %s", lang, looks, d)
					}
					if err != nil {
						t.Fatalf("%s look %d: %v", lang, looks, err)
					}
					seq = v.Sequence
					if v.Result == verdict.ResultFail {
						break
					}
				}
				if v.Result != tt.want {
					t.Fatalf("%s: %s after %d looks (%s)\n%s", lang, v.Result, looks, v.Reason, dumpChecks(v.Checks))
				}
				if tt.failing != "" {
					if looks > 3 || !strings.Contains(v.Reason, "sequential") {
						t.Errorf("%s: failed after %d looks: %s", lang, looks, v.Reason)
					}
					for _, c := range v.Checks {
						if c.Result == verdict.ResultFail && c.Name != tt.failing {
							t.Errorf("%s: %s failed first, want %s", lang, c.Name, tt.failing)
						}
						if c.Result == verdict.ResultFail {
							break
						}
					}
				}
				if v.Canary.Requests != seq.Evidence[verdict.CheckErrorRate].N {
					t.Errorf("%s: the window has %d canary requests, the tests saw %d", lang, v.Canary.Requests, seq.Evidence[verdict.CheckErrorRate].N)
				}
				reasons = append(reasons, v.Reason)
			}
			if reasons[0] != reasons[1] {
				t.Errorf("backends disagree:\n flux     %s\n influxql %s", reasons[0], reasons[1])
			}
		})
	}
}

// BenchmarkLookCost measures what one look costs, as the issue asks: points of a 2-minute bake at
// 10,000 requests a second (1,200,000, a tenth on the canary), read by the first look of the bake
// (its first 2 s), by the last (its last 2 s) and, for today's analysis, as the whole window at once.
// A look reads only its interval, so the last costs what the first does. Writing the points takes a
// minute or two before the first iteration; run with -benchtime 5x.
func BenchmarkLookCost(b *testing.B) {
	backend := uniqueBackend(b)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	const rate, seconds = 10_000, 120
	const n = rate * seconds
	writeLoad(b, backend, start, n, time.Second/rate, rand.New(rand.NewPCG(5, 6)))
	th := Thresholds{MaxErrorRate: 1, MaxErrorRateIncrease: 1, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(10)}
	end := start.Add(seconds * time.Second)
	// The cuts a look late in a bake counts against.
	cuts := LookCuts(&verdict.Sequence{Cuts: map[verdict.Metric]float64{verdict.MetricP50: 14, verdict.MetricP95: 60, verdict.MetricP99: 92}}, th)
	for _, lang := range languages {
		cfg := testConfig(backend)
		cfg.Timeout = 2 * time.Minute
		store := newStore(b, lang, cfg)
		look := func(from time.Time) func(b *testing.B) {
			return func(b *testing.B) {
				for b.Loop() {
					c, s, _, err := store.Interval(context.Background(), from, from.Add(2*time.Second), cuts)
					if err != nil {
						b.Fatal(err)
					}
					if got := c.Requests + s.Requests; got != 2*rate {
						b.Fatalf("%d requests in 2 s, want %d", got, 2*rate)
					}
				}
			}
		}
		b.Run(lang+"/first-look", look(start))
		b.Run(lang+"/last-look", look(end.Add(-2*time.Second)))
		b.Run(lang+"/full-window", func(b *testing.B) {
			for b.Loop() {
				c, s, _, err := store.Metrics(context.Background(), start, end)
				if err != nil {
					b.Fatal(err)
				}
				if got := c.Requests + s.Requests; got != n {
					b.Fatalf("%d requests in the window, want %d", got, n)
				}
			}
		})
	}
}
