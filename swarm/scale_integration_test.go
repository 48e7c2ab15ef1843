//go:build integration

package swarm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// TestScaleCanaryFollowsItsShare: against 4 stable tasks, the canary gets 1 task at 25%, 2 at 50% and
// 4 at 100%, and a lower share afterwards removes none.
func TestScaleCanaryFollowsItsShare(t *testing.T) {
	c, err := New(Config{PollInterval: 200 * time.Millisecond, CanaryReplicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	name := fmt.Sprintf("fmtest-scale-%d", time.Now().UnixNano()%1e9)
	for svc, n := range map[string]uint64{name: 4, CanaryName(name): 1} {
		replicas := n
		spec := swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: svc, Labels: map[string]string{"fridaymorning.test": "swarm"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: imageRepo() + ":v1"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		}
		if _, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = c.RemoveService(ctx, svc)
		})
	}
	for _, step := range []struct {
		share  float64
		scaled bool
		want   uint64
	}{{25, false, 1}, {50, true, 2}, {100, true, 4}, {25, false, 4}} {
		scaled, err := c.ScaleCanary(ctx, CanaryName(name), name, step.share)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := c.inspect(ctx, CanaryName(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := *svc.Spec.Mode.Replicated.Replicas; got != step.want || scaled != step.scaled {
			t.Errorf("at %g%%: canary has %d tasks (scaled %v), want %d (scaled %v)", step.share, got, scaled, step.want, step.scaled)
		}
	}
}
