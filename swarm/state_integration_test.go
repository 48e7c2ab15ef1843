//go:build integration

package swarm

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

func TestHeartbeatAgeIsSwarmsNotTheDriversClock(t *testing.T) {
	c := testClient(t)
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
	c := testClient(t)
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
	c := testClient(t)
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

func TestBackendLockHasOneHolder(t *testing.T) {
	c := testClient(t)
	a, _ := newStable(t, c)
	b, _ := newStable(t, c)
	ctx := context.Background()
	backend := "be_" + a + ":x" // ':' is no config name character
	t.Cleanup(func() {
		_ = c.UnlockBackend(context.Background(), backend, "r1")
		_ = c.UnlockBackend(context.Background(), backend, "r2")
		_ = c.UnlockBackend(context.Background(), backend, "r3")
	})
	held := func(service, id string) (string, string) {
		t.Helper()
		s, r, err := c.LockBackend(ctx, backend, service, id)
		if err != nil {
			t.Fatal(err)
		}
		return s, r
	}
	if s, r := held(a, "r1"); s != "" || r != "" {
		t.Fatalf("the first lock was refused: held by %s %s", s, r)
	}
	if s, r := held(b, "r2"); s != a || r != "r1" {
		t.Fatalf("a second release got the lock (holder %q %q)", s, r)
	}
	if s, r := held(a, "r1"); s != "" || r != "" {
		t.Fatalf("the holder could not take its own lock again: %s %s", s, r)
	}
	if err := c.UnlockBackend(ctx, backend, "r2"); err != nil {
		t.Fatal(err)
	}
	if s, r := held(b, "r2"); r != "r1" {
		t.Fatalf("a release that does not hold the lock released it (holder %s %s)", s, r)
	}
	if err := c.UnlockBackend(ctx, backend, "r1"); err != nil {
		t.Fatal(err)
	}
	if s, r := held(b, "r2"); s != "" || r != "" {
		t.Fatalf("the released lock is still held by %s %s", s, r)
	}
	// A lock whose service is gone is stale: the next release breaks it.
	_ = c.UnlockBackend(ctx, backend, "r2")
	if s, r := held("fmtest-gone-service", "r-gone"); s != "" || r != "" {
		t.Fatal("the lock was refused")
	}
	if s, r := held(a, "r3"); s != "" || r != "" {
		t.Fatalf("a stale lock of a service that is gone was not broken: held by %s %s", s, r)
	}
}

func TestCheckServersRefusesAnotherServicesServers(t *testing.T) {
	c := testClient(t)
	name, port := newStable(t, c)
	canaryPort := freePort(t)
	c.cfg.CanaryPorts = map[uint32]uint32{port: canaryPort}
	ctx := context.Background()
	own := fmt.Sprintf("127.0.0.1:%d", port)
	ownCanary := fmt.Sprintf("127.0.0.1:%d", canaryPort)
	for _, tt := range []struct {
		name           string
		stable, canary map[string]string
		want           string
	}{
		{"its own ports", map[string]string{"stable1": own}, map[string]string{"canary1": ownCanary, "canary2": ""}, ""},
		{"another service's stable", map[string]string{"stable1": "127.0.0.1:9"}, map[string]string{"canary1": ownCanary}, "stable server stable1 sends requests to 127.0.0.1:9"},
		{"another service's canary", map[string]string{"stable1": own}, map[string]string{"canary1": "10.9.9.9:8080"}, "canary server canary1 sends requests to 10.9.9.9:8080"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckServers(ctx, name, tt.stable, tt.canary)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckServers = %v, want %q", err, tt.want)
			}
		})
	}
}

// testClient is a client of the bed's swarm, closed at the end of the test.
func testClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
