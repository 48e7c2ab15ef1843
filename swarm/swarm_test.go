package swarm

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

func stableService() swarm.Service {
	replicas := uint64(3)
	return swarm.Service{
		ID: "svc1",
		Spec: swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: "shop", Labels: map[string]string{
				"team": "checkout", stackNamespaceLabel: "prod", LabelState: `{"id":"r0"}`, LabelRequest: "abort",
			}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{
					Image:  "shop:v1",
					Env:    []string{"DB=postgres://db"},
					Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "data", Target: "/data"}},
					Labels: map[string]string{stackNamespaceLabel: "prod"},
				},
				Placement:   &swarm.Placement{Constraints: []string{"node.role==worker"}},
				ForceUpdate: 7,
			},
			Mode:     swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
			Networks: []swarm.NetworkAttachmentConfig{{Target: "backend", Aliases: []string{"shop"}}},
			EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
				{TargetPort: 8080, PublishedPort: 18410, PublishMode: swarm.PortConfigPublishModeHost},
				{TargetPort: 9090}, // not published: nothing to map
			}},
		},
	}
}

func TestCanarySpec(t *testing.T) {
	stable := stableService()
	cfg := Config{CanaryPorts: map[uint32]uint32{18410: 18411}, CanaryReplicas: 1}
	spec, err := CanarySpec(stable, "shop:v2", "r1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name is the stable's plus -canary", spec.Name, "shop-canary"},
		{"image is the new one", spec.TaskTemplate.ContainerSpec.Image, "shop:v2"},
		{"env copied", spec.TaskTemplate.ContainerSpec.Env[0], "DB=postgres://db"},
		{"mounts copied", spec.TaskTemplate.ContainerSpec.Mounts[0].Target, "/data"},
		{"placement copied", spec.TaskTemplate.Placement.Constraints[0], "node.role==worker"},
		{"networks copied", spec.Networks[0].Target, "backend"},
		{"not the stable's network aliases", len(spec.Networks[0].Aliases), 0},
		{"user labels copied", spec.Labels["team"], "checkout"},
		{"marked as canary", spec.Labels[LabelRole], RoleCanary},
		{"marked with the release", spec.Labels[LabelRelease], "r1"},
		{"names its stable", spec.Labels[LabelStable], "shop"},
		{"not owned by the stack, so a stack deploy --prune leaves it alone", spec.Labels[stackNamespaceLabel], ""},
		{"not the stable's release record", spec.Labels[LabelState], ""},
		{"not the stable's pending request", spec.Labels[LabelRequest], ""},
		{"its own replica count", *spec.Mode.Replicated.Replicas, uint64(1)},
		{"published port mapped away from stable's", spec.EndpointSpec.Ports[0].PublishedPort, uint32(18411)},
		{"publish mode kept", spec.EndpointSpec.Ports[0].PublishMode, swarm.PortConfigPublishModeHost},
		{"unpublished port untouched", spec.EndpointSpec.Ports[1].PublishedPort, uint32(0)},
		{"force-update counter reset", spec.TaskTemplate.ForceUpdate, uint64(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// The stable spec must be untouched: the canary is a deep copy.
	if stable.Spec.TaskTemplate.ContainerSpec.Image != "shop:v1" || stable.Spec.EndpointSpec.Ports[0].PublishedPort != 18410 ||
		stable.Spec.Labels[LabelRole] != "" || *stable.Spec.Mode.Replicated.Replicas != 3 {
		t.Errorf("stable spec changed: %+v", stable.Spec)
	}
}

func TestCanarySpecRefusesUnmappedPort(t *testing.T) {
	_, err := CanarySpec(stableService(), "shop:v2", "r1", Config{})
	if err == nil || !strings.Contains(err.Error(), "publishes port 18410") || !strings.Contains(err.Error(), "canary.ports") {
		t.Fatalf("err = %v, want it to name the port and canary.ports", err)
	}
}

func task(id, image string, state, desired swarm.TaskState, at time.Time, errMsg string) swarm.Task {
	return swarm.Task{
		ID:           id,
		Meta:         swarm.Meta{CreatedAt: at},
		Spec:         swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		DesiredState: desired,
		Status:       swarm.TaskStatus{State: state, Timestamp: at, Err: errMsg},
	}
}

func TestAssess(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	now := t0.Add(20 * time.Second)
	svc := func(image string, replicas uint64, us *swarm.UpdateStatus) swarm.Service {
		return swarm.Service{Spec: swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		}, UpdateStatus: us}
	}
	run, shut, fail := swarm.TaskStateRunning, swarm.TaskStateShutdown, swarm.TaskStateFailed
	tests := []struct {
		name      string
		svc       swarm.Service
		tasks     []swarm.Task
		health    map[string]string
		ready     bool
		errSubstr string
		progress  string
	}{
		{
			name:     "all replicas running the image",
			svc:      svc("a:v2", 2, nil),
			tasks:    []swarm.Task{task("t1", "a:v2", run, run, t0, ""), task("t2", "a:v2", run, run, t0, "")},
			ready:    true,
			progress: "2/2 tasks running",
		},
		{
			name:     "running but not healthy yet is not ready",
			svc:      svc("a:v2", 1, nil),
			tasks:    []swarm.Task{task("t1", "a:v2", run, run, t0, "")},
			health:   map[string]string{"t1": "starting"},
			progress: "0/1 tasks running, 1 starting",
		},
		{
			name:     "old image tasks do not count",
			svc:      svc("a:v2", 1, nil),
			tasks:    []swarm.Task{task("t1", "a:v1", run, shut, t0, ""), task("t2", "a:v2", swarm.TaskStateStarting, run, t0, "")},
			progress: "0/1 tasks running, 1 starting",
		},
		{
			name:     "update in flight is not ready",
			svc:      svc("a:v2", 1, &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}),
			tasks:    []swarm.Task{task("t1", "a:v2", run, run, t0, "")},
			progress: "1/1 tasks running, update in progress",
		},
		{
			name:      "crash loop fails early with the task error",
			svc:       svc("a:v2", 1, nil),
			tasks:     []swarm.Task{task("t1", "a:v2", fail, shut, t0.Add(time.Second), "task: non-zero exit (1)"), task("t2", "a:v2", fail, shut, t0.Add(6*time.Second), "task: non-zero exit (1)")},
			errSubstr: "2 tasks of a:v2 failed: task t1: task: non-zero exit (1)",
		},
		{
			name:  "one failure is tolerated",
			svc:   svc("a:v2", 1, nil),
			tasks: []swarm.Task{task("t1", "a:v2", fail, shut, t0.Add(time.Second), "exit 1"), task("t2", "a:v2", run, run, t0, "")},
			ready: true,
		},
		{
			name:  "failures from before the wait are history",
			svc:   svc("a:v2", 1, nil),
			tasks: []swarm.Task{task("t1", "a:v2", fail, shut, t0.Add(-time.Hour), "x"), task("t2", "a:v2", fail, shut, t0.Add(-time.Hour), "x"), task("t3", "a:v2", run, run, t0, "")},
			ready: true,
		},
		{
			name: "tasks killed for failing their healthcheck count as failures, though they exit cleanly",
			svc:  svc("a:v2", 1, nil),
			tasks: []swarm.Task{task("t1", "a:v2", swarm.TaskStateComplete, shut, t0.Add(3*time.Second), ""),
				task("t2", "a:v2", swarm.TaskStateComplete, shut, t0.Add(9*time.Second), "")},
			errSubstr: "2 tasks of a:v2 failed",
		},
		{
			name:      "missing image fails at once",
			svc:       svc("a:nope", 1, nil),
			tasks:     []swarm.Task{task("t1", "a:nope", swarm.TaskStateRejected, shut, t0.Add(time.Second), "No such image: a:nope")},
			errSubstr: "No such image: a:nope",
		},
		{
			name:      "unschedulable task fails after the pending limit",
			svc:       svc("a:v2", 1, nil),
			tasks:     []swarm.Task{task("t1", "a:v2", swarm.TaskStatePending, run, t0, "no suitable node (scheduling constraints not satisfied on 1 node)")},
			errSubstr: "cannot be scheduled",
		},
		{
			// A release of a spec may change the env alone: a task with the old env is not of the spec,
			// even though its image is (before Swarm's updater marks the update as in flight).
			name: "a task of the same image with another env is not counted",
			svc: func() swarm.Service {
				s := svc("a:v1", 1, nil)
				s.Spec.TaskTemplate.ContainerSpec.Env = []string{"POOL=20"}
				return s
			}(),
			tasks: func() []swarm.Task {
				tk := task("t1", "a:v1", run, run, t0, "")
				tk.Spec.ContainerSpec.Env = []string{"POOL=10"}
				return []swarm.Task{tk}
			}(),
			ready: false,
		},
		{
			name:      "swarm's automatic rollback is a failure",
			svc:       svc("a:v2", 1, &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}),
			tasks:     []swarm.Task{task("t1", "a:v1", run, run, t0, "")},
			errSubstr: "update rollback_completed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := assess(tt.svc, tt.tasks, nil, tt.health, 1, t0, 2, 15*time.Second, now)
			if r.ready != tt.ready {
				t.Errorf("ready = %v, want %v (%s, err %v)", r.ready, tt.ready, r.progress, r.err)
			}
			if tt.errSubstr == "" && r.err != nil {
				t.Errorf("unexpected err %v", r.err)
			}
			if tt.errSubstr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tt.errSubstr) || !errors.Is(r.err, ErrTasksFailed) {
					t.Errorf("err = %v, want ErrTasksFailed containing %q", r.err, tt.errSubstr)
				}
			}
			if tt.progress != "" && r.progress != tt.progress {
				t.Errorf("progress = %q, want %q", r.progress, tt.progress)
			}
		})
	}
}

func TestPromotionSpec(t *testing.T) {
	stable := stableService().Spec
	stable.UpdateConfig = &swarm.UpdateConfig{Parallelism: 2, Delay: 3 * time.Second, FailureAction: swarm.UpdateFailureActionPause}
	got := PromotionSpec(stable, "shop:v2")
	if got.TaskTemplate.ContainerSpec.Image != "shop:v2" || stable.TaskTemplate.ContainerSpec.Image != "shop:v1" {
		t.Fatalf("image %s (stable's spec now %s)", got.TaskTemplate.ContainerSpec.Image, stable.TaskTemplate.ContainerSpec.Image)
	}
	uc := got.UpdateConfig
	if uc.FailureAction != swarm.UpdateFailureActionRollback || uc.Parallelism != 2 || uc.Delay != 3*time.Second {
		t.Errorf("update config %+v: want the service's pace with rollback on failure", uc)
	}
	if uc.Order != swarm.UpdateOrderStopFirst {
		t.Errorf("order %q: a host-mode published port cannot be shared, so stop-first", uc.Order)
	}
	if stable.UpdateConfig.FailureAction != swarm.UpdateFailureActionPause {
		t.Error("the stable spec passed in was changed")
	}
	stable.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}
	stable.UpdateConfig = nil
	if got := PromotionSpec(stable, "shop:v2").UpdateConfig; got.Order != swarm.UpdateOrderStartFirst || got.Parallelism != 1 {
		t.Errorf("no host port: %+v, want start-first", got)
	}
}
