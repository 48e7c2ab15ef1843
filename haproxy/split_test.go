package haproxy

import (
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

func TestSplitWeights(t *testing.T) {
	tests := []struct {
		name         string
		nS, nC       int
		pct          float64
		wantS, wantC []int
		wantAchieved float64
	}{
		{"nothing to the canary", 1, 1, 0, []int{100}, []int{0}, 0},
		{"everything to the canary", 1, 1, 100, []int{0}, []int{100}, 100},
		{"half", 1, 1, 50, []int{256}, []int{256}, 50},
		{"a quarter", 1, 1, 25, []int{255}, []int{85}, 25},
		{"a tenth over 2 stable servers: totals 504 and 56", 2, 1, 10, []int{252, 252}, []int{56}, 10},
		{"uneven totals are spread evenly: 760 over 3", 3, 1, 5, []int{254, 253, 253}, []int{40}, 5},
		{"no canary servers means none", 3, 0, 40, []int{100, 100, 100}, []int{}, 0},
		{"1% over 1 stable and 20 canaries: some canaries sit out", 1, 20, 1, []int{198}, append([]int{1, 1}, make([]int, 18)...), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, a := SplitWeights(tt.nS, tt.nC, tt.pct, 100)
			if !slices.Equal(s, tt.wantS) || !slices.Equal(c, tt.wantC) || math.Abs(a-tt.wantAchieved) > 1e-9 {
				t.Fatalf("SplitWeights(%d, %d, %g) = %v, %v, %g; want %v, %v, %g", tt.nS, tt.nC, tt.pct, s, c, a, tt.wantS, tt.wantC, tt.wantAchieved)
			}
		})
	}
}

// TestSplitWeightsProperties checks every group size up to 20 and every whole percent: weights in
// HAProxy's range, stable servers never starved below 100%, evenly spread, the share reported is the
// share the weights give, 0 and 100 are exact, the error is within a percentage point wherever the weight
// range allows it, and otherwise the share is the closest the range allows.
func TestSplitWeightsProperties(t *testing.T) {
	for nS := 1; nS <= 20; nS++ {
		for nC := 1; nC <= 20; nC++ {
			// The extreme shares integer weights allow with stable servers at 1..MaxWeight.
			lo := 100 / float64(1+nS*MaxWeight)
			hi := 100 * float64(nC*MaxWeight) / float64(nC*MaxWeight+nS)
			for p := 0; p <= 100; p++ {
				sw, cw, got := SplitWeights(nS, nC, float64(p), 100)
				if len(sw) != nS || len(cw) != nC {
					t.Fatalf("SplitWeights(%d,%d,%d): %d and %d weights", nS, nC, p, len(sw), len(cw))
				}
				for _, w := range append(append([]int{}, sw...), cw...) {
					if w < 0 || w > MaxWeight {
						t.Fatalf("SplitWeights(%d,%d,%d): weight %d out of range", nS, nC, p, w)
					}
				}
				if p < 100 && slices.Min(sw) < 1 {
					t.Fatalf("SplitWeights(%d,%d,%d): a stable server starved: %v", nS, nC, p, sw)
				}
				if slices.Max(sw)-slices.Min(sw) > 1 || slices.Max(cw)-slices.Min(cw) > 1 {
					t.Fatalf("SplitWeights(%d,%d,%d): uneven spread %v %v", nS, nC, p, sw, cw)
				}
				real := 100 * float64(sum(cw)) / float64(sum(cw)+sum(sw))
				if math.Abs(real-got) > 1e-9 {
					t.Fatalf("SplitWeights(%d,%d,%d) reports %g but its weights give %g", nS, nC, p, got, real)
				}
				want := float64(p)
				switch {
				case p == 0 || p == 100:
					if got != want {
						t.Fatalf("SplitWeights(%d,%d,%d) = %g, want exactly %g", nS, nC, p, got, want)
					}
				case want < lo:
					if math.Abs(got-lo) > 1e-9 {
						t.Fatalf("SplitWeights(%d,%d,%d) = %g, want the smallest share possible, %g", nS, nC, p, got, lo)
					}
				case want > hi:
					if math.Abs(got-hi) > 1e-9 {
						t.Fatalf("SplitWeights(%d,%d,%d) = %g, want the largest share possible, %g", nS, nC, p, got, hi)
					}
				case math.Abs(got-want) > 1:
					t.Fatalf("SplitWeights(%d,%d,%d) = %g: more than a point off", nS, nC, p, got)
				}
			}
		}
	}
}

func BenchmarkSplitWeights(b *testing.B) {
	for b.Loop() {
		SplitWeights(3, 2, 25, 100)
	}
}
