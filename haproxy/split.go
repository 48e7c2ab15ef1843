package haproxy

import "math"

// MaxWeight is the largest server weight HAProxy accepts.
const MaxWeight = 256

// SplitWeights returns a weight for each of nStable stable and nCanary canary servers so that the canary
// group receives percent of new requests, within the tolerance (half a percentage point, or 5% of
// percent when that is less) where HAProxy's integer weights in 0..MaxWeight allow it, and the share
// they give.
//
// At 0 the canary servers get 0 and the stable ones base; at 100 the reverse. In between, every stable
// server keeps a weight of at least 1 (stable capacity is never starved). The stable servers stay at
// base whenever a canary total C gives a share within the tolerance against the stable total S =
// nStable·base (the C closest to the share is taken), so that a release's shifts write the canary's
// servers alone until a share needs more than nCanary·MaxWeight: through the Data Plane API every server
// written costs a validation of the configuration. Otherwise (high shares, or small ones where base is
// too coarse) S and C are chosen among all totals to minimise |100·C/(C+S) − percent|, finest-grained
// (largest) first among equals. Each total is spread evenly over its group's servers (weights differ by
// at most 1). A share below what one canary weight point against the stable total gives (tiny shares
// with many servers) leaves some canary servers at 0: the closest HAProxy allows.
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
	maxC := nCanary * MaxWeight
	if c, d := closestCanary(nStable*base, maxC, percent); d <= tolerance(percent)+1e-12 {
		return fill(nStable, base), spread(c, nCanary), canaryShare(c, nStable*base)
	}
	bestS, bestC, best := 0, 0, math.Inf(1)
	for s := nStable; s <= nStable*MaxWeight; s++ {
		c, d := closestCanary(s, maxC, percent)
		if d < best-1e-12 || (math.Abs(d-best) <= 1e-12 && s+c > bestS+bestC) {
			bestS, bestC, best = s, c, d
		}
	}
	return spread(bestS, nStable), spread(bestC, nCanary), canaryShare(bestC, bestS)
}

// tolerance is how far from percent a split may land for the stable servers to keep their weight: half
// a percentage point, or 5% of percent when that is less (10% against 2×100 is 22, 9.91%; 1% against 100
// is 1, 0.99%).
func tolerance(percent float64) float64 { return min(0.5, 0.05*percent) }

// closestCanary returns the canary total in 1..maxC whose share against the stable total s is closest
// to percent, the larger among equals, and how far its share is from percent. The exact total is
// s·p/(100−p); only its integer neighbours can be the closest.
func closestCanary(s, maxC int, percent float64) (c int, off float64) {
	ideal := float64(s) * percent / (100 - percent)
	off = math.Inf(1)
	for _, n := range [2]int{int(math.Floor(ideal)), int(math.Ceil(ideal))} {
		n = min(max(n, 1), maxC)
		if d := math.Abs(canaryShare(n, s) - percent); d < off-1e-12 || (math.Abs(d-off) <= 1e-12 && n > c) {
			c, off = n, d
		}
	}
	return c, off
}

// canaryShare is the canary's share, in percent, of canary total c against stable total s.
func canaryShare(c, s int) float64 { return 100 * float64(c) / float64(c+s) }

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
