//go:build integration

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/fridaymorning/fridaymorning/swarm"
)

// The multi-node defects, each with the test that showed it on the multi-node bed.

var resolveTool struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// resolve asks Docker's DNS, from inside the stack's HAProxy container (on the manager, on the back
// network), for each name's addresses.
func (b *mnBed) resolve(names ...string) map[string][]string {
	b.t.Helper()
	resolveTool.once.Do(func() {
		resolveTool.path = filepath.Join(filepath.Dir(bin.fridaymorning), "resolve")
		cmd := exec.Command("go", "build", "-o", resolveTool.path, "./testdata/resolve")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
		resolveTool.out, resolveTool.err = cmd.CombinedOutput()
	})
	if resolveTool.err != nil {
		b.t.Fatalf("building testdata/resolve: %v\n%s", resolveTool.err, resolveTool.out)
	}
	tasks, err := b.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", "shop_haproxy"), filters.Arg("desired-state", "running"))})
	if err != nil || len(tasks) == 0 || tasks[0].Status.ContainerStatus == nil {
		b.t.Fatalf("no running HAProxy task to resolve names from (%v)", err)
	}
	netns := "--net=/proc/" + strconv.Itoa(tasks[0].Status.ContainerStatus.PID) + "/ns/net"
	out, err := exec.Command("nsenter", append([]string{netns, resolveTool.path}, names...)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("resolving %v in HAProxy's network namespace: %v\n%s", names, err, out)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] != "-" {
			got[f[0]] = f[1:]
		}
	}
	return got
}

// taskAddresses returns the overlay addresses of service's running tasks.
func (b *mnBed) taskAddresses(service string) []string {
	b.t.Helper()
	tasks, err := b.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	for _, t := range tasks {
		for _, na := range t.NetworksAttachments {
			for _, a := range na.Addresses {
				out = append(out, strings.Split(a, "/")[0])
			}
		}
	}
	return out
}

// setLabels changes the stable service's labels (nil deletes one); only labels change, no task restarts.
func (b *mnBed) setLabels(labels map[string]*string) {
	b.t.Helper()
	ctx := b.ctx(30 * time.Second)
	svc, _, err := b.docker.ServiceInspectWithRaw(ctx, b.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range labels {
		if v == nil {
			delete(svc.Spec.Labels, k)
		} else {
			svc.Spec.Labels[k] = *v
		}
	}
	if _, err := b.docker.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, dockerswarm.ServiceUpdateOptions{}); err != nil {
		b.t.Fatal(err)
	}
}

// TestMultiNodeCanaryKeepsOutOfTheStableIdentity: the canary answers to its own name only. docker stack
// deploy gives the app the network alias "app", and other proxies route by service labels; a canary that
// copied them would be found by everyone who asks for the stable service (tasks.app lists it) or routes
// to it, bypassing HAProxy's weights.
func TestMultiNodeCanaryKeepsOutOfTheStableIdentity(t *testing.T) {
	b := multiNode(t)
	routing := map[string]*string{
		"traefik.enable": ptr("true"), "traefik.http.routers.shop.rule": ptr("Host(`shop.example.com`)"),
		"caddy": ptr("shop.example.com"), "caddy_1.reverse_proxy": ptr("{{upstreams 8080}}"),
		"com.docker.lb.hosts": ptr("shop.example.com"), "shop.owner": ptr("team-a"),
	}
	b.setLabels(routing)
	t.Cleanup(func() {
		for k := range routing {
			routing[k] = nil
		}
		b.setLabels(routing)
	})

	ctx := b.ctx(2 * time.Minute)
	canary, err := b.sw.CreateCanary(ctx, b.service, b.repo+":v2", "identity-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.sw.RemoveService(context.Background(), canary) })
	if err := b.sw.WaitReady(ctx, canary, nil); err != nil {
		t.Fatal(err)
	}
	svc, _, err := b.docker.ServiceInspectWithRaw(ctx, canary, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range routing {
		if _, ok := svc.Spec.Labels[k]; ok && k != "shop.owner" {
			t.Errorf("the canary carries the routing label %s", k)
		}
	}
	if svc.Spec.Labels["shop.owner"] != "team-a" {
		t.Errorf("the canary lost the stable service's own label shop.owner: %v", svc.Spec.Labels)
	}
	for _, n := range svc.Spec.TaskTemplate.Networks {
		if len(n.Aliases) > 0 {
			t.Errorf("the canary has the network aliases %v on %s", n.Aliases, n.Target)
		}
	}

	// What a neighbour on the stack's network sees, once DNS has the canary's task.
	canaryIPs := b.taskAddresses(canary)
	var names map[string][]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		names = b.resolve("tasks.app", "app", "tasks.shop_app", "tasks."+canary)
		if len(names["tasks."+canary]) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("DNS from HAProxy's container: %v; canary task addresses %v", names, canaryIPs)
	if len(names["tasks."+canary]) == 0 || len(names["tasks.app"]) != 3 {
		t.Fatalf("DNS answers %v: want the canary's own name and the app's three tasks", names)
	}
	for _, name := range []string{"tasks.app", "app", "tasks.shop_app"} {
		for _, ip := range canaryIPs {
			if slices.Contains(names[name], ip) {
				t.Errorf("%s lists the canary's task %s: %v", name, ip, names[name])
			}
		}
	}
}

// engines returns a client of every node's Docker engine, the manager first.
func (b *mnBed) engines() []*client.Client {
	b.t.Helper()
	n, err := strconv.Atoi(mnEnv(b.t, "FM_NODES"))
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*client.Client
	for i := 1; i <= n; i++ {
		c, err := client.NewClientWithOpts(client.WithHost("unix://"+filepath.Join(b.dir, fmt.Sprintf("n%d", i), "docker.sock")), client.WithAPIVersionNegotiation())
		if err != nil {
			b.t.Fatal(err)
		}
		b.t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

// tagEverywhere points tag at the image src on every node, as a re-push of the tag would.
func (b *mnBed) tagEverywhere(src, tag string) {
	b.t.Helper()
	for _, e := range b.engines() {
		if err := e.ImageTag(context.Background(), src, tag); err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *mnBed) imageID(ref string) string {
	b.t.Helper()
	img, err := b.docker.ImageInspect(context.Background(), ref)
	if err != nil {
		b.t.Fatal(err)
	}
	return img.ID
}

// TestMultiNodePromotesTheImageItJudged: the tag released is re-pointed at other bits during the bake (a
// re-push); the canary's later tasks and the promotion still run the bits that were judged, because the
// image was resolved once, at the start (here to the image ID: the bed has no registry digests).
func TestMultiNodePromotesTheImageItJudged(t *testing.T) {
	b := multiNode(t)
	tag := b.repo + ":judged"
	b.tagEverywhere(b.repo+":v2", tag)
	t.Cleanup(func() {
		for _, e := range b.engines() {
			_, _ = e.ImageRemove(context.Background(), tag, image.RemoveOptions{})
		}
	})
	judged := b.imageID(b.repo + ":v2")
	cfg := b.config(mnEnv(t, "FM_MN_RUNTIME_TCP"))
	stop := b.load(100)
	p := b.release(cfg, nil, "--image", tag)
	p.waitLine(2*time.Minute, "event=canary-ready")
	b.tagEverywhere(b.repo+":v2-errors", tag)
	code, out := b.finish(p, 5*time.Minute)
	load := stop()
	t.Logf("tag re-pushed during the bake: exit %d; loadgen sent %d, ok %d, failed %d, by version %v %v",
		code, load.Sent, load.OK, load.Failed, load.ByVersion, load.Errors)

	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	if load.ByVersion["v2-errors"] != 0 || load.Failed != 0 {
		t.Errorf("users got the re-pushed bits (%v) or failures (%d): the canary or the promotion ran the tag, not the image judged", load.ByVersion, load.Failed)
	}
	svc, _, err := b.docker.ServiceInspectWithRaw(context.Background(), b.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := svc.Spec.TaskTemplate.ContainerSpec.Image; img != judged {
		t.Errorf("stable runs %s, want the judged image %s", img, judged)
	}
	if svc.Spec.Labels[swarm.LabelImage] != tag {
		t.Errorf("stable's %s label is %q, want the released reference %s", swarm.LabelImage, svc.Spec.Labels[swarm.LabelImage], tag)
	}
	if !strings.Contains(out, "outcome=promoted") {
		t.Error("output lacks outcome=promoted")
	}
	if v := b.versions(30); v["v2"] != 30 {
		t.Errorf("after the promotion HAProxy answers with %v, want v2 only", v)
	}
}

// testService creates a service of the demo app for one test, removed at its end.
func (b *mnBed) testService(name string, mode dockerswarm.ServiceMode, placement []string, stopSignal string) {
	b.t.Helper()
	ctx := b.ctx(time.Minute)
	_, err := b.docker.ServiceCreate(ctx, dockerswarm.ServiceSpec{
		Annotations: dockerswarm.Annotations{Name: name},
		TaskTemplate: dockerswarm.TaskSpec{
			ContainerSpec: &dockerswarm.ContainerSpec{Image: b.repo + ":v1", StopSignal: stopSignal, StopGracePeriod: ptr(3 * time.Second)},
			Placement:     &dockerswarm.Placement{Constraints: placement},
		},
		Mode: mode,
	}, dockerswarm.ServiceCreateOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.sw.RemoveService(ctx, swarm.CanaryName(name))
		_ = b.sw.RemoveService(ctx, name)
	})
}

// TestMultiNodeGlobalServiceWithConstraints: a global service placed on workers only has one task per
// worker, not per node: its readiness and its canary's size count the eligible nodes.
func TestMultiNodeGlobalServiceWithConstraints(t *testing.T) {
	b := multiNode(t)
	name := fmt.Sprintf("mn-global-%d", time.Now().UnixNano()%1e6)
	b.testService(name, dockerswarm.ServiceMode{Global: &dockerswarm.GlobalService{}}, []string{"node.role==worker"}, "")
	ctx := b.ctx(2 * time.Minute)
	wctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	var progress []string
	if err := b.sw.WaitReady(wctx, name, func(p string) { progress = append(progress, p) }); err != nil {
		t.Fatalf("a global service on the two workers never became ready: %v (%v)", err, progress)
	}
	canary, err := b.sw.CreateCanary(ctx, name, b.repo+":v2", "global-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sw.ScaleCanary(ctx, canary, name, 100); err != nil {
		t.Fatal(err)
	}
	svc, _, err := b.docker.ServiceInspectWithRaw(ctx, canary, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := *svc.Spec.Mode.Replicated.Replicas; r != 2 {
		t.Errorf("the canary was scaled to %d tasks, want 2: the workers the stable's constraint allows", r)
	}
	if err := b.sw.WaitReady(wctx, canary, nil); err != nil {
		t.Fatal(err)
	}
	// The promotion: the global service on the new image, ready once its two tasks run it.
	if err := b.sw.UpdateImage(ctx, name, b.repo+":v2"); err != nil {
		t.Fatal(err)
	}
	if err := b.sw.WaitReady(wctx, name, nil); err != nil {
		t.Fatalf("the promoted global service never became ready: %v", err)
	}
}

// TestMultiNodeCanaryRemovalWaitsOnEveryNode: removing a canary waits until its tasks have stopped on
// the nodes they ran on (the manager's task list says), not only on the engine fridaymorning talks to.
// The canary's task runs on a worker and takes 3s to stop (it ignores its stop signal).
func TestMultiNodeCanaryRemovalWaitsOnEveryNode(t *testing.T) {
	b := multiNode(t)
	name := fmt.Sprintf("mn-removal-%d", time.Now().UnixNano()%1e6)
	one := uint64(1)
	b.testService(name, dockerswarm.ServiceMode{Replicated: &dockerswarm.ReplicatedService{Replicas: &one}}, []string{"node.role==worker"}, "SIGWINCH")
	ctx := b.ctx(2 * time.Minute)
	if err := b.sw.WaitReady(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	canary, err := b.sw.CreateCanary(ctx, name, b.repo+":v2", "removal-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sw.WaitReady(ctx, canary, nil); err != nil {
		t.Fatal(err)
	}
	svc, _, err := b.docker.ServiceInspectWithRaw(ctx, canary, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sw.RemoveService(ctx, canary); err != nil {
		t.Fatal(err)
	}
	for i, e := range b.engines() {
		conts, err := e.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+svc.ID))})
		if err != nil {
			t.Fatal(err)
		}
		if len(conts) > 0 {
			t.Errorf("RemoveService returned while %d of the canary's containers still ran on node %d", len(conts), i+1)
		}
	}
}

// TestMultiNodeCanaryIsReadyWhenItsOwnTasksAre: a canary is ready when HAProxy's canary servers that
// pass their health checks are the canary's running tasks, not when any slot does. Here another task
// answers under the canary's DNS name (a decoy with the network alias shop_app-canary, on v3), as a
// canary removed a moment before does until HAProxy's checks and DNS drop it (how a fresh bed's second
// release once sent its first attempts to a gone task). The decoy is removed once the release says the
// canary is ready, or 8s after the canary was created: until then no request may reach it, and the
// release then promotes with no request failed.
func TestMultiNodeCanaryIsReadyWhenItsOwnTasksAre(t *testing.T) {
	b := multiNode(t)
	ctx := b.ctx(3 * time.Minute)
	decoy := fmt.Sprintf("mn-decoy-%d", time.Now().UnixNano()%1e6)
	one := uint64(1)
	_, err := b.docker.ServiceCreate(ctx, dockerswarm.ServiceSpec{
		Annotations: dockerswarm.Annotations{Name: decoy},
		TaskTemplate: dockerswarm.TaskSpec{
			ContainerSpec: &dockerswarm.ContainerSpec{Image: b.repo + ":v3"},
			Networks:      []dockerswarm.NetworkAttachmentConfig{{Target: "shop_back", Aliases: []string{swarm.CanaryName(b.service)}}},
		},
		Mode: dockerswarm.ServiceMode{Replicated: &dockerswarm.ReplicatedService{Replicas: &one}},
	}, dockerswarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			if err := b.sw.RemoveService(context.Background(), decoy); err != nil {
				t.Errorf("removing the decoy: %v", err)
			}
		}
	}
	t.Cleanup(remove)
	if err := b.sw.WaitReady(ctx, decoy, nil); err != nil {
		t.Fatal(err)
	}
	hp := b.haproxy(mnEnv(t, "FM_MN_RUNTIME_TCP"))
	for {
		addrs, err := hp.Addresses(ctx, "canary")
		up := 0
		for _, a := range addrs {
			if a.Up {
				up++
			}
		}
		if err == nil && up > 0 {
			t.Logf("the decoy is up in HAProxy's canary slots: %v", addrs)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the decoy never came up in a canary slot: %v %v", addrs, err)
		case <-time.After(250 * time.Millisecond):
		}
	}

	cfg := b.config(mnEnv(t, "FM_MN_RUNTIME_TCP"), "steps: [20, 50]", "steps: [20]")
	stop := b.load(100)
	p := b.release(cfg, nil, "--image", b.repo+":v2")
	p.waitLine(2*time.Minute, "event=canary-created")
	deadline := time.Now().Add(8 * time.Second)
	for !strings.Contains(p.out.String(), "event=canary-ready") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	readyEarly := strings.Contains(p.out.String(), "event=canary-ready")
	remove()
	code, _ := b.finish(p, 5*time.Minute)
	load := stop()
	t.Logf("decoy removed %s: exit %d; loadgen sent %d, ok %d, failed %d, by version %v %v",
		map[bool]string{true: "once the canary was said ready", false: "8s after the canary was created"}[readyEarly],
		code, load.Sent, load.OK, load.Failed, load.ByVersion, load.Errors)
	if n := load.ByVersion["v3"]; n > 0 {
		t.Errorf("%d requests reached the decoy: the canary was judged ready on a server that is not its task", n)
	}
	if load.Failed != 0 {
		t.Errorf("%d requests failed", load.Failed)
	}
	if code != exitPromoted {
		t.Errorf("exit %d, want %d (promoted)", code, exitPromoted)
	}
}
