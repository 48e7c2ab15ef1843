package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// Labels of a backend lock: a Swarm config named after the load balancer's backend, which Swarm refuses
// to create twice, so that exactly one release at a time moves that backend's traffic.
const (
	LabelLockBackend = "fridaymorning.lock.backend"
	LabelLockService = "fridaymorning.lock.service"
	LabelLockRelease = "fridaymorning.lock.release"
)

// lockName is the Swarm config that locks backend: a readable part of it (config names allow letters,
// digits, '-', '_' and '.', up to 64 characters) and a hash of all of it, so that two backends never
// share a lock.
func lockName(backend string) string {
	readable := regexp.MustCompile(`[^a-zA-Z0-9_.-]+`).ReplaceAllString(backend, "_")
	if len(readable) > 28 {
		readable = readable[len(readable)-28:]
	}
	sum := sha256.Sum256([]byte(backend))
	return "fridaymorning-lock-" + hex.EncodeToString(sum[:6]) + "-" + readable
}

// LockBackend takes the lock on backend for release id of service, atomically: it creates the lock's
// Swarm config, which Swarm refuses if it exists. When another release holds it, its service and
// release are returned; a lock whose service no longer exists is stale and is broken first. A lock this
// release holds already (a release taken over after a crash) is kept.
func (c *Client) LockBackend(ctx context.Context, backend, service, id string) (heldByService, heldByRelease string, err error) {
	name := lockName(backend)
	for attempt := 0; attempt < 3; attempt++ {
		_, err := c.api.ConfigCreate(ctx, swarm.ConfigSpec{
			Annotations: swarm.Annotations{Name: name, Labels: map[string]string{LabelLockBackend: backend, LabelLockService: service, LabelLockRelease: id}},
			Data:        []byte(fmt.Sprintf("backend %s is locked by release %s of service %s\n", backend, id, service)),
		})
		if err == nil {
			return "", "", nil
		}
		if !errdefs.IsConflict(err) && !isAlreadyExists(err) {
			return "", "", fmt.Errorf("swarm: locking backend %s (config %s): %w", backend, name, err)
		}
		cfg, _, ierr := c.api.ConfigInspectWithRaw(ctx, name)
		if errdefs.IsNotFound(ierr) {
			continue // released meanwhile: try again
		}
		if ierr != nil {
			return "", "", fmt.Errorf("swarm: reading the lock of backend %s (config %s): %w", backend, name, ierr)
		}
		holderSvc, holderID := cfg.Spec.Labels[LabelLockService], cfg.Spec.Labels[LabelLockRelease]
		if holderID == id {
			return "", "", nil
		}
		if _, _, serr := c.api.ServiceInspectWithRaw(ctx, holderSvc, swarm.ServiceInspectOptions{}); errdefs.IsNotFound(serr) {
			if rerr := c.api.ConfigRemove(ctx, cfg.ID); rerr != nil && !errdefs.IsNotFound(rerr) {
				return "", "", fmt.Errorf("swarm: breaking the stale lock of backend %s (service %s is gone): %w", backend, holderSvc, rerr)
			}
			continue
		}
		return holderSvc, holderID, nil
	}
	return "", "", fmt.Errorf("swarm: the lock of backend %s (config %s) keeps changing: try again", backend, name)
}

// UnlockBackend releases backend's lock if release id holds it; a lock held by another release, or none,
// is left alone.
func (c *Client) UnlockBackend(ctx context.Context, backend, id string) error {
	name := lockName(backend)
	cfg, _, err := c.api.ConfigInspectWithRaw(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("swarm: reading the lock of backend %s (config %s): %w", backend, name, err)
	}
	if cfg.Spec.Labels[LabelLockRelease] != id {
		return nil
	}
	if err := c.api.ConfigRemove(ctx, cfg.ID); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("swarm: releasing the lock of backend %s: %w: remove it with docker config rm %s", backend, err, name)
	}
	return nil
}

// isAlreadyExists reports whether err is Swarm refusing a name that is taken (older engines answer it
// without the conflict status).
func isAlreadyExists(err error) bool {
	return err != nil && regexp.MustCompile(`(?i)already exists|name conflicts`).MatchString(err.Error())
}
