package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// binomialBrute is P(X ≥ k) by summing the probability mass function.
func binomialBrute(k, n int64, p float64) float64 {
	var sum float64
	for i := k; i <= n; i++ {
		lg, _ := math.Lgamma(float64(n + 1))
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lg - a - b + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

func TestBinomialUpper(t *testing.T) {
	// P(X ≥ 3) for X ~ B(10, 0.1) = 1 − (0.9¹⁰ + 10·0.1·0.9⁹ + 45·0.01·0.9⁸).
	if got, want := binomialUpper(3, 10, 0.1), 0.0701908264; math.Abs(got-want) > 1e-9 {
		t.Errorf("binomialUpper(3, 10, 0.1) = %v, want %v", got, want)
	}
	for _, n := range []int64{1, 7, 50, 400, 5000} {
		for _, p := range []float64{0.001, 0.01, 0.05, 0.3, 0.9} {
			for _, k := range []int64{0, 1, n / 10, n / 2, n} {
				got, want := binomialUpper(k, n, p), binomialBrute(max(k, 0), n, p)
				if math.Abs(got-want) > 1e-9*math.Max(1, want) && math.Abs(got-want) > 1e-12 {
					t.Errorf("binomialUpper(%d, %d, %v) = %v, want %v", k, n, p, got, want)
				}
			}
		}
	}
	edges := []struct {
		k, n int64
		p    float64
		want float64
	}{{0, 10, 0.5, 1}, {11, 10, 0.5, 0}, {1, 10, 0, 0}, {10, 10, 1, 1}}
	for _, e := range edges {
		if got := binomialUpper(e.k, e.n, e.p); got != e.want {
			t.Errorf("binomialUpper(%d, %d, %v) = %v, want %v", e.k, e.n, e.p, got, e.want)
		}
	}
}

// TestTwoProportionLevel checks that the test keeps its level: with the canary's rate exactly delta
// above stable's, it rejects at α = 0.02 no more often than about 2% of the time, and it finds a real
// excess of three times the margin nearly always.
func TestTwoProportionLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(n int64, p float64) int64 { return binomialDraw(rng, n, p) }
	const runs, alpha = 4000, 0.02
	rejected := 0
	for range runs {
		if _, p := twoProportion(draw(200, 0.03), 200, draw(2000, 0.01), 2000, 0.02); p < alpha {
			rejected++
		}
	}
	if rate := float64(rejected) / runs; rate > 0.035 {
		t.Errorf("at the margin the test rejected %.1f%% of the time, want about %.0f%% at most", 100*rate, 100*alpha)
	}
	rejected = 0
	for range 500 {
		if _, p := twoProportion(draw(500, 0.08), 500, draw(5000, 0.01), 5000, 0.02); p < alpha {
			rejected++
		}
	}
	if rejected < 490 {
		t.Errorf("a canary at 8%% errors against stable's 1%% (margin 2 points) was found in only %d of 500 runs", rejected)
	}
	// Rates of 0 and 1 still have a variance.
	if _, p := twoProportion(50, 50, 0, 500, 0.01); !(p < 1e-6) {
		t.Errorf("50 of 50 failing against none of 500: p = %v, want tiny", p)
	}
	if _, p := twoProportion(0, 50, 0, 500, 0.01); !(p > 0.1) {
		t.Errorf("no failures at all: p = %v, want no evidence", p)
	}
}

func TestMannWhitney(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		nc, ns := 5+rng.IntN(40), 5+rng.IntN(60)
		c, s := make([]float64, nc), make([]float64, ns)
		for i := range c {
			c[i] = float64(rng.IntN(12)) // many ties, as with whole milliseconds
		}
		for i := range s {
			s[i] = float64(rng.IntN(10))
		}
		var want float64
		for _, x := range c {
			for _, y := range s {
				switch {
				case x > y:
					want++
				case x == y:
					want += 0.5
				}
			}
		}
		u, _, _, sup := mannWhitney(c, s)
		if math.Abs(u-want) > 1e-9 {
			t.Fatalf("U = %v, want %v (counting pairs)", u, want)
		}
		if math.Abs(sup-want/float64(nc*ns)) > 1e-12 {
			t.Fatalf("superiority = %v, want %v", sup, want/float64(nc*ns))
		}
	}

	// The p-value agrees with a permutation test's.
	c, s := make([]float64, 30), make([]float64, 40)
	for i := range c {
		c[i] = math.Round(rng.ExpFloat64()*10 + 1.5)
	}
	for i := range s {
		s[i] = math.Round(rng.ExpFloat64() * 10)
	}
	u, _, p, _ := mannWhitney(c, s)
	all := append(append([]float64{}, c...), s...)
	const perms = 20000
	atLeast := 0
	for range perms {
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		if pu, _, _, _ := mannWhitney(all[:30], all[30:]); pu >= u {
			atLeast++
		}
	}
	if exact := float64(atLeast) / perms; math.Abs(p-exact) > 0.015 {
		t.Errorf("p = %v, the permutation test says %v", p, exact)
	}

	// Identical groups show no difference; all values equal is no evidence either.
	same := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if _, _, p, sup := mannWhitney(same, same); p < 0.4 || sup != 0.5 {
		t.Errorf("identical groups: p = %v, superiority %v", p, sup)
	}
	if _, _, p, _ := mannWhitney([]float64{3, 3, 3}, []float64{3, 3}); p != 1 {
		t.Errorf("all values equal: p = %v, want 1", p)
	}
	if _, _, p, _ := mannWhitney(nil, same); p != 1 {
		t.Errorf("no canary values: p = %v, want 1", p)
	}
}

func TestScaleNeeded(t *testing.T) {
	// 3 errors of 100 against a 1% limit: p ≈ 0.079; how much more data of the same kind settles it?
	pAt := func(s float64) float64 { return binomialUpper(int64(math.Round(3*s)), int64(math.Round(100*s)), 0.01) }
	s := scaleNeeded(pAt, 0.02)
	if !(pAt(s) < 0.02) || pAt(s*0.98) < 0.02 {
		t.Errorf("scale %v: p there %v, a little below %v", s, pAt(s), pAt(s*0.98))
	}
	if got := moreFor(100, s); got < 20 || got > 200 {
		t.Errorf("more requests needed = %d, want a few dozen", got)
	}
	if s := scaleNeeded(func(float64) float64 { return 0.5 }, 0.02); !math.IsInf(s, 1) || moreFor(100, s) != -1 {
		t.Errorf("a p-value that never falls: scale %v", s)
	}
	if s := scaleNeeded(func(float64) float64 { return 0.001 }, 0.02); s != 1 {
		t.Errorf("already significant: scale %v, want 1", s)
	}
}

// binomialDraw is how many of n requests fail, each with probability p.
func binomialDraw(rng *rand.Rand, n int64, p float64) int64 {
	var k int64
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}
