//go:build integration

package swarm

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

func TestHeartbeatAgeIsSwarmsNotTheDriversClock(t *testing.T) {
	c, err := New(Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, _ := newStable(t, c)
	ctx := context.Background()
	// A driver whose clock is an hour behind beats now: the beat is fresh.
	if err := c.Beat(ctx, name, "laptop/1/abc", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	age, found, err := c.LastBeat(ctx, name)
	if err != nil || !found || age > 10*time.Second {
		t.Fatalf("LastBeat = %s, %v, %v: want a fresh beat by Swarm's clock", age, found, err)
	}
	// And the age grows while nobody beats.
	time.Sleep(1500 * time.Millisecond)
	if later, _, err := c.LastBeat(ctx, name); err != nil || later < age+time.Second {
		t.Fatalf("age %s, then %s after 1.5s: it does not grow", age, later)
	}
	if _, found, err := c.LastBeat(ctx, "fmtest-no-such-service"); found || err != nil {
		t.Fatalf("a missing service: found %v, %v", found, err)
	}
}

func TestRecordCopyOnTheCanarySurvivesTheStablesLabels(t *testing.T) {
	c, err := New(Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, port := newStable(t, c)
	c.cfg.CanaryPorts = map[uint32]uint32{port: freePort(t)}
	ctx := context.Background()
	canary, err := c.CreateCanary(ctx, name, imageRepo()+":v2", "r-copy")
	if err != nil {
		t.Fatal(err)
	}
	_, _, v, err := c.ReadState(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.WriteState(ctx, name, v, []byte(`{"id":"r-copy"}`), ""); !ok || err != nil {
		t.Fatalf("WriteState %v %v", ok, err)
	}
	if err := c.MirrorState(ctx, canary, []byte(`{"id":"r-copy"}`)); err != nil {
		t.Fatal(err)
	}
	// What `docker service update --label-rm fridaymorning.state` (or a stack deploy) does.
	svc, err := c.inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	spec.Labels = cloneLabels(spec.Labels)
	delete(spec.Labels, LabelState)
	if _, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec, _, _, err := c.ReadState(ctx, name); err != nil || rec != nil {
		t.Fatalf("the stable service still has a record: %s, %v", rec, err)
	}
	if got, err := c.MirroredState(ctx, name); err != nil || string(got) != `{"id":"r-copy"}` {
		t.Fatalf("MirroredState = %s, %v", got, err)
	}
	if err := c.RemoveService(ctx, canary); err != nil {
		t.Fatal(err)
	}
	if got, err := c.MirroredState(ctx, name); err != nil || got != nil {
		t.Fatalf("MirroredState without a canary = %s, %v", got, err)
	}
	if err := c.MirrorState(ctx, canary, []byte("x")); err != nil {
		t.Fatalf("a copy on a canary that is gone: %v", err)
	}
}

func TestPromotionLeavesTheUpdatePolicyAsItFound(t *testing.T) {
	c, err := New(Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, _ := newStable(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := c.inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	own := &swarm.UpdateConfig{Parallelism: 1, Delay: time.Second, FailureAction: swarm.UpdateFailureActionPause, Order: swarm.UpdateOrderStopFirst, MaxFailureRatio: 0.5}
	spec := svc.Spec
	spec.UpdateConfig = own
	if _, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateImage(ctx, name, imageRepo()+":v2"); err != nil {
		t.Fatal(err)
	}
	during, err := c.inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if during.Spec.UpdateConfig.FailureAction != swarm.UpdateFailureActionRollback {
		t.Fatalf("the promotion's update policy is %+v, want failure action rollback", during.Spec.UpdateConfig)
	}
	if err := c.WaitReady(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	before := runningTaskIDs(t, c, name)
	if err := c.RestoreUpdatePolicy(ctx, name); err != nil {
		t.Fatal(err)
	}
	after, err := c.inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Spec.UpdateConfig, own) {
		t.Errorf("update policy after the promotion %+v, want the service's own %+v", after.Spec.UpdateConfig, own)
	}
	if _, ok := after.Spec.Labels[LabelUpdateConfig]; ok {
		t.Errorf("label %s left behind", LabelUpdateConfig)
	}
	if got := after.Spec.TaskTemplate.ContainerSpec.Image; got != imageRepo()+":v2" {
		t.Errorf("image %s after putting the policy back", got)
	}
	time.Sleep(2 * time.Second) // a task restart would show by now
	if now := runningTaskIDs(t, c, name); !reflect.DeepEqual(now, before) {
		t.Errorf("putting the policy back restarted tasks: %v → %v", before, now)
	}
	if err := c.RestoreUpdatePolicy(ctx, name); err != nil {
		t.Errorf("a second restore: %v", err)
	}
}

func runningTaskIDs(t *testing.T, c *Client, service string) []string {
	t.Helper()
	tasks, err := c.api.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}
