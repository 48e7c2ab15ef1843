package haproxy

import "math"

// MaxWeight is the largest server weight HAProxy accepts.
const MaxWeight = 256

// SplitWeights returns a weight for each of nStable stable and nCanary canary servers so that the canary
// group receives as close to percent of new requests as HAProxy's integer weights in 0..MaxWeight allow,
// and the share they give.
//
// At 0 the canary servers get 0 and the stable ones base; at 100 the reverse. In between, every stable
// server keeps a weight of at least 1 (stable capacity is never starved), and the two groups' totals S
// and C are chosen to minimise |100·C/(C+S) − percent|, finest-grained (largest) first among equals; each
// total is then spread evenly over its group's servers (weights differ by at most 1). A share below what
// one canary weight point against all stable servers at MaxWeight gives (tiny shares with many servers)
// leaves some canary servers at 0: the closest HAProxy allows.
func SplitWeights(nStable, nCanary int, percent float64, base int) (stable, canary []int, achieved float64) {
	if base <= 0 || base > MaxWeight {
		base = 100
	}
	switch {
	case nCanary <= 0 || percent <= 0 || math.IsNaN(percent):
		return fill(nStable, base), fill(nCanary, 0), 0
	case nStable <= 0 || percent >= 100:
		return fill(nStable, 0), fill(nCanary, base), 100
	}
	bestS, bestC, best := 0, 0, math.Inf(1)
	maxC := nCanary * MaxWeight
	for s := nStable; s <= nStable*MaxWeight; s++ {
		// For this stable total the exact canary total is s·p/(100−p); only its integer neighbours can
		// be the closest.
		ideal := float64(s) * percent / (100 - percent)
		for _, c := range [2]int{int(math.Floor(ideal)), int(math.Ceil(ideal))} {
			c = min(max(c, 1), maxC)
			d := math.Abs(100*float64(c)/float64(c+s) - percent)
			if d < best-1e-12 || (math.Abs(d-best) <= 1e-12 && s+c > bestS+bestC) {
				bestS, bestC, best = s, c, d
			}
		}
	}
	return spread(bestS, nStable), spread(bestC, nCanary), 100 * float64(bestC) / float64(bestC+bestS)
}

// spread divides total over n servers as evenly as integers allow, larger weights first.
func spread(total, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}

func fill(n, w int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = w
	}
	return out
}
