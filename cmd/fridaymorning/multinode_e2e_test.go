//go:build integration

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// The multi-node tests run the real binary against the multi-node bed (make testbed NODES=3;
// stacks/testbed/multinode.sh): a swarm of a manager and two workers, each a dockerd in its own network
// namespace, running stacks/production/stack.yml as stack "shop" — HAProxy as a Swarm service whose
// server-template slots resolve tasks.shop_app through Docker's DNS, the app as three replicas over the
// nodes, InfluxDB fed by HAProxy's per-request log. fridaymorning reaches the manager's Docker API, HAProxy's
// runtime API (over TCP, or the admin socket in the manager's volume) and InfluxDB on the bed's bridge.
// Their names start with TestMultiNode: make test runs them first and prints how long they took.

// mnBed is the multi-node bed, as its env file describes it.
type mnBed struct {
	t       *testing.T
	dir     string // .testbed/<bed>-nodes
	docker  *client.Client
	sw      *swarm.Client
	service string // shop_app
	repo    string // the demo app's image repository
	secret  string // InfluxDB's password, which must never show in output
}

// multiNode returns the bed, put back as deployed (app on v1 over three ready nodes, no canary, all
// weight on stable). It skips the test when the bed's environment is absent: make test always has it.
func multiNode(t *testing.T) *mnBed {
	t.Helper()
	host := os.Getenv("FM_MN_DOCKER_HOST")
	if host == "" {
		t.Skip("the multi-node bed is not up (FM_MN_DOCKER_HOST is unset): run make testbed NODES=3 and source .testbed/<bed>-nodes/env, or make test, which does both")
	}
	started := time.Now()
	t.Cleanup(func() { t.Logf("timing: %s took %s", t.Name(), time.Since(started).Round(time.Second)) })
	b := &mnBed{t: t, dir: mnEnv(t, "FM_MN_DIR"), service: mnEnv(t, "FM_MN_SERVICE"), repo: mnEnv(t, "FM_MN_IMAGE_REPO")}
	var err error
	if b.docker, err = client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.docker.Close() })
	if b.sw, err = swarm.New(swarm.Config{Host: host, PollInterval: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.sw.Close() })
	token, err := os.ReadFile(mnEnv(t, "FM_MN_INFLUX_TOKEN_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	_, b.secret, _ = strings.Cut(strings.TrimSpace(string(token)), ":")
	b.reset()
	return b
}

func mnEnv(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: source .testbed/<bed>-nodes/env (make testbed NODES=3 writes it)", key)
	}
	return v
}

func (b *mnBed) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b.t.Cleanup(cancel)
	return ctx
}

// script runs stacks/testbed/multinode.sh with args.
func (b *mnBed) script(args ...string) {
	b.t.Helper()
	out, err := exec.Command("bash", append([]string{mnEnv(b.t, "FM_MN_SCRIPT")}, args...)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("multinode.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// nodes returns the swarm's nodes by hostname.
func (b *mnBed) nodes() map[string]dockerswarm.Node {
	b.t.Helper()
	list, err := b.docker.NodeList(context.Background(), dockerswarm.NodeListOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]dockerswarm.Node{}
	for _, n := range list {
		out[n.Description.Hostname] = n
	}
	return out
}

// reset puts the bed back as deployed, whatever an earlier test left.
func (b *mnBed) reset() {
	b.t.Helper()
	ctx := b.ctx(3 * time.Minute)
	for name, n := range b.nodes() {
		if n.Status.State != dockerswarm.NodeStateReady {
			b.script("node-start", name[strings.LastIndex(name, "-")+1:])
		}
		if n.Spec.Availability != dockerswarm.NodeAvailabilityActive {
			n.Spec.Availability = dockerswarm.NodeAvailabilityActive
			if err := b.docker.NodeUpdate(ctx, n.ID, n.Version, n.Spec); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	if err := b.sw.RemoveService(ctx, swarm.CanaryName(b.service)); err != nil {
		b.t.Fatal(err)
	}
	_, _, version, err := b.sw.ReadState(ctx, b.service)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.sw.WriteState(ctx, b.service, version, nil, ""); err != nil {
		b.t.Fatal(err)
	}
	if img, err := b.sw.Image(ctx, b.service); err != nil {
		b.t.Fatal(err)
	} else if img != b.repo+":v1" {
		if err := b.sw.UpdateImage(ctx, b.service, b.repo+":v1"); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.sw.WaitReady(ctx, b.service, nil); err != nil {
		b.t.Fatalf("resetting the bed: %v", err)
	}
	// Every slot DNS still names is up (no stopped task left in rotation), all weight on stable, and
	// three slots take traffic.
	hp := b.haproxy(mnEnv(b.t, "FM_MN_RUNTIME_TCP"))
	if err := hp.WaitUp(ctx, haproxy.GroupStable); err != nil {
		b.t.Fatalf("resetting the bed: %v", err)
	}
	if _, _, err := hp.Shift(ctx, 0); err != nil {
		b.t.Fatalf("resetting HAProxy's weights: %v", err)
	}
	b.waitStableSlots(ctx, 3)
}

// haproxy is a runtime client of the stack's HAProxy, as fridaymorning.yaml describes it.
func (b *mnBed) haproxy(socket string) *haproxy.Client {
	b.t.Helper()
	hp, err := haproxy.New(haproxy.Config{Mode: haproxy.ModeRuntime, RuntimeSocket: socket, Backend: "be_shop",
		StableServers: []string{"stable*"}, CanaryServers: []string{"canary*"}, PollInterval: 200 * time.Millisecond})
	if err != nil {
		b.t.Fatal(err)
	}
	return hp
}

// waitStableSlots waits until n stable slots are up in HAProxy: DNS has every task.
func (b *mnBed) waitStableSlots(ctx context.Context, n int) {
	b.t.Helper()
	hp := b.haproxy(mnEnv(b.t, "FM_MN_RUNTIME_TCP"))
	for {
		w, err := hp.Weights(ctx)
		up := 0
		if err == nil {
			for name, weight := range w {
				if strings.HasPrefix(name, "stable") && weight > 0 {
					up++
				}
			}
		}
		if up >= n {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("HAProxy has %d stable slots up, want %d (%v %v)", up, n, w, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// config writes a fridaymorning.yaml made from stacks/production/fridaymorning.yaml, with the bed's
// addresses, HAProxy reached through socket, and a test's pace; edits are further old→new replacements.
func (b *mnBed) config(socket string, edits ...string) string {
	b.t.Helper()
	raw, err := os.ReadFile("../../stacks/production/fridaymorning.yaml")
	if err != nil {
		b.t.Fatal(err)
	}
	text := string(raw)
	replace := func(old, new string) {
		if !strings.Contains(text, old) {
			b.t.Fatalf("stacks/production/fridaymorning.yaml has no %q any more: update the multi-node tests", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	for _, r := range [][2]string{
		{"steps: [5, 25, 50]", "steps: [20, 50]"},
		{"bake: 2m", "bake: 6s"},
		{"ready_timeout: 3m", "ready_timeout: 90s"},
		{"timeout: 10m", "timeout: 3m"},
		{"standby: 15m", "standby: 0s"},
		{"runtime_socket: /var/run/haproxy/admin.sock", "runtime_socket: " + socket},
		{"url: http://influxdb:8086", "url: " + mnEnv(b.t, "FM_MN_INFLUX_URL")},
		{"token_file: /run/secrets/influxdb_token", "token_file: " + mnEnv(b.t, "FM_MN_INFLUX_TOKEN_FILE")},
		{"drain_timeout: 30s", "drain_timeout: 10s"},
		{"min_requests: 200", "min_requests: 40"},
		{"on_inconclusive: pause", "on_inconclusive: abort"},
		// The tests are about what runs where, on two cores other tests share: latency is judged loosely.
		{"max_p99: 800ms", "max_p99: 2s"},
		{"max_latency_ratio: 1.2", "max_latency_ratio: 3"},
		{"latency_slack: 20ms", "latency_slack: 300ms"},
	} {
		replace(r[0], r[1])
	}
	for i := 0; i+1 < len(edits); i += 2 {
		replace(edits[i], edits[i+1])
	}
	text += "docker:\n  host: " + mnEnv(b.t, "FM_MN_DOCKER_HOST") + "\nstate:\n  heartbeat: 1s\n  stale_after: 5s\n"
	path := filepath.Join(b.t.TempDir(), "fridaymorning.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// release starts fridaymorning release with config and args, with env added to its environment.
func (b *mnBed) release(config string, env []string, args ...string) *proc {
	b.t.Helper()
	return startProc(b.t, append([]string{"CI=true"}, env...), append([]string{"release", "--config", config}, args...)...)
}

// finish waits for a release to end and returns its exit code and output, which must not hold the
// bed's secret.
func (b *mnBed) finish(p *proc, timeout time.Duration) (int, string) {
	b.t.Helper()
	code := p.wait(timeout)
	out := p.out.String()
	if b.secret != "" && strings.Contains(out, b.secret) {
		b.t.Errorf("a secret (InfluxDB's or the registry's password) appears in fridaymorning's output")
	}
	return code, out
}

// releaseUnderLoad runs a release of image with config under 100 requests a second and returns its exit
// code and output, what the load saw, and on which nodes the canary's tasks ran (first one first).
func (b *mnBed) releaseUnderLoad(config, image string, env ...string) (int, string, loadSummary, []string) {
	b.t.Helper()
	stop := b.load(100)
	canaryNodes := b.placements(swarm.CanaryName(b.service))
	code, out := b.finish(b.release(config, env, "--image", image), 5*time.Minute)
	nodes := canaryNodes()
	return code, out, stop(), nodes
}

// load sends rps requests a second to the stack's HAProxy until the returned function stops it.
func (b *mnBed) load(rps int) func() loadSummary {
	b.t.Helper()
	return startLoadgen(b.t, mnEnv(b.t, "FM_MN_HAPROXY_URL"), rps)
}

// placements records, until stop is called, on which nodes the tasks of service ran, in the order they
// first ran there.
func (b *mnBed) placements(service string) (stop func() []string) {
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	hostnames := map[string]string{}
	for name, n := range b.nodes() {
		hostnames[n.ID] = name
	}
	go func() {
		for {
			tasks, _ := b.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
			mu.Lock()
			for _, t := range tasks {
				if h := hostnames[t.NodeID]; h != "" && t.Status.State == dockerswarm.TaskStateRunning && !slices.Contains(seen, h) {
					seen = append(seen, h)
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// stableTasks returns, by node, the images the stable service's running tasks run.
func (b *mnBed) stableTasks() map[string][]string {
	b.t.Helper()
	tasks, err := b.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", b.service), filters.Arg("desired-state", "running"))})
	if err != nil {
		b.t.Fatal(err)
	}
	hostnames := map[string]string{}
	for name, n := range b.nodes() {
		hostnames[n.ID] = name
	}
	out := map[string][]string{}
	for _, t := range tasks {
		if t.Status.State == dockerswarm.TaskStateRunning {
			out[hostnames[t.NodeID]] = append(out[hostnames[t.NodeID]], t.Spec.ContainerSpec.Image)
		}
	}
	return out
}

func (b *mnBed) canaryExists() bool {
	_, _, err := b.docker.ServiceInspectWithRaw(context.Background(), swarm.CanaryName(b.service), dockerswarm.ServiceInspectOptions{})
	return err == nil
}

// versions asks HAProxy's frontend n times which version answers.
func (b *mnBed) versions(n int) map[string]int {
	b.t.Helper()
	out := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := http.Get(mnEnv(b.t, "FM_MN_HAPROXY_URL"))
		if err != nil {
			b.t.Fatal(err)
		}
		resp.Body.Close()
		out[resp.Header.Get("X-Demo-Version")]++
	}
	return out
}

// firstOnWorker reports whether the first node of nodes is a worker: the canary's first task, placed
// away from the manager's HAProxy and InfluxDB by Swarm's spread.
func firstOnWorker(nodes []string) bool {
	return len(nodes) > 0 && strings.Contains(nodes[0], "-worker")
}

// influxNumber runs an InfluxQL query returning one number on the stack's InfluxDB.
func (b *mnBed) influxNumber(q string) float64 {
	b.t.Helper()
	token, err := os.ReadFile(mnEnv(b.t, "FM_MN_INFLUX_TOKEN_FILE"))
	if err != nil {
		b.t.Fatal(err)
	}
	user, pass, _ := strings.Cut(strings.TrimSpace(string(token)), ":")
	req, err := http.NewRequest(http.MethodGet, mnEnv(b.t, "FM_MN_INFLUX_URL")+"/query?db="+mnEnv(b.t, "FM_MN_INFLUX_DB")+"&q="+url.QueryEscape(q), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Series []struct{ Values [][]any } `json:"series"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		b.t.Fatalf("InfluxDB's answer to %q: %v", q, err)
	}
	if len(res.Results) == 0 || len(res.Results[0].Series) == 0 || len(res.Results[0].Series[0].Values) == 0 {
		return 0
	}
	n, _ := res.Results[0].Series[0].Values[0][1].(float64)
	return n
}

// TestMultiNodeHealthyReleasePromotes: the production stack's release of a healthy image, under steady
// load, through HAProxy's runtime API over TCP: the canary runs on a worker, every step passes, the stable
// service runs the new image on every node, and not one request fails.
func TestMultiNodeHealthyReleasePromotes(t *testing.T) {
	b := multiNode(t)
	code, out, load, nodes := b.releaseUnderLoad(b.config(mnEnv(t, "FM_MN_RUNTIME_TCP")), b.repo+":v2")
	t.Logf("healthy release: exit %d; loadgen sent %d, ok %d, failed %d, by version %v %v; canary ran on %v",
		code, load.Sent, load.OK, load.Failed, load.ByVersion, load.Errors, nodes)

	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	for _, want := range []string{"event=canary-ready", "step=1/2 canary=20%", "result=pass", "outcome=promoted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !firstOnWorker(nodes) {
		t.Errorf("the canary's tasks ran on %v: want its first task on a worker", nodes)
	}
	// Three tasks on the new bits, over more than one node (a start-first rolling update places each new
	// task beside the old one's, so Swarm's spread need not end one per node).
	tasks, running := b.stableTasks(), 0
	for _, imgs := range tasks {
		for _, img := range imgs {
			if img == b.imageID(b.repo+":v2") {
				running++
			}
		}
	}
	if running != 3 || len(tasks) < 2 {
		t.Errorf("stable tasks by node %v: want three on v2 (%s) over more than one node", tasks, b.imageID(b.repo+":v2"))
	}
	if v := b.versions(30); v["v2"] != 30 {
		t.Errorf("after the promotion HAProxy answers with %v, want v2 only", v)
	}
	if b.canaryExists() {
		t.Error("the canary service is still there after the promotion")
	}
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed (%v): want zero", load.Failed, load.Sent, load.Errors)
	}
	if load.ByVersion["v1"] == 0 || load.ByVersion["v2"] == 0 {
		t.Errorf("load by version %v: want both versions served", load.ByVersion)
	}
}

// TestMultiNodeBadReleaseAborts: a release of an image answering half its requests with 500 is aborted
// by the analysis, through the admin socket HAProxy shares in the manager's volume: the stable service
// is untouched, the canary gone, and the failed requests bounded by the canary's share.
func TestMultiNodeBadReleaseAborts(t *testing.T) {
	b := multiNode(t)
	before, _, err := b.docker.ServiceInspectWithRaw(context.Background(), b.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, out, load, nodes := b.releaseUnderLoad(b.config(mnEnv(t, "FM_MN_RUNTIME_SOCKET")), b.repo+":v2-errors")
	t.Logf("bad release: exit %d; loadgen sent %d, ok %d, failed %d, by version %v %v; canary ran on %v",
		code, load.Sent, load.OK, load.Failed, load.ByVersion, load.Errors, nodes)

	if code != exitAbortedAnalysis {
		t.Fatalf("exit %d, want %d (aborted by the analysis)", code, exitAbortedAnalysis)
	}
	for _, want := range []string{"result=fail", "outcome=aborted-analysis"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !firstOnWorker(nodes) {
		t.Errorf("the canary's tasks ran on %v: want its first task on a worker", nodes)
	}
	after, _, err := b.docker.ServiceInspectWithRaw(context.Background(), b.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !onlyOwnLabelsChanged(before.Spec, after.Spec) {
		t.Errorf("the stable service changed beyond fridaymorning's labels")
	}
	if b.canaryExists() {
		t.Error("the canary service is still there after the abort")
	}
	if v := b.versions(30); v["v1"] != 30 {
		t.Errorf("after the abort HAProxy answers with %v, want v1 only", v)
	}
	if load.ByVersion["v2-errors"] == 0 {
		t.Errorf("the canary served nothing (%v): the abort was not judged on real traffic", load.ByVersion)
	}
	// The dashboard's error rate is the mean of HAProxy's e5 field: the canary's 5xx are in it.
	if n := b.influxNumber(`SELECT sum("e5") FROM "haproxy_request" WHERE "server" =~ /^canary/ AND time > now() - 10m`); n < 1 {
		t.Errorf("InfluxDB has %g canary 5xx in the e5 field, want the ones users got", n)
	}
	// The canary had 20% of the requests, half of which failed, and only for part of the release.
	if load.Failed > load.Sent/10 {
		t.Errorf("%d of %d requests failed: more than the canary's share of errors", load.Failed, load.Sent)
	}
}
