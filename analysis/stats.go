package analysis

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// The statistical tests of a verdict. Each is one-sided: it asks how likely the canary would look at
// least this bad if it were in fact acceptable, and returns that p-value. A check fails only when the
// p-value is below α = 1 − confidence; a canary that looks bad on too little evidence is inconclusive.

// binomialUpper is P(X ≥ k) for X ~ Binomial(n, p): the exact one-sided p-value of seeing k or more
// bad requests of n when each is bad with probability p at most. It is I_p(k, n−k+1), the regularized
// incomplete beta function.
func binomialUpper(k, n int64, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return mathext.RegIncBeta(float64(k), float64(n-k+1), p)
}

// twoProportion tests whether the canary's rate xc/nc exceeds stable's xs/ns by more than delta (a
// fraction): the z statistic and one-sided p-value of the Agresti–Caffo adjusted Wald test (one
// success and one failure added to each group), which keeps its level for small samples and for
// rates of 0 or 1, where the plain Wald test has no variance to work with.
func twoProportion(xc, nc, xs, ns int64, delta float64) (z, p float64) {
	pc := (float64(xc) + 1) / (float64(nc) + 2)
	ps := (float64(xs) + 1) / (float64(ns) + 2)
	se := math.Sqrt(pc*(1-pc)/(float64(nc)+2) + ps*(1-ps)/(float64(ns)+2))
	z = (pc - ps - delta) / se
	return z, normalUpper(z)
}

// mannWhitney tests whether canary latencies tend to be larger than stable's: the one-sided
// Mann–Whitney U test with average ranks for ties, the tie-corrected variance and a continuity
// correction, by the normal approximation (sound from about 20 values a group, below the minimum
// sample a verdict needs anyway). It returns U of the canary, the z statistic, the p-value and the
// probability of superiority U/(nc·ns): the chance that a random canary request is slower than a random
// stable one, ties counting half (0.5 when the two are alike).
func mannWhitney(canary, stable []float64) (u, z, p, superiority float64) {
	nc, ns := len(canary), len(stable)
	if nc == 0 || ns == 0 {
		return 0, 0, 1, 0.5
	}
	n := float64(nc + ns)
	var rankSum, ties float64
	tieGroups(sortedCopy(canary), sortedCopy(stable), func(first, inCanary, count int) {
		// Ranks first+1 … first+count share their average.
		rankSum += float64(inCanary) * (float64(2*first+count+1) / 2)
		t := float64(count)
		ties += t*t*t - t
	})
	fc, fs := float64(nc), float64(ns)
	u = rankSum - fc*(fc+1)/2
	mean := fc * fs / 2
	variance := fc * fs / 12 * ((n + 1) - ties/(n*(n-1)))
	superiority = u / (fc * fs)
	if variance <= 0 {
		// Every value is the same: no evidence of any difference.
		return u, 0, 1, superiority
	}
	z = (u - mean - 0.5) / math.Sqrt(variance)
	return u, z, normalUpper(z), superiority
}

// sortedCopy is values sorted, for reading only: values itself when it is sorted already, else a
// sorted copy.
func sortedCopy(values []float64) []float64 {
	if slices.IsSorted(values) {
		return values
	}
	out := slices.Clone(values)
	slices.Sort(out)
	return out
}

// tieGroups walks the values of two sorted samples a and b in pooled order, calling fn once for each
// distinct value with the 0-based position of its first occurrence in the pooled order, how many of its
// occurrences are in a, and how many there are in all.
func tieGroups(a, b []float64, fn func(first, inA, count int)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v float64
		switch {
		case j >= len(b) || i < len(a) && a[i] <= b[j]:
			v = a[i]
		default:
			v = b[j]
		}
		first := i + j
		inA := 0
		for i < len(a) && a[i] == v {
			i, inA = i+1, inA+1
		}
		for j < len(b) && b[j] == v {
			j++
		}
		fn(first, inA, i+j-first)
	}
}

// normalUpper is P(Z ≥ z) for a standard normal Z.
func normalUpper(z float64) float64 {
	return distuv.UnitNormal.Survival(z)
}

// above counts the values greater than limit.
func above(values []float64, limit float64) int64 {
	var k int64
	for _, v := range values {
		if v > limit {
			k++
		}
	}
	return k
}

// maxScale bounds how far scaleNeeded looks: a sample 1,000 times larger than the one at hand.
const maxScale = 1000

// scaleNeeded is the smallest factor s ≥ 1 by which the sample would have to grow, the proportions
// seen staying the same, for pAt(s) to fall below alpha; +Inf when not even maxScale would do (the
// canary is about as good as the limit allows, and no amount of data settles it soon).
func scaleNeeded(pAt func(s float64) float64, alpha float64) float64 {
	if pAt(1) < alpha {
		return 1
	}
	lo, hi := 1.0, 2.0
	for pAt(hi) >= alpha {
		lo, hi = hi, hi*2
		if hi > maxScale {
			if pAt(maxScale) < alpha {
				hi = maxScale
				break
			}
			return math.Inf(1)
		}
	}
	for range 40 {
		mid := (lo + hi) / 2
		if pAt(mid) < alpha {
			hi = mid
		} else {
			lo = mid
		}
		if hi-lo < 0.001*lo {
			break
		}
	}
	return hi
}

// moreFor is how many more of n observations a scale factor s asks for; -1 when s is infinite.
func moreFor(n int64, s float64) int64 {
	if math.IsInf(s, 1) || math.IsNaN(s) {
		return -1
	}
	return int64(math.Ceil(float64(n) * (s - 1)))
}
