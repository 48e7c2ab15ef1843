package swarm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

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
	dropStableIdentity(&spec)
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

// dropStableIdentity removes what would let clients find the canary as the stable service, bypassing
// HAProxy's weights: network aliases (docker stack deploy gives every service its short name, so
// tasks.<short name> would list the canary's tasks) and other proxies' routing labels, on the service
// and on its containers. The canary answers to its own name only.
func dropStableIdentity(spec *swarm.ServiceSpec) {
	for _, nets := range [][]swarm.NetworkAttachmentConfig{spec.TaskTemplate.Networks, spec.Networks} { // spec.Networks: deprecated, still set by old clients
		for i := range nets {
			nets[i].Aliases = nil
		}
	}
	for k := range spec.Labels {
		if routingLabel(k) {
			delete(spec.Labels, k)
		}
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		cs.Labels = maps.Clone(cs.Labels)
		for k := range cs.Labels {
			if routingLabel(k) {
				delete(cs.Labels, k)
			}
		}
	}
}

// routingLabel reports whether a label tells another proxy to route to the service: Traefik's
// (traefik.*), caddy-docker-proxy's (caddy, caddy.*, caddy_N, caddy_N.*) or Mirantis' interlock
// (com.docker.lb.*).
func routingLabel(k string) bool {
	if strings.HasPrefix(k, "traefik.") || k == "traefik" || strings.HasPrefix(k, "com.docker.lb.") {
		return true
	}
	rest, ok := strings.CutPrefix(k, "caddy")
	if !ok {
		return false
	}
	if n, ok := strings.CutPrefix(rest, "_"); ok {
		rest = strings.TrimLeft(n, "0123456789")
		if len(rest) == len(n) {
			return false
		}
	}
	return rest == "" || strings.HasPrefix(rest, ".")
}

// CreateCanary creates the canary service of stable running target (an image, or a spec reference: see
// Update), marked with releaseID, and returns its name. An image is pinned first (see LabelPinned); the
// registry credentials of the user running fridaymorning go with the service. A canary of the same
// release that exists already is taken as it is. It does not wait for the canary's tasks.
func (c *Client) CreateCanary(ctx context.Context, stable, target, releaseID string) (string, error) {
	if IsSpec(target) {
		return c.createSpecCanary(ctx, stable, target, releaseID)
	}
	image := target
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return "", err
	}
	auth, err := registryAuth(ctx, image)
	if err != nil {
		return "", err
	}
	// Resolved once, here: the canary's tasks, its scaling up and the promotion all run these bits.
	ref, err := c.pin(ctx, image, auth)
	if err != nil {
		return "", err
	}
	spec, err := CanarySpec(svc, ref, releaseID, c.cfg)
	if err != nil {
		return "", err
	}
	spec.Labels[LabelImage] = image
	spec.Labels[LabelPinned] = ref
	return c.create(ctx, spec, releaseID, image)
}

// create creates the canary service spec of releaseID, released as image. The credentials for the
// image's registry go with it, as with docker service create --with-registry-auth, so that tasks on
// every node can pull.
func (c *Client) create(ctx context.Context, spec swarm.ServiceSpec, releaseID, image string) (string, error) {
	auth, err := registryAuth(ctx, image)
	if err != nil {
		return "", err
	}
	// QueryRegistry off: an image release is pinned already, and a spec's image is the stack file's.
	if _, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false, EncodedRegistryAuth: auth}); err != nil {
		if errdefs.IsConflict(err) {
			// Created already by this release (a process that died after creating it): carry on with it.
			existing, _, ierr := c.api.ServiceInspectWithRaw(ctx, spec.Name, swarm.ServiceInspectOptions{})
			if ierr == nil && existing.Spec.Labels[LabelRelease] == releaseID && (existing.Spec.Labels[LabelImage] == image || specImage(existing.Spec) == image) {
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

// RemoveService removes the service called name and waits until its tasks have stopped on every node
// they ran on, so that its published ports are free again and nothing of it serves; for a canary, then
// the configs and secrets its release created that no service references any more. A service that does
// not exist is not an error.
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
	for {
		left, err := c.tasksLeft(ctx, svc.ID)
		if err == nil && left == 0 {
			if svc.Spec.Labels[LabelRole] == RoleCanary {
				return c.removeObjects(ctx, svc.Spec.Labels[LabelRelease])
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("swarm: service %q removed, but its tasks could not be listed: %w (last error: %v)", name, ctx.Err(), err)
			}
			return fmt.Errorf("swarm: service %q removed, but %d of its tasks still run: %w", name, left, ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// tasksLeft counts the tasks of a removed service that still run on a node that is up, from the
// manager's task list: Swarm keeps a removed service's tasks there until each node has stopped them.
// (Its tasks cannot be listed by service once it is gone, hence the whole list.) A node that is down
// cannot stop them or say so: its tasks are not waited for, and Swarm removes them when it is back.
func (c *Client) tasksLeft(ctx context.Context, serviceID string) (int, error) {
	tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{})
	if err != nil {
		return 0, err
	}
	nodes, err := c.api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return 0, err
	}
	up := map[string]bool{}
	for _, n := range nodes {
		up[n.ID] = n.Status.State == swarm.NodeStateReady
	}
	left := 0
	for _, t := range tasks {
		if t.ServiceID == serviceID && !terminal(t.Status.State) && (t.NodeID == "" || up[t.NodeID]) {
			left++
		}
	}
	return left, nil
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
