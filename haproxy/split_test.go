package haproxy

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func sum(ws []int) int {
	t := 0
	for _, w := range ws {
		t += w
	}
	return t
}

// within is how far from a share p a split may land: half a percentage point, or 5% of p when that
// is less (1% is 0.95–1.05%).
func within(p float64) float64 { return min(0.5, 0.05*p) }

func TestSplitWeights(t *testing.T) {
	tests := []struct {
		name         string
		nS, nC       int
		pct          float64
		base         int
		wantS, wantC []int
		wantAchieved float64
	}{
		{"nothing to the canary", 1, 1, 0, 100, []int{100}, []int{0}, 0},
		{"everything to the canary", 1, 1, 100, 100, []int{0}, []int{100}, 100},
		{"half: stable at base", 1, 1, 50, 100, []int{100}, []int{100}, 50},
		{"a quarter: 33 against 100", 1, 1, 25, 100, []int{100}, []int{33}, 100 * 33.0 / 133},
		{"a tenth over 2 stable servers: 22 against 2×100", 2, 1, 10, 100, []int{100, 100}, []int{22}, 100 * 22.0 / 222},
		{"5% over 3 stable servers: 16 against 3×100", 3, 1, 5, 100, []int{100, 100, 100}, []int{16}, 100 * 16.0 / 316},
		{"beyond the canary's 256 against base: the closest split, totals 85 and 255", 1, 1, 75, 100, []int{85}, []int{255}, 75},
		{"uneven totals are spread evenly: 170 over 3", 3, 1, 60, 100, []int{57, 57, 56}, []int{255}, 60},
		{"base too coarse for 1% (1 against 10 is 9.1%): the closest split, totals 198 and 2", 1, 1, 1, 10, []int{198}, []int{2}, 1},
		{"no canary servers means none", 3, 0, 40, 100, []int{100, 100, 100}, []int{}, 0},
		{"1% over 1 stable and 20 canaries: some canaries sit out", 1, 20, 1, 100, []int{100}, append([]int{1}, make([]int, 19)...), 100.0 / 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, a := SplitWeights(tt.nS, tt.nC, tt.pct, tt.base)
			if !slices.Equal(s, tt.wantS) || !slices.Equal(c, tt.wantC) || math.Abs(a-tt.wantAchieved) > 1e-9 {
				t.Fatalf("SplitWeights(%d, %d, %g, %d) = %v, %v, %g; want %v, %v, %g", tt.nS, tt.nC, tt.pct, tt.base, s, c, a, tt.wantS, tt.wantC, tt.wantAchieved)
			}
		})
	}
}

// TestSplitWeightsKeepsStableAtBase: a release's steps (10 → 25 → 50% with 2 stable servers and 1 canary
// at base 100) move the canary's weight alone: every stable server written is a `haproxy -c` validation
// through the Data Plane API, and each of these shares is within the tolerance with stable at base.
func TestSplitWeightsKeepsStableAtBase(t *testing.T) {
	for _, step := range []struct {
		pct   float64
		wantC []int
	}{{10, []int{22}}, {25, []int{67}}, {50, []int{200}}} {
		s, c, a := SplitWeights(2, 1, step.pct, 100)
		if !slices.Equal(s, []int{100, 100}) || !slices.Equal(c, step.wantC) {
			t.Fatalf("SplitWeights(2, 1, %g) = %v, %v (%g%%); want stable at 100, 100 and canary %v", step.pct, s, c, a, step.wantC)
		}
		if math.Abs(a-step.pct) > within(step.pct) {
			t.Fatalf("SplitWeights(2, 1, %g) gives %g%%, beyond the tolerance", step.pct, a)
		}
	}
}

// TestSplitWeightsProperties checks every group size up to 20 and every whole percent at base 100, and
// up to 5 at bases 1, 10 and 256: weights in HAProxy's range, stable servers never starved below 100%,
// evenly spread, the share reported is the share the weights give, 0 and 100 are exact; the stable
// servers stay at base, within the tolerance of the share, wherever a canary total allows it, and
// otherwise the share is the closest any split gives.
func TestSplitWeightsProperties(t *testing.T) {
	for _, run := range []struct{ base, upTo int }{{100, 20}, {1, 5}, {10, 5}, {256, 5}} {
		for nS := 1; nS <= run.upTo; nS++ {
			for nC := 1; nC <= run.upTo; nC++ {
				for p := 0; p <= 100; p++ {
					checkSplit(t, nS, nC, float64(p), run.base)
				}
			}
		}
	}
}

func checkSplit(t *testing.T, nS, nC int, p float64, base int) {
	t.Helper()
	sw, cw, got := SplitWeights(nS, nC, p, base)
	call := fmt.Sprintf("SplitWeights(%d, %d, %g, %d)", nS, nC, p, base)
	if len(sw) != nS || len(cw) != nC {
		t.Fatalf("%s: %d and %d weights", call, len(sw), len(cw))
	}
	for _, w := range append(append([]int{}, sw...), cw...) {
		if w < 0 || w > MaxWeight {
			t.Fatalf("%s: weight %d out of range", call, w)
		}
	}
	if p < 100 && slices.Min(sw) < 1 {
		t.Fatalf("%s: a stable server starved: %v", call, sw)
	}
	if slices.Max(sw)-slices.Min(sw) > 1 || slices.Max(cw)-slices.Min(cw) > 1 {
		t.Fatalf("%s: uneven spread %v %v", call, sw, cw)
	}
	real := 100 * float64(sum(cw)) / float64(sum(cw)+sum(sw))
	if math.Abs(real-got) > 1e-9 {
		t.Fatalf("%s reports %g but its weights give %g", call, got, real)
	}
	switch {
	case p == 0 || p == 100:
		if got != p {
			t.Fatalf("%s = %g, want exactly %g", call, got, p)
		}
		return
	case closestOff(nS*base, nS*base, nC*MaxWeight, p) <= within(p)+1e-9:
		// A canary total gives the share against stable at base.
		if slices.Min(sw) != base || slices.Max(sw) != base || math.Abs(got-p) > within(p)+1e-9 {
			t.Fatalf("%s = %v, %v (%g%%): want stable at %d and within %g of the share", call, sw, cw, got, base, within(p))
		}
	default:
		if best := closestOff(nS, nS*MaxWeight, nC*MaxWeight, p); math.Abs(math.Abs(got-p)-best) > 1e-9 {
			t.Fatalf("%s = %g, %g off: want the closest split, %g off", call, got, math.Abs(got-p), best)
		}
	}
}

// closestOff is how close to p the share of any canary total in 1..maxC comes against any stable total
// in sLo..sHi: for a stable total the share grows with the canary total, so the closest is next to
// the exact s·p/(100−p).
func closestOff(sLo, sHi, maxC int, p float64) float64 {
	best := math.Inf(1)
	for s := sLo; s <= sHi; s++ {
		c0 := int(float64(s) * p / (100 - p))
		for c := c0 - 1; c <= c0+2; c++ {
			if c >= 1 && c <= maxC {
				best = min(best, math.Abs(100*float64(c)/float64(c+s)-p))
			}
		}
		if c0 > maxC {
			best = min(best, math.Abs(100*float64(maxC)/float64(maxC+s)-p))
		}
	}
	return best
}

func BenchmarkSplitWeights(b *testing.B) {
	for b.Loop() {
		SplitWeights(3, 2, 25, 100)
	}
}
