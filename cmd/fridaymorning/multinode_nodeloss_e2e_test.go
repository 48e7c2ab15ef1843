//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/fridaymorning/fridaymorning/swarm"
)

// Nodes lost mid-release: the worker that runs the canary goes away during a bake, its engine stopped
// or the node drained. Whatever the verdict, the release must end in a safe, stated outcome: stable at
// full strength once Swarm has rescheduled it, the canary gone or promoted as the outcome says, and the
// failed requests counted and bounded.

// canaryNode returns the hostname of the node that runs the canary's task.
func (b *mnBed) canaryNode() string {
	b.t.Helper()
	tasks, err := b.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", swarm.CanaryName(b.service)), filters.Arg("desired-state", "running"))})
	if err != nil {
		b.t.Fatal(err)
	}
	for name, n := range b.nodes() {
		for _, t := range tasks {
			if t.NodeID == n.ID {
				return name
			}
		}
	}
	b.t.Fatalf("the canary has no task on any node (%d tasks)", len(tasks))
	return ""
}

// nodeLoss runs a release of a healthy image under load and calls lose with the canary's node once the
// first step bakes; it checks and prints how the release ended.
func (b *mnBed) nodeLoss(what string, lose func(node string)) {
	b.t.Helper()
	cfg := b.config(mnEnv(b.t, "FM_MN_RUNTIME_TCP"), "bake: 6s", "bake: 10s")
	stop := b.load(100)
	p := b.release(cfg, nil, "--image", b.repo+":v2")
	p.waitLine(2*time.Minute, "event=bake", "step=1/2")
	node := b.canaryNode()
	if !strings.Contains(node, "-worker") {
		b.t.Fatalf("the canary runs on %s: want a worker to lose", node)
	}
	lost := time.Now()
	lose(node)
	code, out := b.finish(p, 6*time.Minute)
	load := stop()
	outcome := "?"
	if i := strings.LastIndex(out, "outcome="); i >= 0 {
		outcome = strings.Fields(out[i:])[0]
	}

	ctx := b.ctx(2 * time.Minute)
	if err := b.sw.WaitReady(ctx, b.service, nil); err != nil {
		b.t.Errorf("stable is not back at full strength after the release: %v", err)
	}
	img, err := b.sw.Released(ctx, b.service)
	if err != nil {
		b.t.Fatal(err)
	}
	tasks := b.stableTasks()
	running := 0
	for _, imgs := range tasks {
		running += len(imgs)
	}
	perNode := map[string]int{}
	for n, imgs := range tasks {
		perNode[n] = len(imgs)
	}
	b.t.Logf("%s (%s) during step 1: exit %d, %s, %s later; loadgen sent %d, ok %d, failed %d (%.2f%%), by version %v %v; stable %s with %d tasks %v; canary left: %v",
		what, node, code, outcome, time.Since(lost).Round(time.Second), load.Sent, load.OK, load.Failed,
		100*float64(load.Failed)/float64(max(load.Sent, 1)), load.ByVersion, load.Errors, img, running, perNode, b.canaryExists())

	switch code {
	case exitPromoted:
		if img != b.repo+":v2" {
			b.t.Errorf("promoted, but stable runs %s", img)
		}
	case exitAbortedAnalysis, exitAbortedInconclusive:
		if img != b.repo+":v1" {
			b.t.Errorf("aborted, but stable runs %s", img)
		}
	default:
		b.t.Errorf("exit %d (%s): want promoted or aborted, a stated outcome", code, outcome)
	}
	if running != 3 {
		b.t.Errorf("stable runs %d tasks, want 3 (rescheduled off %s)", running, node)
	}
	if b.canaryExists() {
		b.t.Error("the canary service is left")
	}
	// Requests that were on the lost node's tasks may fail; HAProxy's retries and health checks bound the rest.
	if load.Failed > load.Sent/50 {
		b.t.Errorf("%d of %d requests failed: more than 2%%", load.Failed, load.Sent)
	}
}

// TestMultiNodeWorkerStoppedDuringBake: the dockerd of the worker running the canary stops during the
// first bake (its containers stop with it), and stays down.
func TestMultiNodeWorkerStoppedDuringBake(t *testing.T) {
	b := multiNode(t)
	t.Cleanup(b.reset)
	b.nodeLoss("worker stopped", func(node string) {
		b.script("node-stop", node[strings.LastIndex(node, "-")+1:])
	})
}

// TestMultiNodeWorkerDrainedDuringBake: the worker running the canary is drained (docker node update
// --availability drain) during the first bake: Swarm moves its tasks, the canary's among them.
func TestMultiNodeWorkerDrainedDuringBake(t *testing.T) {
	b := multiNode(t)
	t.Cleanup(b.reset)
	b.nodeLoss("worker drained", func(node string) {
		n := b.nodes()[node]
		n.Spec.Availability = dockerswarm.NodeAvailabilityDrain
		if err := b.docker.NodeUpdate(context.Background(), n.ID, n.Version, n.Spec); err != nil {
			b.t.Fatal(err)
		}
	})
}

// TestMultiNodeCanaryRemovalDoesNotWaitForALostNode: the canary's worker stops; its task stays "running"
// in the manager's task list for good (the node cannot report). Removing the canary, as an abort does,
// waits for the nodes that are up and returns once Swarm sees that node down.
func TestMultiNodeCanaryRemovalDoesNotWaitForALostNode(t *testing.T) {
	b := multiNode(t)
	t.Cleanup(b.reset)
	ctx := b.ctx(2 * time.Minute)
	canary, err := b.sw.CreateCanary(ctx, b.service, b.repo+":v2", "lost-node-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sw.WaitReady(ctx, canary, nil); err != nil {
		t.Fatal(err)
	}
	node := b.canaryNode()
	if !strings.Contains(node, "-worker") {
		t.Fatalf("the canary runs on %s: want a worker to lose", node)
	}
	b.script("node-stop", node[strings.LastIndex(node, "-")+1:])
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.sw.RemoveService(rctx, canary); err != nil {
		t.Fatalf("removing the canary whose node is gone: %v", err)
	}
}
