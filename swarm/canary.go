package swarm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// stackNamespaceLabel marks services deployed by docker stack deploy. A canary does not carry it, so a
// "docker stack deploy --prune" during a release does not remove the canary from under the release.
const stackNamespaceLabel = "com.docker.stack.namespace"

// CanarySpec returns the spec of stable's canary: a faithful copy of the stable spec (env, secrets,
// configs, mounts, networks, placement, resources, healthcheck, restart and update policies, logging)
// with the new image, its own name and labels, cfg.CanaryReplicas replicated tasks, and every published
// port mapped through cfg.CanaryPorts so it never clashes with stable.
func CanarySpec(stable swarm.Service, image, releaseID string, cfg Config) (swarm.ServiceSpec, error) {
	var spec swarm.ServiceSpec
	// A deep copy: the canary must not share slices or maps with the stable spec we may write back.
	raw, err := json.Marshal(stable.Spec)
	if err != nil {
		return spec, fmt.Errorf("swarm: copying the spec of %q: %w", stable.Spec.Name, err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return spec, fmt.Errorf("swarm: copying the spec of %q: %w", stable.Spec.Name, err)
	}
	if spec.TaskTemplate.ContainerSpec == nil {
		return spec, fmt.Errorf("swarm: service %q has no container spec", stable.Spec.Name)
	}

	spec.Name = CanaryName(stable.Spec.Name)
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	// Not the stable's release record, request or heartbeat: those belong to the stable service.
	for _, l := range []string{stackNamespaceLabel, LabelState, LabelRequest, LabelHeartbeat, LabelStateCopy, LabelUpdateConfig} {
		delete(spec.Labels, l)
	}
	spec.Labels[LabelRole] = RoleCanary
	spec.Labels[LabelRelease] = releaseID
	spec.Labels[LabelStable] = stable.Spec.Name
	spec.Labels[LabelImage] = image

	spec.TaskTemplate.ContainerSpec.Image = image
	spec.TaskTemplate.ForceUpdate = 0
	replicas := cfg.CanaryReplicas
	if replicas == 0 {
		replicas = 1
	}
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}

	if spec.EndpointSpec != nil {
		for i, p := range spec.EndpointSpec.Ports {
			if p.PublishedPort == 0 {
				continue
			}
			to, ok := cfg.CanaryPorts[p.PublishedPort]
			if !ok {
				return spec, fmt.Errorf("swarm: service %q publishes port %d (%s mode), which its canary cannot share: map it in canary.ports in fridaymorning.yaml, e.g. \"%d:%d\"",
					stable.Spec.Name, p.PublishedPort, p.PublishMode, p.PublishedPort, p.PublishedPort+1)
			}
			spec.EndpointSpec.Ports[i].PublishedPort = to
		}
	}
	return spec, nil
}

// CreateCanary creates the canary service of stable running target (an image, or a spec reference: see
// Update), marked with releaseID, and returns its name. A canary of the same release that exists already
// is taken as it is. It does not wait for the canary's tasks.
func (c *Client) CreateCanary(ctx context.Context, stable, target, releaseID string) (string, error) {
	if IsSpec(target) {
		return c.createSpecCanary(ctx, stable, target, releaseID)
	}
	image := target
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return "", err
	}
	spec, err := CanarySpec(svc, image, releaseID, c.cfg)
	if err != nil {
		return "", err
	}
	return c.create(ctx, spec, releaseID, image)
}

// create creates the canary service spec of releaseID, running image.
func (c *Client) create(ctx context.Context, spec swarm.ServiceSpec, releaseID, image string) (string, error) {
	// QueryRegistry off: images built on the node have no registry to ask, and the stable service's own
	// pinning (if any) was done when it was deployed.
	if _, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false}); err != nil {
		if errdefs.IsConflict(err) {
			// Created already by this release (a process that died after creating it): carry on with it.
			existing, _, ierr := c.api.ServiceInspectWithRaw(ctx, spec.Name, swarm.ServiceInspectOptions{})
			if ierr == nil && existing.Spec.Labels[LabelRelease] == releaseID && specImage(existing.Spec) == image {
				return spec.Name, nil
			}
			return "", fmt.Errorf("swarm: canary %q already exists: abort the release it belongs to, or remove it with docker service rm %s", spec.Name, spec.Name)
		}
		// The request may have failed after Swarm created the service (a timeout, a connection lost):
		// then its name is returned with the error, so that the release removes it.
		existing, _, ierr := c.api.ServiceInspectWithRaw(context.WithoutCancel(ctx), spec.Name, swarm.ServiceInspectOptions{})
		if ierr == nil && existing.Spec.Labels[LabelRelease] == releaseID {
			return spec.Name, fmt.Errorf("swarm: creating canary %q: %w", spec.Name, err)
		}
		return "", fmt.Errorf("swarm: creating canary %q: %w", spec.Name, err)
	}
	return spec.Name, nil
}

// RemoveService removes the service called name and waits until its tasks have stopped, so that its
// published ports are free again; for a canary, then the configs and secrets its release created that
// no service references any more. A service that does not exist is not an error.
func (c *Client) RemoveService(ctx context.Context, name string) error {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("swarm: inspecting %q before removing it: %w", name, err)
	}
	if err := c.api.ServiceRemove(ctx, svc.ID); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("swarm: removing service %q: %w", name, err)
	}
	// Once the service is gone its tasks can no longer be listed; its containers can, on this node. The
	// published port is free once none of them runs.
	args := filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+svc.ID))
	for {
		conts, err := c.api.ContainerList(ctx, containerListOptions(args))
		if err == nil && len(conts) == 0 {
			if svc.Spec.Labels[LabelRole] == RoleCanary {
				return c.removeObjects(ctx, svc.Spec.Labels[LabelRelease])
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: service %q removed, but %d of its containers still run: %w", name, len(conts), ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// terminal reports whether a task in state s has stopped for good.
func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}
