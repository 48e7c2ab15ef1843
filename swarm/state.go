package swarm

import (
	"context"
	"fmt"
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
	// TIME is the driver's clock, for humans; how old the beat is comes from Swarm's own stamp.
	LabelHeartbeat = "fridaymorning.heartbeat"
	// LabelStateCopy, on the canary service, holds a copy of the release record (see release.Mirror),
	// which a `docker stack deploy` of the stable service's stack does not remove.
	LabelStateCopy = "fridaymorning.state-copy"
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
	return c.updateLabels(ctx, service, "heartbeat", func(l map[string]string) {
		l[LabelHeartbeat] = owner + " " + at.UTC().Format(time.RFC3339Nano)
	})
}

// LastBeat returns how long ago service last changed (a heartbeat, a record write), by Swarm: its UpdatedAt is stamped by the manager, and the age is taken against the manager's own
// clock (the Engine API's system time), never this process's, so that skewed clocks do not make a live
// driver look dead. A service that does not exist is not an error: found is false.
func (c *Client) LastBeat(ctx context.Context, service string) (age time.Duration, found bool, err error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if errdefs.IsNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("swarm: reading the heartbeat on %q: %w", service, err)
	}
	now, err := c.managerTime(ctx)
	if err != nil {
		return 0, false, err
	}
	return max(now.Sub(svc.Meta.UpdatedAt), 0), true, nil
}

// managerTime is the current time on the Swarm manager this client talks to.
func (c *Client) managerTime(ctx context.Context) (time.Time, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("swarm: reading the manager's clock: %w", err)
	}
	now, err := time.Parse(time.RFC3339Nano, info.SystemTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("swarm: the manager's clock %q: %w", info.SystemTime, err)
	}
	return now, nil
}

// MirrorState keeps a copy of the release record on canary (see release.Mirror). A canary that is gone
// is not an error. Only labels change: no task is restarted.
func (c *Client) MirrorState(ctx context.Context, canary string, record []byte) error {
	return c.updateLabels(ctx, canary, "the copy of the release record", func(l map[string]string) { setLabel(l, LabelStateCopy, string(record)) })
}

// MirroredState returns the copy of the release record kept on stable's canary; nil if there is no
// canary of stable or it keeps no copy.
func (c *Client) MirroredState(ctx context.Context, stable string) ([]byte, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, CanaryName(stable), swarm.ServiceInspectOptions{})
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm: reading the canary of %q: %w", stable, err)
	}
	if svc.Spec.Labels[LabelStable] != stable || svc.Spec.Labels[LabelStateCopy] == "" {
		return nil, nil
	}
	return []byte(svc.Spec.Labels[LabelStateCopy]), nil
}

// updateLabels changes service's labels with change, retrying Swarm's "update out of sequence"; a
// service that is gone is not an error.
func (c *Client) updateLabels(ctx context.Context, service, what string, change func(map[string]string)) error {
	for attempt := 0; attempt < 5; attempt++ {
		svc, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("swarm: %s on %q: %w", what, service, err)
		}
		spec := svc.Spec
		spec.Labels = cloneLabels(spec.Labels)
		change(spec.Labels)
		_, err = c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !isOutOfSequence(err) {
			return fmt.Errorf("swarm: %s on %q: %w", what, service, err)
		}
	}
	return fmt.Errorf("swarm: %s on %q: the service kept changing", what, service)
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
