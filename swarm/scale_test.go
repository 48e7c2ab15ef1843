package swarm

import "testing"

func TestForShare(t *testing.T) {
	tests := []struct {
		stable, min uint64
		share       float64
		want        uint64
	}{
		{10, 1, 10, 1}, {10, 1, 25, 3}, {10, 1, 50, 5}, {10, 1, 100, 10},
		{10, 2, 5, 2},   // at least canary.replicas
		{1, 1, 50, 1},   // never fewer than one
		{3, 1, 34, 2},   // ceil: the canary carries its share
		{2, 4, 10, 4},   // canary.replicas above stable's count: kept
		{10, 1, 0.1, 1}, // a sliver still needs a task
	}
	for _, tt := range tests {
		c := &Client{cfg: Config{CanaryReplicas: tt.min}}
		if got := c.forShare(tt.stable, tt.share); got != tt.want {
			t.Errorf("forShare(%d stable, %g%%) with canary.replicas %d = %d, want %d", tt.stable, tt.share, tt.min, got, tt.want)
		}
	}
}
