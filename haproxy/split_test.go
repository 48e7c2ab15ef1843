package haproxy

import (
	"math"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name         string
		nS, nC       int
		pct          float64
		wantS, wantC int
		wantAchieved float64
	}{
		{"nothing to the canary", 1, 1, 0, 100, 0, 0},
		{"everything to the canary", 1, 1, 100, 0, 100, 100},
		{"half", 1, 1, 50, 256, 256, 50},
		{"a quarter", 1, 1, 25, 255, 85, 25},
		{"a tenth over 2 stable servers", 2, 1, 10, 252, 56, 10},
		{"no canary servers means none", 3, 0, 40, 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, a := Split(tt.nS, tt.nC, tt.pct, 100)
			if s != tt.wantS || c != tt.wantC || math.Abs(a-tt.wantAchieved) > 1e-9 {
				t.Fatalf("Split(%d, %d, %g) = %d, %d, %g; want %d, %d, %g", tt.nS, tt.nC, tt.pct, s, c, a, tt.wantS, tt.wantC, tt.wantAchieved)
			}
		})
	}
}

// TestSplitProperties checks every group size up to 20 and every whole percent: weights stay in HAProxy's
// range, the share reported is the share the weights give, 0 and 100 are exact, and the error is within a
// percentage point wherever equal weights per group can get that close.
func TestSplitProperties(t *testing.T) {
	for nS := 1; nS <= 20; nS++ {
		for nC := 1; nC <= 20; nC++ {
			// The extreme shares equal per-group weights can give.
			lo := 100 * float64(nC) / float64(nC+nS*MaxWeight)
			hi := 100 * float64(nC*MaxWeight) / float64(nC*MaxWeight+nS)
			for p := 0; p <= 100; p++ {
				ws, wc, got := Split(nS, nC, float64(p), 100)
				if ws < 0 || ws > MaxWeight || wc < 0 || wc > MaxWeight || ws+wc == 0 {
					t.Fatalf("Split(%d,%d,%d): weights %d/%d out of range", nS, nC, p, ws, wc)
				}
				real := 100 * float64(nC*wc) / float64(nC*wc+nS*ws)
				if math.Abs(real-got) > 1e-9 {
					t.Fatalf("Split(%d,%d,%d) reports %g but its weights give %g", nS, nC, p, got, real)
				}
				want := float64(p)
				switch {
				case p == 0 || p == 100:
					if got != want {
						t.Fatalf("Split(%d,%d,%d) = %g, want exactly %g", nS, nC, p, got, want)
					}
				case want < lo:
					if math.Abs(got-lo) > 1e-9 {
						t.Fatalf("Split(%d,%d,%d) = %g, want the smallest share possible, %g", nS, nC, p, got, lo)
					}
				case want > hi:
					if math.Abs(got-hi) > 1e-9 {
						t.Fatalf("Split(%d,%d,%d) = %g, want the largest share possible, %g", nS, nC, p, got, hi)
					}
				case math.Abs(got-want) > 1:
					t.Fatalf("Split(%d,%d,%d) = %g: more than a point off", nS, nC, p, got)
				}
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	for b.Loop() {
		Split(3, 2, 25, 100)
	}
}
