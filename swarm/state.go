package swarm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// Labels that keep a release's state in Swarm, where every process can read it.
const (
	// LabelState, on the stable service, holds the release record (JSON).
	LabelState = "fridaymorning.state"
	// LabelRequest, on the stable service, holds a command for the process driving the release.
	LabelRequest = "fridaymorning.request"
	// LabelHeartbeat, on the canary service, holds "OWNER TIME": the driving process's last sign of life.
	LabelHeartbeat = "fridaymorning.heartbeat"
)

// ReadState returns the release record and the pending request kept on service, and the service's
// version, which WriteState needs.
func (c *Client) ReadState(ctx context.Context, service string) ([]byte, string, uint64, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return nil, "", 0, err
	}
	var rec []byte
	if s := svc.Spec.Labels[LabelState]; s != "" {
		rec = []byte(s)
	}
	return rec, svc.Spec.Labels[LabelRequest], svc.Version.Index, nil
}

// WriteState stores the release record and request on service if the service is still at version: a
// compare-and-swap on Swarm's version index. It returns false, changing nothing, when the service changed
// since (Swarm answers "update out of sequence"). Only labels change: no task is restarted.
func (c *Client) WriteState(ctx context.Context, service string, version uint64, record []byte, request string) (bool, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return false, err
	}
	if svc.Version.Index != version {
		return false, nil
	}
	spec := svc.Spec
	spec.Labels = cloneLabels(spec.Labels)
	setLabel(spec.Labels, LabelState, string(record))
	setLabel(spec.Labels, LabelRequest, request)
	if _, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		if isOutOfSequence(err) {
			return false, nil
		}
		return false, fmt.Errorf("swarm: storing the release record on %q: %w", service, err)
	}
	return true, nil
}

func cloneLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l)+2)
	for k, v := range l {
		out[k] = v
	}
	return out
}

func setLabel(l map[string]string, k, v string) {
	if v == "" {
		delete(l, k)
		return
	}
	l[k] = v
}

// Beat stamps owner's heartbeat on service (a canary). A service that is gone is not an error.
func (c *Client) Beat(ctx context.Context, service, owner string, at time.Time) error {
	for attempt := 0; attempt < 5; attempt++ {
		svc, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("swarm: heartbeat on %q: %w", service, err)
		}
		spec := svc.Spec
		spec.Labels = cloneLabels(spec.Labels)
		spec.Labels[LabelHeartbeat] = owner + " " + at.UTC().Format(time.RFC3339Nano)
		_, err = c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !isOutOfSequence(err) {
			return fmt.Errorf("swarm: heartbeat on %q: %w", service, err)
		}
	}
	return fmt.Errorf("swarm: heartbeat on %q: the service kept changing", service)
}

// LastBeat returns the last heartbeat stamped on service; zero values if there is none or no service.
func (c *Client) LastBeat(ctx context.Context, service string) (string, time.Time, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if errdefs.IsNotFound(err) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("swarm: reading the heartbeat on %q: %w", service, err)
	}
	owner, at, ok := strings.Cut(svc.Spec.Labels[LabelHeartbeat], " ")
	if !ok {
		return "", time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return "", time.Time{}, nil
	}
	return owner, t, nil
}

// RecordHint says where the release record of service is kept and how an operator clears one that
// cannot be read.
func (c *Client) RecordHint(service string) string {
	return fmt.Sprintf("the label %s on service %s holds it: if no release of %s runs (docker service ls shows no %s), clear it with `docker service update --label-rm %s %s`",
		LabelState, service, service, CanaryName(service), LabelState, service)
}

// Releases lists the services that carry a release record, by name.
func (c *Client) Releases(ctx context.Context) (map[string][]byte, error) {
	svcs, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("swarm: listing services: %w", err)
	}
	out := map[string][]byte{}
	for _, s := range svcs {
		if rec := s.Spec.Labels[LabelState]; rec != "" {
			out[s.Spec.Name] = []byte(rec)
		}
	}
	return out, nil
}
