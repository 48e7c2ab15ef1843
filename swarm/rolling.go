package swarm

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// UpdateWithRollback starts Swarm's own rolling update of service to image, as `docker service update
// --update-parallelism 1 --update-order stop-first --update-failure-action rollback --update-monitor
// MONITOR` does: one task at a time, each stopped before its replacement starts, and back to the
// previous spec if a new task fails within monitor. Swarm judges task health only, not the requests a
// task answers: fridaymorning drill runs it beside a canary release to show the difference. It does not
// wait for the update; UpdateState says how it stands.
func (c *Client) UpdateWithRollback(ctx context.Context, service, image string, monitor time.Duration) error {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return err
	}
	spec := svc.Spec
	spec.TaskTemplate.ContainerSpec = ptrCopy(spec.TaskTemplate.ContainerSpec)
	spec.TaskTemplate.ContainerSpec.Image = image
	spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionRollback,
		Monitor: monitor, Order: swarm.UpdateOrderStopFirst}
	if _, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return fmt.Errorf("swarm: updating %q to %s with rollback on failure: %w", service, image, err)
	}
	return nil
}

// UpdateState returns the state of the service's last update as Swarm reports it: "updating",
// "paused", "completed", "rollback_started", "rollback_paused" or "rollback_completed"; "" if the
// service was never updated.
func (c *Client) UpdateState(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	if svc.UpdateStatus == nil {
		return "", nil
	}
	return string(svc.UpdateStatus.State), nil
}
