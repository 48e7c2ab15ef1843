// Package swarm is fridaymorning's adapter to Docker Swarm through the Docker Engine API: it checks a
// release's inputs, creates the canary service as a clone of the stable one, rolls the stable service to a
// new image, waits for services to converge and removes canaries.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/fridaymorning/fridaymorning/stackfile"
)

// Labels fridaymorning puts on the services it creates or changes.
const (
	LabelRole    = "fridaymorning.role"    // "canary" on a canary service
	LabelRelease = "fridaymorning.release" // the release ID
	LabelStable  = "fridaymorning.stable"  // on a canary: the stable service it belongs to
	LabelImage   = "fridaymorning.image"   // on a canary: the image released
	RoleCanary   = "canary"
	// CanarySuffix is appended to the stable service's name to name its canary.
	CanarySuffix = "-canary"
)

// Config configures a Client; it is built by main from fridaymorning.yaml.
type Config struct {
	// Host is the Docker Engine address; empty means DOCKER_HOST or the local socket.
	Host string
	// CanaryPorts maps each port the stable service publishes to the port its canary publishes
	// instead, so the two never clash.
	CanaryPorts map[uint32]uint32
	// CanaryReplicas is the canary's number of tasks (default 1).
	CanaryReplicas uint64
	// PollInterval is how often waits look at the tasks (default 500ms).
	PollInterval time.Duration
	// FailureLimit is how many failed tasks of the awaited image make a wait give up early (default 2).
	FailureLimit int
	// PendingLimit is how long a task may stay unschedulable before a wait gives up (default 15s).
	PendingLimit time.Duration
	// Spec, if set, is a release of a whole spec from a stack file: SpecTarget is its reference, and
	// Current names what a service runs by spec reference rather than by image.
	Spec *stackfile.Target
}

// Client talks to a Swarm manager.
type Client struct {
	api *client.Client
	cfg Config

	mu sync.Mutex
	// specs are the specs Current read, by reference, for Update to put back.
	specs map[string]swarm.ServiceSpec
}

// New connects to the Docker Engine named by cfg (no I/O until the first call).
func New(cfg Config) (*Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("swarm: docker client for %q: %w", cfg.Host, err)
	}
	if cfg.CanaryReplicas == 0 {
		cfg.CanaryReplicas = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.FailureLimit <= 0 {
		cfg.FailureLimit = 2
	}
	if cfg.PendingLimit <= 0 {
		cfg.PendingLimit = 15 * time.Second
	}
	return &Client{api: api, cfg: cfg}, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// CanaryName is the name of the canary service of stable.
func CanaryName(stable string) string { return stable + CanarySuffix }

// inspect returns the service called name, with an error that says what to do when there is none.
func (c *Client) inspect(ctx context.Context, name string) (swarm.Service, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		switch {
		case errdefs.IsNotFound(err):
			return svc, fmt.Errorf("swarm: service %q %w: check the service name (docker service ls lists them)", name, ErrNotFound)
		case client.IsErrConnectionFailed(err):
			return svc, fmt.Errorf("swarm: Docker Engine not reachable: %w: start dockerd or set DOCKER_HOST / docker.host", err)
		}
		return svc, fmt.Errorf("swarm: inspecting service %q: %w", name, err)
	}
	return svc, nil
}

// ErrNotFound is wrapped by errors about a service that does not exist.
var ErrNotFound = errors.New("not found")

// Image returns the image the service's spec runs.
func (c *Client) Image(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	return specImage(svc.Spec), nil
}

func specImage(spec swarm.ServiceSpec) string {
	if spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	return spec.TaskTemplate.ContainerSpec.Image
}

// CheckRelease checks, without changing anything, that stable can be released to image: the service
// exists, is no canary and has replicated tasks to compare the canary with, it does not run image
// already (however it is spelled), no canary of it exists, the canary's ports are mapped, and image can
// be found on the engine or, with the registry credentials of the user running fridaymorning, in its
// registry.
func (c *Client) CheckRelease(ctx context.Context, stable, image string) error {
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return err
	}
	if svc.Spec.Labels[LabelRole] == RoleCanary {
		return fmt.Errorf("swarm: service %q is a canary of %q: release the stable service instead", stable, svc.Spec.Labels[LabelStable])
	}
	if specImage(svc.Spec) == "" {
		return fmt.Errorf("swarm: service %q has no container image (plugin services cannot be released)", stable)
	}
	if err := checkServable(svc); err != nil {
		return err
	}
	if err := ParseImage(image); err != nil {
		return fmt.Errorf("swarm: image %w", err)
	}
	if running := ReleasedImage(svc.Spec); c.sameImage(ctx, running, image) || c.sameImage(ctx, specImage(svc.Spec), image) {
		if running == image {
			return fmt.Errorf("swarm: service %q already runs %s: nothing to release", stable, image)
		}
		return fmt.Errorf("swarm: service %q already runs %s, which is the image %s names: nothing to release", stable, running, image)
	}
	if _, err := CanarySpec(svc, image, "check", c.cfg); err != nil {
		return err
	}
	if existing, _, err := c.api.ServiceInspectWithRaw(ctx, CanaryName(stable), swarm.ServiceInspectOptions{}); err == nil {
		return fmt.Errorf("swarm: a canary %q already exists (release %s): abort that release with `fridaymorning abort %s`, or remove the canary with docker service rm %s",
			CanaryName(stable), existing.Spec.Labels[LabelRelease], stable, CanaryName(stable))
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("swarm: looking for an existing canary %q: %w", CanaryName(stable), err)
	}
	auth, err := registryAuth(ctx, image)
	if err != nil {
		return err
	}
	ref, err := c.pin(ctx, image, auth)
	if err != nil {
		return err
	}
	if ref == specImage(svc.Spec) {
		return fmt.Errorf("swarm: service %q already runs %s (%s): nothing to release", stable, image, ref)
	}
	return nil
}

// isOutOfSequence reports whether err is Swarm's optimistic-concurrency conflict: the spec changed
// between our read and our write.
func isOutOfSequence(err error) bool {
	return err != nil && strings.Contains(err.Error(), "update out of sequence")
}
