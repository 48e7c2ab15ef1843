package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// ErrTasksFailed is wrapped by WaitReady's error when tasks of the awaited image fail, are rejected or
// cannot be scheduled.
var ErrTasksFailed = errors.New("tasks failed")

// UpdateImage starts a rolling update of service to image, pinned as fridaymorning pinned it (see
// pinFor): a promotion runs the canary's reference, so that the stable service gets the bits that were
// judged, and a rollback the one it ran before. The registry credentials of the user running
// fridaymorning go with the update. The update keeps the service's own pace (parallelism, delay,
// monitor) but always has Swarm roll back on failure, and starts new tasks before stopping old ones
// where no host-mode published port makes two tasks clash: see PromotionSpec. It retries Swarm's "update
// out of sequence" conflicts after reading the spec again, and does not wait for the update; use
// WaitReady.
func (c *Client) UpdateImage(ctx context.Context, service, image string) error {
	auth, err := registryAuth(ctx, image)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		svc, err := c.inspect(ctx, service)
		if err != nil {
			return err
		}
		ref := c.pinFor(ctx, svc, image)
		spec := PromotionSpec(svc.Spec, ref)
		spec.Labels = cloneLabels(spec.Labels)
		delete(spec.Labels, LabelPinned)
		if svc.Spec.Labels[LabelRole] != RoleCanary {
			delete(spec.Labels, LabelImage)
		}
		if ref != image {
			spec.Labels[LabelImage], spec.Labels[LabelPinned] = image, ref
		}
		_, err = c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: auth})
		if err == nil {
			return nil
		}
		if !isOutOfSequence(err) || attempt >= 10 {
			return fmt.Errorf("swarm: updating %q to %s: %w", service, ref, err)
		}
	}
}

// PromotionSpec is spec running image, with an update policy fit for a promotion: failure action
// rollback (Swarm's default, pause, would leave a half-updated service), and start-first order unless the
// service publishes a host-mode port, where a new task cannot start beside the old one on the same node.
// The service's own policy is kept in a label, from which RestoreUpdatePolicy puts it back.
func PromotionSpec(spec swarm.ServiceSpec, image string) swarm.ServiceSpec {
	spec.Labels = savedUpdateConfig(spec)
	spec.TaskTemplate.ContainerSpec = ptrCopy(spec.TaskTemplate.ContainerSpec)
	spec.TaskTemplate.ContainerSpec.Image = image
	uc := swarm.UpdateConfig{Parallelism: 1}
	if spec.UpdateConfig != nil {
		uc = *spec.UpdateConfig
	}
	uc.FailureAction = swarm.UpdateFailureActionRollback
	uc.Order = swarm.UpdateOrderStartFirst
	if publishesHostPort(spec) {
		uc.Order = swarm.UpdateOrderStopFirst
	}
	spec.UpdateConfig = &uc
	return spec
}

func ptrCopy[T any](p *T) *T {
	if p == nil {
		return new(T)
	}
	c := *p
	return &c
}

func publishesHostPort(spec swarm.ServiceSpec) bool {
	if spec.EndpointSpec == nil {
		return false
	}
	for _, p := range spec.EndpointSpec.Ports {
		if p.PublishedPort != 0 && p.PublishMode == swarm.PortConfigPublishModeHost {
			return true
		}
	}
	return false
}

// ScaleCanary gives canary as many tasks as stable has (for a global service, one per node its placement
// allows), so that it can carry all of stable's traffic during a promotion; with a host-mode published
// port at most one per node it can run on. It does not wait. Below a share of 100, it gives canary the
// share of stable's tasks (see forShare); it never removes tasks, and reports whether it added some.
func (c *Client) ScaleCanary(ctx context.Context, canary, stable string, share float64) (bool, error) {
	for attempt := 0; ; attempt++ {
		st, err := c.inspect(ctx, stable)
		if err != nil {
			return false, err
		}
		cn, err := c.inspect(ctx, canary)
		if err != nil {
			return false, err
		}
		want := uint64(1)
		if r := st.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			want = *r.Replicas
		} else if n, err := c.eligibleNodes(ctx, st.Spec); err == nil {
			want = uint64(n) // a global service: one task per node its constraints allow
		}
		want = c.forShare(want, share)
		if publishesHostPort(cn.Spec) {
			if n, err := c.eligibleNodes(ctx, cn.Spec); err == nil {
				want = min(want, uint64(n))
			}
		}
		r := cn.Spec.Mode.Replicated
		if r == nil || r.Replicas == nil || *r.Replicas >= want {
			return false, nil
		}
		spec := cn.Spec
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &want}}
		_, err = c.api.ServiceUpdate(ctx, cn.ID, cn.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return true, nil
		}
		if !isOutOfSequence(err) || attempt >= 10 {
			return false, fmt.Errorf("swarm: scaling canary %q to %d tasks: %w", canary, want, err)
		}
	}
}

// readiness is what the tasks of a service say about it at one moment.
type readiness struct {
	ready    bool
	progress string
	err      error
}

// assess judges a service's convergence from its tasks: ready when the desired number of tasks run the
// spec's image (with a healthcheck, Swarm reports "running" only once it passes) and no update is in
// flight; failed when tasks of that image fail, are rejected, or stay unschedulable past pendingLimit.
// Only tasks updated at or after since count as failures, so history from earlier releases is ignored.
// details adds, by task ID, what the task's container says about its end (its healthcheck's output);
// health, by task ID, the healthcheck status of running tasks whose container is not healthy yet.
func assess(svc swarm.Service, tasks []swarm.Task, details, health map[string]string, nodes int, since time.Time, failureLimit int, pendingLimit time.Duration, now time.Time) readiness {
	image := specImage(svc.Spec)
	desired := nodes
	if svc.Spec.Mode.Replicated != nil && svc.Spec.Mode.Replicated.Replicas != nil {
		desired = int(*svc.Spec.Mode.Replicated.Replicas)
	}

	var running, starting int
	var failures []string
	var pending string
	for _, t := range tasks {
		if !sameContainer(t.Spec.ContainerSpec, svc.Spec.TaskTemplate.ContainerSpec) {
			continue
		}
		st := t.Status
		switch {
		case st.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning && health[t.ID] == "":
			running++
		case st.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning:
			// Swarm may call a task running before its healthcheck passed: not ready yet.
			starting++
		case stoppedEarly(st.State) && !st.Timestamp.Before(since):
			// A task of the awaited image that ended while the service wants it running: it crashed,
			// was rejected, or was killed for failing its healthcheck (and then exited cleanly).
			failures = append(failures, taskError(t, details[t.ID]))
		case st.State == swarm.TaskStatePending && st.Err != "" && now.Sub(t.CreatedAt) > pendingLimit:
			pending = st.Err
		case !terminal(st.State) && t.DesiredState == swarm.TaskStateRunning:
			starting++
		}
	}
	sort.Strings(failures)
	progress := fmt.Sprintf("%d/%d tasks running", running, desired)
	if starting > 0 {
		progress += fmt.Sprintf(", %d starting", starting)
	}
	if len(failures) > 0 {
		progress += fmt.Sprintf(", %d failed", len(failures))
	}

	if us := svc.UpdateStatus; us != nil {
		switch us.State {
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackPaused, swarm.UpdateStateRollbackCompleted:
			return readiness{progress: progress, err: fmt.Errorf("%w: update %s: %s", ErrTasksFailed, us.State, us.Message)}
		case swarm.UpdateStateUpdating:
			progress += ", update in progress"
		}
	}
	switch {
	case len(failures) >= failureLimit:
		return readiness{progress: progress, err: fmt.Errorf("%w: %d tasks of %s failed: %s", ErrTasksFailed, len(failures), image, strings.Join(dedupe(failures), "; "))}
	case len(failures) > 0 && strings.Contains(failures[0], "No such image"):
		return readiness{progress: progress, err: fmt.Errorf("%w: %s", ErrTasksFailed, failures[0])}
	case pending != "":
		return readiness{progress: progress, err: fmt.Errorf("%w: a task of %s cannot be scheduled for %s: %s", ErrTasksFailed, image, pendingLimit, pending)}
	}
	updating := svc.UpdateStatus != nil && svc.UpdateStatus.State == swarm.UpdateStateUpdating
	return readiness{ready: desired > 0 && running >= desired && !updating, progress: progress}
}

// sameContainer reports whether a task's container spec is the service's: same image, and same env,
// configs, command and the rest, since a release of a spec may change those alone.
func sameContainer(task, service *swarm.ContainerSpec) bool {
	if task == nil || service == nil || task.Image != service.Image {
		return false
	}
	a, errA := json.Marshal(task)
	b, errB := json.Marshal(service)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// stoppedEarly reports whether a task in state s has ended.
func stoppedEarly(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateShutdown:
		return true
	}
	return false
}

func taskError(t swarm.Task, detail string) string {
	msg := t.Status.Err
	if msg == "" {
		msg = fmt.Sprintf("%s (%s)", t.Status.State, t.Status.Message)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return fmt.Sprintf("task %s: %s", shortID(t.ID), msg)
}

// containerDetails asks the engine about the containers of tasks on this node (others, and removed
// containers, are skipped): for tasks that ended without an error of their own (killed for being
// unhealthy), what their healthcheck said; for running tasks, the healthcheck status unless healthy.
func (c *Client) containerDetails(ctx context.Context, tasks []swarm.Task, since time.Time) (details, health map[string]string) {
	details, health = map[string]string{}, map[string]string{}
	for _, t := range tasks {
		if t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		running := t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning
		ended := stoppedEarly(t.Status.State) && t.Status.Err == "" && !t.Status.Timestamp.Before(since)
		if !running && !ended {
			continue
		}
		ct, err := c.api.ContainerInspect(ctx, t.Status.ContainerStatus.ContainerID)
		if err != nil || ct.State == nil || ct.State.Health == nil {
			continue
		}
		h := ct.State.Health
		if running {
			if h.Status != "healthy" {
				health[t.ID] = h.Status
			}
			continue
		}
		detail := "healthcheck " + h.Status
		if n := len(h.Log); n > 0 {
			last := h.Log[n-1]
			detail += fmt.Sprintf(" (%d failing in a row; last exit %d: %s)", h.FailingStreak, last.ExitCode, strings.TrimSpace(last.Output))
		}
		details[t.ID] = detail
	}
	return details, health
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// dedupe drops repeated task errors, keeping the first task's ID: a crash loop says the same thing.
func dedupe(msgs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range msgs {
		key := m
		if i := strings.Index(m, ": "); i >= 0 {
			key = m[i+2:]
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, m)
		}
	}
	return out
}

// WaitReady blocks until every desired task of service runs the spec's image and is healthy and no
// update is in flight. It calls progress whenever the tasks' summary changes and fails early, naming the
// task errors, on crash loops, rejected tasks (such as a missing image), unschedulable tasks, a paused
// update or Swarm's automatic rollback. ctx bounds the wait.
func (c *Client) WaitReady(ctx context.Context, service string, progress func(string)) error {
	since := time.Now()
	last := ""
	for {
		svc, err := c.inspect(ctx, service)
		if err != nil {
			return err
		}
		tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		if err != nil {
			return fmt.Errorf("swarm: listing tasks of %q: %w", service, err)
		}
		nodes := 1
		if svc.Spec.Mode.Global != nil {
			if n, err := c.eligibleNodes(ctx, svc.Spec); err == nil {
				nodes = n
			}
		}
		details, health := c.containerDetails(ctx, tasks, since)
		r := assess(svc, tasks, details, health, nodes, since, c.cfg.FailureLimit, c.cfg.PendingLimit, time.Now())
		if r.progress != last && progress != nil {
			progress(r.progress)
			last = r.progress
		}
		if r.err != nil {
			return fmt.Errorf("swarm: service %q: %w", service, r.err)
		}
		if r.ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: service %q not ready (%s): %w", service, r.progress, ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// Tasks says in a few words how a service's tasks stand ("2/2 tasks running, 1 starting"), for a
// display; "" when the service does not exist.
func (c *Client) Tasks(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return "", fmt.Errorf("swarm: listing tasks of %q: %w", service, err)
	}
	nodes := 1
	if svc.Spec.Mode.Global != nil {
		if n, err := c.eligibleNodes(ctx, svc.Spec); err == nil {
			nodes = n
		}
	}
	now := time.Now()
	return assess(svc, tasks, nil, nil, nodes, now, c.cfg.FailureLimit, c.cfg.PendingLimit, now).progress, nil
}

// Ping checks that the Docker Engine API answers.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.api.Ping(ctx); err != nil {
		return fmt.Errorf("swarm: the Docker Engine API does not answer: %w", err)
	}
	return nil
}
