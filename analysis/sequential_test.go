package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// binomialPMF is P(X = k) for X ~ B(n, p).
func binomialPMF(k, n int64, p float64) float64 {
	if p <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	if p >= 1 {
		if k == n {
			return 1
		}
		return 0
	}
	lg, _ := math.Lgamma(float64(n + 1))
	a, _ := math.Lgamma(float64(k + 1))
	b, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(lg - a - b + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// TestBetsAreFair checks, by exact expectation over every outcome of a look, that each bet's factor has
// expectation at most 1 wherever its null hypothesis holds: what makes the product over looks a
// supermartingale, and Ville's inequality apply.
func TestBetsAreFair(t *testing.T) {
	const slack = 1e-9
	sizes := [][2]int64{{1, 9}, {5, 45}, {20, 180}, {50, 50}, {30, 5}}
	for _, tilt := range []float64{0.25, 1, 4, 8} {
		for _, nn := range sizes {
			nc, ns := nn[0], nn[1]
			for _, p0 := range []float64{0, 0.001, 0.01, 0.2, 0.5, 0.99, 1} {
				// logBinomialBet: H0 rate ≤ p0 for tilt > 0, ≥ p0 for tilt < 0.
				for _, p := range []float64{p0, p0 / 2, p0 * 0.9, math.Min(1, p0*1.5+0.01)} {
					for _, sign := range []float64{1, -1} {
						if sign > 0 && p > p0 || sign < 0 && p < p0 {
							continue
						}
						var e float64
						for k := int64(0); k <= nc; k++ {
							e += binomialPMF(k, nc, p) * math.Exp(logBinomialBet(k, nc, p0, sign*tilt))
						}
						if e > 1+slack {
							t.Errorf("logBinomialBet(n %d, p0 %v, tilt %v) at rate %v: E = %v > 1", nc, p0, sign*tilt, p, e)
						}
					}
				}
			}
			for _, delta := range []float64{0, 0.005, 0.01, 0.1} {
				for _, ps := range []float64{0, 0.001, 0.01, 0.05, 0.3, 0.6, 0.85} {
					// logIncreaseBet: H0 pc ≤ ps + δ, at the boundary and below.
					for _, pc := range []float64{math.Min(1, ps+delta), ps / 2} {
						if e := expect2(nc, pc, ns, ps, func(kc, ks int64) float64 { return logIncreaseBet(kc, nc, ks, ns, delta, tilt) }); e > 1+slack {
							t.Errorf("logIncreaseBet(%d/%d, δ %v, tilt %v) at pc %v ps %v: E = %v > 1", nc, ns, delta, tilt, pc, ps, e)
						}
					}
					// logNoIncreaseBet: H0 pc ≥ ps + δ.
					if ps+delta <= 1 {
						for _, pc := range []float64{ps + delta, math.Min(1, ps+delta+0.1)} {
							if e := expect2(nc, pc, ns, ps, func(kc, ks int64) float64 { return logNoIncreaseBet(kc, nc, ks, ns, delta, tilt) }); e > 1+slack {
								t.Errorf("logNoIncreaseBet(%d/%d, δ %v, tilt %v) at pc %v ps %v: E = %v > 1", nc, ns, delta, tilt, pc, ps, e)
							}
						}
					}
				}
			}
			for _, ps := range []float64{0.01, 0.05, 0.5, 0.9} {
				// logConditionalBet: H0 pc ≤ ps (tilt > 0), pc ≥ ps (tilt < 0).
				for _, c := range []struct{ pc, sign float64 }{{ps, 1}, {ps / 3, 1}, {ps, -1}, {math.Min(1, ps*1.5), -1}} {
					if e := expect2(nc, c.pc, ns, ps, func(kc, ks int64) float64 { return logConditionalBet(kc, nc, ks, ns, c.sign*tilt) }); e > 1+slack {
						t.Errorf("logConditionalBet(%d/%d, log ψ %v) at pc %v ps %v: E = %v > 1", nc, ns, c.sign*tilt, c.pc, ps, e)
					}
				}
			}
		}
	}
}

// expect2 is E[exp(logf(kc, ks))] for kc ~ B(nc, pc), ks ~ B(ns, ps).
func expect2(nc int64, pc float64, ns int64, ps float64, logf func(kc, ks int64) float64) float64 {
	var e float64
	for kc := int64(0); kc <= nc; kc++ {
		pkc := binomialPMF(kc, nc, pc)
		if pkc == 0 {
			continue
		}
		for ks := int64(0); ks <= ns; ks++ {
			if pks := binomialPMF(ks, ns, ps); pks > 0 {
				e += pkc * pks * math.Exp(logf(kc, ks))
			}
		}
	}
	return e
}

// TestRankBetIsFair checks the rank bet over every way of choosing which of a look's latencies are the
// canary's (what identical distributions make equally likely), ties included.
func TestRankBetIsFair(t *testing.T) {
	pools := [][]float64{{1, 2, 3, 4, 5, 6, 7, 8}, {3, 3, 3, 5, 5, 9, 9, 9, 12}, {1, 1, 1, 1, 2, 2, 30}}
	for _, pool := range pools {
		for nc := 1; nc < len(pool); nc++ {
			for _, lambda := range rankTilts {
				var sum float64
				var count int
				for mask := 0; mask < 1<<len(pool); mask++ {
					var c, s []float64
					for i, v := range pool {
						if mask&(1<<i) != 0 {
							c = append(c, v)
						} else {
							s = append(s, v)
						}
					}
					if len(c) != nc {
						continue
					}
					sum += math.Exp(logRankBet(rankScores(c, s), lambda))
					count++
				}
				if e := sum / float64(count); e > 1+1e-9 {
					t.Errorf("pool %v, %d canary, λ %v: E = %v > 1", pool, nc, lambda, e)
				}
			}
		}
	}
}

// TestBetsFindRealEffects: each test grows its evidence quickly when the canary is clearly worse, and
// loses it when the canary is fine.
func TestBetsFindRealEffects(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	draw := func(n int64, p float64) int64 { return binomialDraw(rng, n, p) }
	run := func(looks int, logf func(tilt float64) float64, grid []float64) float64 {
		ev := newEvidence(len(grid), 0)
		for range looks {
			f := make([]float64, len(grid))
			for i, tl := range grid {
				f[i] = logf(tl)
			}
			ev = fold(ev, f)
		}
		return logE(ev)
	}
	threshold := math.Log(300)
	// Half of 20 requests failing, against a 1% limit: one look is enough.
	k := draw(20, 0.5)
	if got := run(1, func(tl float64) float64 { return logBinomialBet(k, 20, 0.01, tl) }, tilts); got < threshold {
		t.Errorf("10 of 20 errors at a 1%% limit: log e = %.1f < %.1f", got, threshold)
	}
	// A healthy canary (0.1% errors) loses its evidence.
	var kc, ks int64
	healthy := run(100, func(tl float64) float64 {
		return logIncreaseBet(kc, 20, ks, 180, 0.01, tl)
	}, tilts)
	if healthy > 0 {
		t.Errorf("no errors against a 1-point margin: log e = %.2f > 0", healthy)
	}
	// 5% errors against stable's 0.1% and a 1-point margin: found within 100 looks of 20 requests.
	var bad float64
	ev := newEvidence(len(tilts), 0)
	for range 100 {
		kc, ks = draw(20, 0.05), draw(180, 0.001)
		f := make([]float64, len(tilts))
		for i, tl := range tilts {
			f[i] = logIncreaseBet(kc, 20, ks, 180, 0.01, tl)
		}
		ev = fold(ev, f)
	}
	if bad = ev.Max; bad < threshold {
		t.Errorf("5%% errors against stable's 0.1%% + 1 point: log e = %.1f < %.1f after 2000 requests", bad, threshold)
	}
	// Canary latencies 50% larger: the rank test finds them within a few looks.
	lat := func(n int, scale float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Round(scale * 100 * math.Exp(0.4*rng.NormFloat64()))
		}
		return out
	}
	ev = newEvidence(len(rankTilts), 0)
	for range 5 {
		r := rankScores(sortedCopy(lat(20, 1.5)), sortedCopy(lat(180, 1)))
		f := make([]float64, len(rankTilts))
		for i, l := range rankTilts {
			f[i] = logRankBet(r, l)
		}
		ev = fold(ev, f)
	}
	if ev.Max < threshold {
		t.Errorf("canary 50%% slower: rank test log e = %.1f < %.1f after 5 looks", ev.Max, threshold)
	}
}

func TestEvidenceSegments(t *testing.T) {
	ev := newEvidence(len(tilts), windowWeight(1))
	if got := logE(ev); math.Abs(got-math.Log(0.75)) > 1e-12 {
		t.Errorf("a first window stakes three quarters: log e = %v", got)
	}
	ev = fold(ev, []float64{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)})
	ev = restart(ev, 2)
	if got := logE(ev); math.Abs(got-math.Log(0.125)) > 1e-12 {
		t.Errorf("a second window after a lost first stakes an eighth: log e = %v", got)
	}
	if math.Abs(ev.Max-math.Log(0.75)) > 1e-12 {
		t.Errorf("max %v, want the first window's stake", ev.Max)
	}
	var sum float64
	for k := 1; k < 60; k++ {
		sum += math.Exp(windowWeight(k))
	}
	if sum > 1 {
		t.Errorf("the windows' weights sum to %v > 1", sum)
	}
	if n := moreToCross(verdict.Evidence{Log: []float64{0, 0}}, []float64{0.1, -1}, math.Log(100)); n != int64(math.Ceil(math.Log(100)/0.1)) {
		t.Errorf("moreToCross = %d", n)
	}
	if n := moreToCross(verdict.Evidence{Log: []float64{0}}, []float64{-0.1}, 1); n != -1 {
		t.Errorf("moreToCross of a losing test = %d, want -1", n)
	}
}

func TestHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var h histogram
	var all []float64
	for range 20 {
		s := latencies(rng, 50, 20, 30)
		all = append(all, s...)
		h = h.add(s, 1)
	}
	sorted := append([]float64(nil), all...)
	slices.Sort(sorted)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 1} {
		if got, want := h.quantile(q), nearestRank(sorted, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	big := histogram{}.add([]float64{5000, 10000, 60000}, 2)
	for i, want := range []float64{5000, 10000, 60000} {
		got := big.quantile(float64(i+1) / 3)
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("wide bucket of %v: %v", want, got)
		}
	}
	if !math.IsNaN(histogram{}.quantile(0.5)) {
		t.Error("an empty histogram has a quantile")
	}
}

// TestOneChecksEvidenceFailsNoOther: a group whose mean e-value crossed its threshold through one check
// (latency_shift: the canary slower, but within its practical margin) does not fail another check of the
// group whose own test found nothing (seen on the multi-node bed: a canary on a worker is a little
// slower than stable on the manager, and latency_p99 failed at e = 0.75).
func TestOneChecksEvidenceFailsNoOther(t *testing.T) {
	alpha := 0.01
	quiet := seqOutcome{alpha: alpha, groupMax: math.Log(237364), groupLog: math.Log(0.5)}
	quiet.ev.Max = math.Log(0.75)
	if quiet.crossed() {
		t.Error("a check with e = 0.75 failed on its group's evidence")
	}
	loud := quiet
	loud.ev.Max = math.Log(949455)
	if !loud.crossed() {
		t.Error("the check that carries the group's evidence did not fail")
	}
	below := loud
	below.groupMax = math.Log(50)
	if below.crossed() {
		t.Error("a check failed though its group's evidence is below 1/α")
	}
}
