//go:build integration

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/swarm"
)

// Releases from a stack file, on the real bed: the stable service is deployed by `docker stack deploy`,
// and each release is the same stack file with other variables.

// stackBed is a stack-deployed stable service behind a test stack's HAProxy.
type stackBed struct {
	*stack
	name, file string
	stablePort int
	canaryPort int
	sw         *swarm.Client
}

const demoStackFile = `version: "3.8"
services:
  demo:
    image: ${DEMO_IMAGE}
    environment:
      DEMO_SETTING: ${SETTING:-pool=10}
      DEMO_ERROR_RATE: ${ERROR_RATE:-0}
      DEMO_CONFIG_FILE: /etc/demo/demo.conf
    ports:
      - {target: 8080, published: %d, mode: host}
    configs:
      - {source: demo_conf, target: /etc/demo/demo.conf}
    stop_grace_period: 10s
    deploy:
      replicas: 1
      labels: {team: e2e}
configs:
  demo_conf:
    name: %s_demo_conf_${CONF:-1}
    file: ./demo-${CONF:-1}.conf
`

// demoImage builds, once per test run, the demo app of this tree as its own image: the bed's demo
// images are shared by every bed on the engine, and may be built from another tree.
var demoImage = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fm-sf-image")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	dockerfile, err := os.ReadFile("../../stacks/demo/Dockerfile")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644); err != nil {
		return "", err
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "demoapp"), "../demoapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the demo app: %v\n%s", err, out)
	}
	tag := os.Getenv("FM_IMAGE_REPO") + ":stackfile-e2e"
	img := exec.Command("docker", "build", "-q", "--build-arg", "VERSION=v1", "-t", tag, dir)
	img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := img.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %v\n%s", err, out)
	}
	return tag, nil
})

// newStackBed deploys demoStackFile as a stack with docker stack deploy, in place of newStack's plain
// stable service, and points the stack's fridaymorning.yaml at it (stack_file, stack, service).
func newStackBed(t *testing.T) *stackBed {
	t.Helper()
	b := &stackBed{name: fmt.Sprintf("fmsf%d", time.Now().UnixNano()%1e7)}
	b.stack = newStack(t, func(_, yaml *string) {
		if i := strings.Index(*yaml, "  ports: [\""); i >= 0 {
			fmt.Sscanf((*yaml)[i:], "  ports: [\"%d:%d\"]", &b.stablePort, &b.canaryPort)
		}
	})
	if b.stablePort == 0 {
		t.Fatal("no canary.ports in the stack's fridaymorning.yaml")
	}
	var err error
	if b.sw, err = swarm.New(swarm.Config{PollInterval: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.sw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.sw.RemoveService(ctx, b.service); err != nil { // newStack's plain one: its port is ours now
		t.Fatal(err)
	}
	dir := filepath.Dir(b.configPath)
	b.file = filepath.Join(dir, "stack.yml")
	for name, text := range map[string]string{
		b.file:        fmt.Sprintf(demoStackFile, b.stablePort, b.name),
		"demo-1.conf": "greeting from config 1\n", "demo-2.conf": "greeting from config 2\n", "demo-3.conf": "greeting from config 3\n",
	} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.service = b.name + "_demo"
	img, err := demoImage()
	if err != nil {
		t.Fatal(err)
	}
	b.env = []string{"DEMO_IMAGE=" + img}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.sw.RemoveService(ctx, swarm.CanaryName(b.service))
		_ = exec.Command("docker", "stack", "rm", b.name).Run()
		_ = b.sw.RemoveService(ctx, b.service)
	})
	b.deploy(t)
	if err := b.sw.WaitReady(ctx, b.service, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.hp.WaitUp(ctx, "stable"); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(b.configPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "service: fm-"+b.app+"\n", fmt.Sprintf("service: demo\nstack: %s\nstack_file: %s\n", b.name, b.file), 1)
	// These tests are about what runs, not about speed: latency on two shared cores must not fail them.
	text = strings.Replace(text, "analysis:\n", "analysis:\n  max_latency_ratio: 5\n  latency_slack: 250ms\n", 1)
	if err := os.WriteFile(b.configPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// deploy runs docker stack deploy of the stack file with the release's variables (b.env) and extra.
func (b *stackBed) deploy(t *testing.T, extra ...string) string {
	t.Helper()
	cmd := exec.Command("docker", "stack", "deploy", "--detach=true", "-c", b.file, b.name)
	cmd.Env = append(append(os.Environ(), b.env...), extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	return string(out)
}

// headers returns what the demo app on port reports: its setting and its config's first line.
func headers(t *testing.T, port int) (setting, config string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET :%d: %v", port, err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Demo-Setting"), resp.Header.Get("X-Demo-Config")
}

func (b *stackBed) configExists(name string) bool {
	_, _, err := b.docker.ConfigInspectWithRaw(context.Background(), name)
	return err == nil
}

// wantConfigs checks which of the stack's demo configs exist, by number, saying why each matters.
func (b *stackBed) wantConfigs(t *testing.T, want map[int]string) {
	t.Helper()
	for n, why := range want {
		exists := !strings.HasPrefix(why, "gone: ")
		if got := b.configExists(fmt.Sprintf("%s_demo_conf_%d", b.name, n)); got != exists {
			t.Errorf("config %d exists: %v, want %v (%s)", n, got, exists, why)
		}
	}
}

func (b *stackBed) taskIDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("docker", "service", "ps", "-q", "--filter", "desired-state=running", b.service).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// An env-only change: the canary runs the new value while stable keeps the old one, preflight says so,
// promotion applies it; then docker stack deploy of the same file changes nothing but drops
// fridaymorning's labels, and replaces no task.
func TestStackFileEnvChangeIsCanariedAndPromoted(t *testing.T) {
	b := newStackBed(t)
	stop := b.startLoad(80)
	b.env = append(b.env, "SETTING=pool=20")
	code, out := b.release("--pause-before-promote", "--report", filepath.Join(t.TempDir(), "report.xml"))
	if code != exitAbortedInconclusive {
		stop()
		t.Fatalf("exit %d, want %d (paused at the promotion gate)", code, exitAbortedInconclusive)
	}
	if !strings.Contains(out, "env DEMO_SETTING: pool=10 → pool=20") || strings.Count(out, "event=change") != 1 {
		t.Errorf("preflight did not list exactly the env change")
	}
	if s, _ := headers(t, b.canaryPort); s != "pool=20" {
		t.Errorf("the canary reports %q, want the new pool=20", s)
	}
	if s, _ := headers(t, b.stablePort); s != "pool=10" {
		t.Errorf("stable reports %q during the release, want the old pool=10", s)
	}
	code, _ = b.run("promote", b.service, "--config", b.configPath)
	load := stop()
	if code != exitPromoted {
		t.Fatalf("promote: exit %d", code)
	}
	if s, _ := headers(t, b.stablePort); s != "pool=20" {
		t.Errorf("stable reports %q after the promotion, want pool=20", s)
	}
	if load.Failed > 0 {
		t.Errorf("%d requests failed during the release: %+v", load.Failed, load)
	}
	promoted := b.inspect()
	if promoted.Spec.Labels["team"] != "e2e" || promoted.Spec.Labels["com.docker.stack.namespace"] != b.name || promoted.Spec.Labels["fridaymorning.state"] == "" {
		t.Errorf("labels after promotion %v: want the stack's and fridaymorning's", promoted.Spec.Labels)
	}
	tasks := b.taskIDs(t)

	b.deploy(t)
	after := b.inspect()
	if !onlyOwnLabelsChanged(promoted.Spec, after.Spec) {
		t.Errorf("docker stack deploy of the same file changed the spec beyond fridaymorning's labels:\nbefore %+v\nafter  %+v", promoted.Spec, after.Spec)
	}
	if got := b.taskIDs(t); got != tasks {
		t.Errorf("docker stack deploy replaced tasks: %s → %s", tasks, got)
	}
	t.Logf("docker stack deploy of the same file: version %d → %d (every ServiceUpdate counts one up, even an identical one); fridaymorning labels dropped: %v",
		promoted.Version.Index, after.Version.Index, after.Spec.Labels["fridaymorning.state"] == "")
	// The same deploy once more, with no fridaymorning label left: the baseline of a no-op stack deploy.
	b.deploy(t)
	again := b.inspect()
	if !onlyOwnLabelsChanged(after.Spec, again.Spec) || after.Spec.Labels["fridaymorning.state"] != again.Spec.Labels["fridaymorning.state"] {
		t.Errorf("a second docker stack deploy changed the spec")
	}
	t.Logf("baseline: a second identical docker stack deploy: version %d → %d", after.Version.Index, again.Version.Index)
}

// A config's content changes (a new config name, as configs are immutable): the canary reads the new
// config, stable the old one, which stays until and after the promotion.
func TestStackFileConfigChangeKeepsTheOldConfig(t *testing.T) {
	b := newStackBed(t)
	stop := b.startLoad(80)
	defer stop()
	b.env = append(b.env, "CONF=2")
	code, out := b.release("--pause-before-promote")
	if code != exitAbortedInconclusive {
		t.Fatalf("exit %d, want %d", code, exitAbortedInconclusive)
	}
	if !strings.Contains(out, b.name+"_demo_conf_1 (uid 0, gid 0, mode 0444) → "+b.name+"_demo_conf_2") {
		t.Errorf("preflight did not list the config change")
	}
	if _, c := headers(t, b.canaryPort); c != "greeting from config 2" {
		t.Errorf("the canary reads %q, want config 2", c)
	}
	if _, c := headers(t, b.stablePort); c != "greeting from config 1" {
		t.Errorf("stable reads %q during the release, want config 1", c)
	}
	b.wantConfigs(t, map[int]string{1: "stable's, during the release", 2: "the canary's"})
	if code, _ := b.run("promote", b.service, "--config", b.configPath); code != exitPromoted {
		t.Fatalf("promote: exit %d", code)
	}
	if _, c := headers(t, b.stablePort); c != "greeting from config 2" {
		t.Errorf("stable reads %q after the promotion, want config 2", c)
	}
	b.wantConfigs(t, map[int]string{
		2: "stable uses the new config: it must not go with the canary",
		1: "docker stack deploy keeps the old config, and a rollback needs it",
	})
}

// A bad env change (half the requests fail) with a new config: aborted by analysis, stable keeps its
// spec exactly, the canary and the config the release created are gone.
func TestStackFileBadEnvIsAbortedAndStableKeepsItsSpec(t *testing.T) {
	b := newStackBed(t)
	before := b.inspect()
	stop := b.startLoad(80)
	b.env = append(b.env, "ERROR_RATE=0.5", "CONF=3")
	code, out := b.release()
	stop()
	if code != exitAbortedAnalysis {
		t.Fatalf("exit %d, want %d (aborted by analysis)", code, exitAbortedAnalysis)
	}
	if !strings.Contains(out, "env DEMO_ERROR_RATE: 0 → 0.5") {
		t.Errorf("preflight did not list the env change")
	}
	after := b.inspect()
	if !onlyOwnLabelsChanged(before.Spec, after.Spec) {
		t.Errorf("stable's spec changed beyond fridaymorning's labels:\nbefore %+v\nafter  %+v", before.Spec, after.Spec)
	}
	if after.Spec.TaskTemplate.ContainerSpec.Env[0] != before.Spec.TaskTemplate.ContainerSpec.Env[0] {
		t.Errorf("stable env %v", after.Spec.TaskTemplate.ContainerSpec.Env)
	}
	if b.canaryExists() {
		t.Error("the canary is still there")
	}
	b.wantConfigs(t, map[int]string{3: "gone: the release created it and nothing uses it", 1: "stable's config"})
}

// What a canary cannot carry is refused before anything changes, with what to do; so is a release that
// names both an image and a stack file, or neither.
func TestStackFileRefusesWhatACanaryCannotCarry(t *testing.T) {
	b := newStackBed(t)
	before := b.inspect()
	moved := filepath.Join(filepath.Dir(b.file), "moved.yml")
	raw, err := os.ReadFile(b.file)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), fmt.Sprintf("published: %d", b.stablePort), fmt.Sprintf("published: %d", b.stablePort+1), 1)
	text = strings.Replace(text, "${SETTING:-pool=10}", "pool=30", 1)
	if err := os.WriteFile(moved, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := b.release("--stack-file", moved)
	if code != exitError || !strings.Contains(out, "the published ports change") || !strings.Contains(out, "outside a release") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("published port change: exit %d, want %d naming the port change, what to do, and that nothing changed", code, exitError)
	}
	code, _ = b.release("--stack-file", b.file, "--image", b.image+":v2")
	if code != exitUsage {
		t.Errorf("--image with --stack-file: exit %d, want %d", code, exitUsage)
	}
	code, _ = b.run("release", "--service", b.service)
	if code != exitUsage {
		t.Errorf("neither --image nor a stack file: exit %d, want %d", code, exitUsage)
	}
	if after := b.inspect(); after.Version.Index != before.Version.Index || b.canaryExists() {
		t.Errorf("the refused releases changed something (version %d → %d, canary %v)", before.Version.Index, after.Version.Index, b.canaryExists())
	}
}
