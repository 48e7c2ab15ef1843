package haproxy

import "math"

// MaxWeight is the largest server weight HAProxy accepts.
const MaxWeight = 256

// Split returns the weight each stable and each canary server gets so that the canary group receives as
// close to percent of new requests as HAProxy's integer weights allow, and the share those weights give.
// Every server of a group gets the same weight. At 0 the canary servers get weight 0 and the stable ones
// base; at 100 the reverse. In between, every canary weight in 1..MaxWeight is tried with the stable weights closest
// to the exact ratio, and among equally close pairs the largest (finest-grained) one is kept.
func Split(nStable, nCanary int, percent float64, base int) (stableWeight, canaryWeight int, achieved float64) {
	if base <= 0 || base > MaxWeight {
		base = 100
	}
	switch {
	case nCanary <= 0 || percent <= 0 || math.IsNaN(percent):
		return base, 0, 0
	case nStable <= 0 || percent >= 100:
		return 0, base, 100
	}
	best := math.Inf(1)
	for wc := 1; wc <= MaxWeight; wc++ {
		c := float64(nCanary * wc)
		// For this canary weight the exact stable weight is c·(100−p)/(p·nStable); only its two integer
		// neighbours can be the closest.
		ideal := c * (100 - percent) / (percent * float64(nStable))
		for _, ws := range [2]int{int(math.Floor(ideal)), int(math.Ceil(ideal))} {
			ws = min(max(ws, 1), MaxWeight)
			share := 100 * c / (c + float64(nStable*ws))
			// Ties go to the later, larger pair: the finest steps for the next change.
			if d := math.Abs(share - percent); d <= best {
				best, stableWeight, canaryWeight, achieved = d, ws, wc, share
			}
		}
	}
	return stableWeight, canaryWeight, achieved
}

// share is the canary group's share, in percent, of the total weight.
func share(weights map[string]int, canary []string) float64 {
	var c, total int
	for name, w := range weights {
		total += w
		for _, n := range canary {
			if n == name {
				c += w
			}
		}
	}
	if total == 0 {
		return 0
	}
	return 100 * float64(c) / float64(total)
}
