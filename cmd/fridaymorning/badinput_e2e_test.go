//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// badInput is one entry of the bad-input catalogue: what a new user might type or write, and the
// answer fridaymorning owes them: an exit code, a message that names what is wrong and says what to do,
// and nothing changed.
type badInput struct {
	name string
	// args is the command line; $CONFIG, $SERVICE, $REPO, $DIR and the case's own vars are expanded.
	args []string
	// yaml edits the stack's fridaymorning.yaml for this case; nil keeps it as it is.
	yaml func(string) string
	// env is added to the environment; dir, if set, is the working directory (default: a new empty one).
	env []string
	dir string
	// setup runs before the snapshot, with its undoing registered by the case.
	setup func(t *testing.T)
	code  int
	// names are what the message must name (the flag, key, service or file); todo what it must say to do.
	names, todo []string
	// absent must not be in the output (a secret, Go's type dumps, Docker's raw text).
	absent []string
}

// catalogueBed is what the catalogue's cases run against: the stack and services a canary cannot serve.
type catalogueBed struct {
	s                              *stack
	vars                           map[string]string
	zeroReplicas, global, noPublic string
	stablePort, canaryPort         string
}

// world is what must not change when fridaymorning refuses a bad input.
type world struct {
	versions map[string]uint64
	canaries []string
	weights  string
	config   string
}

func (b *catalogueBed) snapshot(t *testing.T) world {
	t.Helper()
	w := world{versions: map[string]uint64{}}
	for _, name := range []string{b.s.service, b.zeroReplicas, b.global, b.noPublic} {
		svc, _, err := b.s.docker.ServiceInspectWithRaw(context.Background(), name, dockerswarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.versions[name] = svc.Version.Index
		if _, _, err := b.s.docker.ServiceInspectWithRaw(context.Background(), swarm.CanaryName(name), dockerswarm.ServiceInspectOptions{}); err == nil {
			w.canaries = append(w.canaries, swarm.CanaryName(name))
		}
	}
	w.weights = fmt.Sprint(b.s.weights())
	cw, err := b.s.hp.ConfigWeights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.config = fmt.Sprint(cw)
	return w
}

// run runs the fridaymorning binary in dir with env added, interrupting it (which aborts a release it
// should never have started) after a minute.
func (b *catalogueBed) run(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.fridaymorning, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CI=true", envDataplanePassword+"="), env...)
	return runBinary(t, cmd)
}

// setYAML replaces old by new in the config, failing the test if old is not there.
func setYAML(t *testing.T, old, new string) func(string) string {
	return func(cfg string) string {
		if !strings.Contains(cfg, old) {
			t.Fatalf("the stack's fridaymorning.yaml has no %q to replace", old)
		}
		return strings.Replace(cfg, old, new, 1)
	}
}

// lineYAML replaces the first line that starts with prefix (after indentation) by line, indented alike.
func lineYAML(t *testing.T, prefix, line string) func(string) string {
	return func(cfg string) string {
		lines := strings.Split(cfg, "\n")
		for i, l := range lines {
			if trimmed := strings.TrimLeft(l, " "); strings.HasPrefix(trimmed, prefix) {
				lines[i] = l[:len(l)-len(trimmed)] + line
				return strings.Join(lines, "\n")
			}
		}
		t.Fatalf("the stack's fridaymorning.yaml has no line %q to replace", prefix)
		return cfg
	}
}

// addYAML appends text to the config.
func addYAML(text string) func(string) string {
	return func(cfg string) string { return cfg + text }
}

// dropYAML removes the line that starts with prefix (after indentation).
func dropYAML(t *testing.T, prefix string) func(string) string {
	return func(cfg string) string {
		var out []string
		found := false
		for _, l := range strings.Split(cfg, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				found = true
				continue
			}
			out = append(out, l)
		}
		if !found {
			t.Fatalf("the stack's fridaymorning.yaml has no line %q to drop", prefix)
		}
		return strings.Join(out, "\n")
	}
}

func newCatalogueBed(t *testing.T) *catalogueBed {
	s := newStack(t)
	b := &catalogueBed{s: s}
	cfg, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ports: \["(\d+):(\d+)"\]`).FindStringSubmatch(string(cfg))
	if m == nil {
		t.Fatalf("no canary.ports in %s", cfg)
	}
	b.stablePort, b.canaryPort = m[1], m[2]
	backendLine := 0
	for i, l := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(l, "  backend:") {
			backendLine = i + 1
		}
	}

	// Services a canary cannot serve: no task to compare with, one task per node, and one that does not
	// publish the port HAProxy's stable server points at.
	b.zeroReplicas, b.global, b.noPublic = s.service+"-zero", s.service+"-global", s.service+"-nopublish"
	zero, one := uint64(0), uint64(1)
	for name, mode := range map[string]dockerswarm.ServiceMode{
		b.zeroReplicas: {Replicated: &dockerswarm.ReplicatedService{Replicas: &zero}},
		b.global:       {Global: &dockerswarm.GlobalService{}},
		b.noPublic:     {Replicated: &dockerswarm.ReplicatedService{Replicas: &one}},
	} {
		_, err := s.docker.ServiceCreate(context.Background(), dockerswarm.ServiceSpec{
			Annotations:  dockerswarm.Annotations{Name: name, Labels: map[string]string{"fridaymorning.test": "e2e"}},
			TaskTemplate: dockerswarm.TaskSpec{ContainerSpec: &dockerswarm.ContainerSpec{Image: s.image + ":v1"}},
			Mode:         mode,
		}, dockerswarm.ServiceCreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.docker.ServiceRemove(context.Background(), name) })
	}

	// The running image by other names: its ID, short and long, and a second tag.
	img, err := s.docker.ImageInspect(context.Background(), s.image+":v1")
	if err != nil {
		t.Fatal(err)
	}
	alias := s.image + ":" + s.app + "-alias"
	if err := s.docker.ImageTag(context.Background(), s.image+":v1", alias); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.docker.ImageRemove(context.Background(), alias, image.RemoveOptions{}) })
	b.vars = map[string]string{
		"CONFIG": s.configPath, "SERVICE": s.service, "REPO": s.image,
		"ID": img.ID, "SHORTID": strings.TrimPrefix(img.ID, "sha256:")[:12], "ALIAS": alias,
		"ZERO": b.zeroReplicas, "GLOBAL": b.global, "NOPUBLISH": b.noPublic,
		"ADMINSOCK": filepath.Join(filepath.Dir(s.configPath), "admin.sock"),
		"CLOSED":    fmt.Sprint(haproxytest.FreePort(t)), "BACKENDLINE": fmt.Sprint(backendLine),
	}
	return b
}

// TestBadInputCatalogue runs the catalogue of bad inputs against the real test bed: every one is refused
// with its exit code (2 for bad flags and arguments, 1 for the rest), a message that names what is wrong
// and says what to do, no secret in the output, and nothing changed: no service updated (not even a
// label), no canary, HAProxy's weights as they were.
func TestBadInputCatalogue(t *testing.T) {
	b := newCatalogueBed(t)
	s := b.s
	rel := func(extra ...string) []string {
		return append([]string{"release", "-c", "$CONFIG", "--image", "$REPO:v2"}, extra...)
	}
	corruptState := func(t *testing.T) {
		t.Helper()
		b.setLabel(t, swarm.LabelState, `{"id":"r1","phase":"baking","steps":[10`)
	}
	// stableAtClosedPort points HAProxy's stable1 at a port nothing publishes, until it is down (so
	// the ownership check, which judges serving servers only, leaves it out), and back afterwards.
	stableAtClosedPort := func(t *testing.T) {
		t.Helper()
		point := func(port string) {
			if out := b.admin(t, fmt.Sprintf("set server be_%s/stable1 addr 127.0.0.1 port %s", s.app, port)); strings.Contains(out, "No such") {
				t.Fatal(out)
			}
		}
		point(b.vars["CLOSED"])
		t.Cleanup(func() {
			point(b.stablePort)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.hp.WaitUp(ctx, "stable"); err != nil {
				t.Errorf("stable1 back at its port: %v", err)
			}
		})
		deadline := time.Now().Add(30 * time.Second)
		for {
			a, err := s.hp.Addresses(context.Background(), "stable")
			if err == nil && !a["stable1"].Serving {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stable1 still serves at a closed port: %v %v", a, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cases := []badInput{
		// Flags: each explicit one is used or refused, never ignored.
		{name: "empty --steps", args: rel("--steps", ""), code: exitUsage, names: []string{"--steps"}, todo: []string{"e.g. --steps 10,25,50"}},
		{name: "decreasing --steps", args: rel("--steps", "50,10"), code: exitUsage, names: []string{"--steps", "step 2"}, todo: []string{"steps must increase"}},
		{name: "zero --steps", args: rel("--steps", "0"), code: exitUsage, names: []string{"--steps"}, todo: []string{"(0, 100]"}},
		{name: "--steps above 100", args: rel("--steps", "10,150"), code: exitUsage, names: []string{"--steps", "150"}, todo: []string{"(0, 100]"}},
		{name: "--steps not numbers", args: rel("--steps", "10,,50"), code: exitUsage, names: []string{"--steps"}, todo: []string{"such as 10,25,50"}},
		{name: "zero --bake", args: rel("--bake", "0s"), code: exitUsage, names: []string{"--bake"}, todo: []string{"positive duration"}},
		{name: "negative --bake", args: rel("--bake", "-1m"), code: exitUsage, names: []string{"--bake"}, todo: []string{"positive duration"}},
		{name: "--bake not a duration", args: rel("--bake", "soon"), code: exitUsage, names: []string{"--bake", "soon"}, todo: []string{"fridaymorning release --help"}},
		{name: "empty --image", args: []string{"release", "-c", "$CONFIG", "--image", ""}, code: exitUsage, names: []string{"--image"}, todo: []string{"e.g. --image"}},
		{name: "no --image", args: []string{"release", "-c", "$CONFIG"}, code: exitUsage, names: []string{"nothing to release"}, todo: []string{"--image IMAGE", "--stack-file"}},
		{name: "empty --stack-file", args: []string{"release", "-c", "$CONFIG", "--stack-file", ""}, code: exitUsage, names: []string{"--stack-file"}, todo: []string{"leave --stack-file out"}},
		{name: "--image and --stack-file", args: rel("--stack-file", "$DIR/stack.yml"), code: exitUsage, names: []string{"--image", "--stack-file"}, todo: []string{"or an image alone"}},
		{name: "empty --release of promote", args: []string{"promote", "-c", "$CONFIG", "--release", ""}, code: exitUsage, names: []string{"--release"}, todo: []string{"name the release ID"}},
		{name: "zero supervise --interval", args: []string{"supervise", "-c", "$CONFIG", "--interval", "0s"}, code: exitUsage, names: []string{"--interval"}, todo: []string{"positive duration"}},
		{name: "upper-case --image", args: []string{"release", "-c", "$CONFIG", "--image", "Fridaymorning/Demo:V2"}, code: exitUsage,
			names: []string{"Fridaymorning/Demo:V2", "lower case"}, todo: []string{"e.g. registry.example.com/shop:v2"}, absent: []string{"Error response from daemon"}},
		{name: "--image with two tags", args: []string{"release", "-c", "$CONFIG", "--image", "$REPO:v2:x"}, code: exitUsage,
			names: []string{"v2:x"}, todo: []string{"REPOSITORY[:TAG]"}, absent: []string{"Error response from daemon"}},
		{name: "--image with a space", args: []string{"release", "-c", "$CONFIG", "--image", "$REPO v2"}, code: exitUsage, names: []string{"--image"}, todo: []string{"REPOSITORY[:TAG]"}},
		{name: "empty --service", args: rel("--service", ""), code: exitUsage, names: []string{"--service"}, todo: []string{"leave --service out"}},
		{name: "unknown --output", args: rel("--output", "yaml"), code: exitUsage, names: []string{"--output", "yaml"}, todo: []string{"want text or json"}},
		{name: "empty --report", args: rel("--report", ""), code: exitUsage, names: []string{"--report"}, todo: []string{"name the file"}},
		{name: "empty --dotenv", args: rel("--dotenv", ""), code: exitUsage, names: []string{"--dotenv"}, todo: []string{"name the file"}},
		{name: "empty --config", args: []string{"release", "--config", "", "--image", "$REPO:v2"}, code: exitUsage, names: []string{"--config"}, todo: []string{"leave --config out"}},
		{name: "unknown flag", args: rel("--stesp", "10"), code: exitUsage, names: []string{"--stesp"}, todo: []string{"fridaymorning release --help"}},
		{name: "stray argument", args: rel("now"), code: exitUsage, names: []string{"now"}, todo: []string{"fridaymorning release --help"}},
		{name: "config file that does not exist", args: []string{"release", "-c", "$DIR/nope.yaml", "--image", "$REPO:v2"}, code: exitError,
			names: []string{"nope.yaml", "no such file"}, todo: []string{"--config"}},
		{name: "config file that never ends", args: []string{"release", "-c", "/dev/zero", "--image", "$REPO:v2"}, code: exitError,
			names: []string{"/dev/zero", "too large"}, todo: []string{"--config"}},
		{name: "config file that is a directory", args: []string{"release", "-c", "$DIR", "--image", "$REPO:v2"}, code: exitError,
			names: []string{"$DIR", "is a directory"}, todo: []string{"--config"}},
		{name: "password file that never ends", args: rel(), yaml: lineYAML(t, "password_file:", "password_file: /dev/zero"), code: exitError,
			names: []string{"/dev/zero", "too large"}, todo: []string{envDataplanePassword}},
		{name: "zero --timeout", args: []string{"abort", "-c", "$CONFIG", "--timeout", "0s"}, code: exitUsage, names: []string{"--timeout"}, todo: []string{"positive duration"}},
		{name: "two services", args: []string{"abort", "-c", "$CONFIG", "a", "b"}, code: exitUsage, names: []string{"received 2"}, todo: []string{"fridaymorning abort --help"}},
		{name: "abort without a release", args: []string{"abort", "-c", "$CONFIG"}, code: exitError, names: []string{"$SERVICE", "no release in progress"}, todo: []string{"fridaymorning status $SERVICE"}},
		{name: "promote a service that does not exist", args: []string{"promote", "-c", "$CONFIG", "fm-no-such-service"}, code: exitError,
			names: []string{`"fm-no-such-service" not found`}, todo: []string{"docker service ls"}},
		{name: "resume without a service", args: []string{"resume", "-c", "$CONFIG"}, yaml: dropYAML(t, "service:"), code: exitUsage, names: []string{"service"}, todo: []string{"fridaymorning resume SERVICE"}},
		{name: "watch a service that does not exist", args: []string{"watch", "-c", "$CONFIG", "fm-no-such-service"}, code: exitError,
			names: []string{`"fm-no-such-service" not found`}, todo: []string{"docker service ls"}},
		{name: "zero --interval", args: []string{"watch", "-c", "$CONFIG", "--interval", "0s"}, code: exitUsage, names: []string{"--interval"}, todo: []string{"positive duration"}},
		{name: "status of a service that does not exist", args: []string{"status", "-c", "$CONFIG", "fm-no-such-service"}, code: exitError,
			names: []string{`"fm-no-such-service" not found`}, todo: []string{"docker service ls"}},
		{name: "unknown status --output", args: []string{"status", "-c", "$CONFIG", "-o", "xml"}, code: exitUsage, names: []string{"xml"}, todo: []string{"want text or json"}},

		// fridaymorning.yaml.
		{name: "unknown nested key", args: rel(), yaml: setYAML(t, "  backend:", "  pasword: x\n  backend:"), code: exitError,
			names: []string{"haproxy.pasword", "line $BACKENDLINE"}, todo: []string{"password_file"}, absent: []string{"struct {"}},
		{name: "password in the config", args: rel(), yaml: setYAML(t, "  backend:", "  password: hunter2\n  backend:"), code: exitError,
			names: []string{"haproxy.password"}, todo: []string{envDataplanePassword, "password_file"}, absent: []string{"hunter2"}},
		{name: "token in the config", args: rel(), yaml: setYAML(t, "  bucket:", "  token: s3cret\n  bucket:"), code: exitError,
			names: []string{"influxdb.token"}, todo: []string{envInfluxToken, "token_file"}, absent: []string{"s3cret"}},
		{name: "unknown key in a list entry", args: rel(), yaml: addYAML("notify:\n  - url: http://127.0.0.1:1/\n    evnts: [finished]\n"), code: exitError,
			names: []string{"notify[0].evnts"}, todo: []string{"events"}},
		{name: "unclosed list", args: rel(), yaml: setYAML(t, "steps: [10, 50]", "steps: [10, 50"), code: exitError, names: []string{"line 2"}, todo: []string{"]"}},
		{name: "unclosed quote on the first line", args: rel(), yaml: setYAML(t, "service: ", `service: "`), code: exitError, names: []string{"line 1"}, todo: []string{"quote"}},
		{name: "tab indentation", args: rel(), yaml: setYAML(t, "  backend:", "\tbackend:"), code: exitError, names: []string{"line $BACKENDLINE"}, todo: []string{"spaces, not tabs"}},
		{name: "indentation off by one", args: rel(), yaml: setYAML(t, "  backend:", "   backend:"), code: exitError, names: []string{"line $BACKENDLINE"}, todo: []string{"indent"}},
		{name: "bad duration", args: rel(), yaml: setYAML(t, "bake: 4s", "bake: soon"), code: exitError, names: []string{"bake", "soon", "line 3"}, todo: []string{"such as 30s"}},
		{name: "number that is not one", args: rel(), yaml: setYAML(t, "  ready_timeout:", "  replicas: many\n  ready_timeout:"), code: exitError,
			names: []string{"canary.replicas", "many"}, todo: []string{"whole number"}, absent: []string{"uint64"}},
		{name: "list where a mapping goes", args: rel(), yaml: addYAML("docker: [a]\n"), code: exitError, names: []string{"docker"}, todo: []string{"key: value"}, absent: []string{"struct {"}},
		{name: "key set twice", args: rel(), yaml: addYAML("bake: 5s\n"), code: exitError, names: []string{"bake", "line 3"}, todo: []string{"keep one"}},
		{name: "two documents", args: rel(), yaml: addYAML("---\nbake: 5s\n"), code: exitError, names: []string{"---"}, todo: []string{"one document"}},
		{name: "no config file", args: []string{"release", "--image", "$REPO:v2"}, code: exitError, names: []string{"no config file", "fridaymorning.yaml", "$DIR"}, todo: []string{"--config"}},
		{name: "settings missing", args: rel(), yaml: func(string) string { return "steps: [10]\n" }, code: exitError,
			names: []string{"haproxy.backend", "influxdb.url"}, todo: []string{"stacks/demo/fridaymorning.yaml"}},
		{name: "port mapping without a colon", args: rel(), yaml: lineYAML(t, "ports:", `ports: ["$STABLEPORT"]`), code: exitError, names: []string{"canary.ports"}, todo: []string{"STABLE_PORT:CANARY_PORT"}},
		{name: "unknown error status", args: rel(), yaml: addYAML("  error_statuses: [6xx]\n"), code: exitError, names: []string{"6xx"}, todo: []string{"analysis.error_statuses"}},
		{name: "Data Plane API URL not http", args: rel(), yaml: setYAML(t, "  url: http://127.0.0.1:", "  url: ftp://127.0.0.1:"), code: exitError, names: []string{"ftp://"}, todo: []string{"fix haproxy.url"}},
		{name: "unknown haproxy.mode", args: rel(), yaml: setYAML(t, "haproxy:\n", "haproxy:\n  mode: socket\n"), code: exitError, names: []string{"haproxy.mode", "socket"}, todo: []string{"dataplane"}},
		{name: "unknown on_inconclusive", args: rel(), yaml: addYAML("  on_inconclusive: maybe\n"), code: exitError, names: []string{"on_inconclusive", "maybe"}, todo: []string{"abort or pause"}},
		{name: "error rate above 100%", args: rel(), yaml: setYAML(t, "max_error_rate: 1\n", "max_error_rate: 150\n"), code: exitError, names: []string{"analysis.max_error_rate", "150"}, todo: []string{"between 0 and 100"}},

		// Secrets.
		{name: "no password set", args: rel(), yaml: dropYAML(t, "password_file:"), code: exitError, names: []string{"no password"}, todo: []string{envDataplanePassword, "haproxy.password_file"}, absent: []string{"401 Unauthorized"}},
		{name: "wrong password", args: rel(), env: []string{envDataplanePassword + "=wr0ng-pw-4711"}, code: exitError, names: []string{`user "admin"`}, todo: []string{envDataplanePassword}, absent: []string{"wr0ng-pw-4711"}},
		{name: "password file that does not exist", args: rel(), yaml: lineYAML(t, "password_file:", "password_file: /nonexistent"), code: exitError, names: []string{"/nonexistent"}, todo: []string{envDataplanePassword}},
		{name: "empty password file", args: rel(), yaml: lineYAML(t, "password_file:", "password_file: /dev/null"), code: exitError, names: []string{"/dev/null", "empty"}, todo: []string{envDataplanePassword}},

		// The service and the image, on Swarm.
		{name: "service that does not exist", args: rel("--service", "fm-no-such-service"), code: exitError, names: []string{`"fm-no-such-service" not found`}, todo: []string{"docker service ls"}},
		{name: "image that exists nowhere", args: []string{"release", "-c", "$CONFIG", "--image", "$REPO:no-such-tag"}, code: exitError, names: []string{"no-such-tag"}, todo: []string{"build or push it"}},
		{name: "the image stable runs", args: []string{"release", "-c", "$CONFIG", "--image", "$REPO:v1"}, code: exitError, names: []string{"already runs"}, todo: []string{"nothing to release"}},
		{name: "the image stable runs, with docker.io", args: []string{"release", "-c", "$CONFIG", "--image", "docker.io/$REPO:v1"}, code: exitError, names: []string{"already runs"}, todo: []string{"nothing to release"}},
		{name: "the image stable runs, with index.docker.io", args: []string{"release", "-c", "$CONFIG", "--image", "index.docker.io/$REPO:v1"}, code: exitError, names: []string{"already runs"}, todo: []string{"nothing to release"}},
		{name: "the image stable runs, by its ID", args: []string{"release", "-c", "$CONFIG", "--image", "$ID"}, code: exitError, names: []string{"already runs"}, todo: []string{"nothing to release"}},
		{name: "the image stable runs, by its short ID", args: []string{"release", "-c", "$CONFIG", "--image", "$SHORTID"}, code: exitError, names: []string{"already runs"}, todo: []string{"nothing to release"}},
		{name: "the image stable runs, by another tag", args: []string{"release", "-c", "$CONFIG", "--image", "$ALIAS"}, code: exitError, names: []string{"already runs", "$REPO:v1"}, todo: []string{"nothing to release"}},
		{name: "service with no replicas", args: rel("--service", "$ZERO"), code: exitError, names: []string{"$ZERO", "0 replicas"}, todo: []string{"docker service scale $ZERO=1"}},
		{name: "global service", args: rel("--service", "$GLOBAL"), code: exitError, names: []string{"$GLOBAL", "global mode"}, todo: []string{"replicated"}},
		{name: "service whose servers are another's", args: rel("--service", "$NOPUBLISH"), code: exitError,
			names: []string{"$NOPUBLISH", "stable1", "127.0.0.1:" + "$STABLEPORT"}, todo: []string{"haproxy.stable_servers"}},
		{name: "stable server at a port the service does not publish", args: rel(), setup: stableAtClosedPort, code: exitError,
			names: []string{"$SERVICE", "stable1", "127.0.0.1:$CLOSED", "$STABLEPORT"}, todo: []string{"--publish-add"}},
		{name: "canary port HAProxy does not point at", args: rel(), yaml: lineYAML(t, "ports:", `ports: ["$STABLEPORT:$CLOSED"]`), code: exitError,
			names: []string{"canary1", "127.0.0.1:$CANARYPORT", "$CLOSED"}, todo: []string{"canary.ports"}},
		{name: "published port not mapped", args: rel(), yaml: dropYAML(t, "ports:"), code: exitError, names: []string{"$STABLEPORT"}, todo: []string{"map it in canary.ports"}},
		{name: "corrupt release record, release", args: rel(), setup: corruptState, code: exitError, names: []string{swarm.LabelState, "$SERVICE"}, todo: []string{"docker service update --label-rm " + swarm.LabelState}},
		{name: "corrupt release record, status", args: []string{"status", "-c", "$CONFIG"}, setup: corruptState, code: exitError, names: []string{swarm.LabelState}, todo: []string{"--label-rm " + swarm.LabelState}},
		{name: "corrupt release record, abort", args: []string{"abort", "-c", "$CONFIG"}, setup: corruptState, code: exitError, names: []string{swarm.LabelState}, todo: []string{"--label-rm " + swarm.LabelState}},
		{name: "Docker Engine unreachable", args: rel(), yaml: setYAML(t, "haproxy:\n", "docker:\n  host: tcp://127.0.0.1:$CLOSED\nhaproxy:\n"), code: exitError, names: []string{"Docker Engine"}, todo: []string{"docker.host"}},

		// HAProxy and InfluxDB.
		{name: "backend that does not exist", args: rel(), yaml: setYAML(t, "backend: be_", "backend: be_missing_"), code: exitError, names: []string{"be_missing_"}, todo: []string{"haproxy.backend"}},
		{name: "server that does not exist", args: rel(), yaml: setYAML(t, "canary_servers: [canary1]", "canary_servers: [canary9]"), code: exitError, names: []string{"canary9"}, todo: []string{"haproxy.stable_servers/canary_servers"}},
		{name: "Data Plane API unreachable", args: rel(), yaml: lineYAML(t, "url: http://127.0.0.1:", "url: http://127.0.0.1:$CLOSED/v2"), code: exitError, names: []string{"127.0.0.1:$CLOSED", "not reachable"}, todo: []string{"haproxy.url"}},
		{name: "Data Plane API version it does not speak", args: rel(), yaml: func(c string) string { return strings.Replace(c, "/v2\n", "/v3\n", 1) }, code: exitError, names: []string{"v3"}, todo: []string{"set haproxy.url to"}},
		{name: "admin socket that does not exist", args: rel(), yaml: setYAML(t, "haproxy:\n", "haproxy:\n  mode: runtime\n  runtime_socket: $DIR/nope.sock\n"), code: exitError, names: []string{"nope.sock"}, todo: []string{"haproxy.runtime_socket"}},
		{name: "InfluxDB unreachable", args: rel(), yaml: setYAML(t, "url: http://127.0.0.1:"+os.Getenv("FM_INFLUX_PORT"), "url: http://127.0.0.1:$CLOSED"), code: exitError, names: []string{"InfluxDB", "127.0.0.1:$CLOSED"}, todo: []string{"influxdb.url"}},
	}
	if len(cases) < 40 {
		t.Fatalf("the catalogue has %d cases, want at least 40", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir
			if dir == "" {
				dir = t.TempDir()
			}
			vars := map[string]string{"DIR": dir, "STABLEPORT": b.stablePort, "CANARYPORT": b.canaryPort}
			expand := func(s string) string {
				return os.Expand(s, func(k string) string {
					if v, ok := vars[k]; ok {
						return v
					}
					if v, ok := b.vars[k]; ok {
						return v
					}
					t.Fatalf("case %q uses $%s, which the catalogue does not define", c.name, k)
					return ""
				})
			}
			config := s.configPath
			if c.yaml != nil {
				raw, err := os.ReadFile(s.configPath)
				if err != nil {
					t.Fatal(err)
				}
				config = filepath.Join(t.TempDir(), "fridaymorning.yaml")
				if err := os.WriteFile(config, []byte(expand(c.yaml(string(raw)))), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			vars["CONFIG"] = config
			if c.setup != nil {
				c.setup(t)
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = expand(a)
			}
			before := b.snapshot(t)
			code, out := b.run(t, dir, c.env, args...)
			after := b.snapshot(t)

			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			for _, want := range append(append([]string{}, c.names...), c.todo...) {
				if w := expand(want); !strings.Contains(out, w) {
					t.Errorf("the message does not say %q", w)
				}
			}
			for _, bad := range append([]string{s.password}, c.absent...) {
				if strings.Contains(out, bad) {
					t.Errorf("the output shows %q", bad)
				}
			}
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("something changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if t.Failed() {
				t.Logf("fridaymorning %s → exit %d\n%s", strings.Join(args, " "), code, out)
			}
		})
	}
}

// setLabel sets a label on the stack's stable service for the test, and removes it afterwards.
func (b *catalogueBed) setLabel(t *testing.T, key, value string) {
	t.Helper()
	update := func(f func(map[string]string)) {
		svc := b.s.inspect()
		spec := svc.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		f(spec.Labels)
		if _, err := b.s.docker.ServiceUpdate(context.Background(), svc.ID, svc.Version, spec, dockerswarm.ServiceUpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	update(func(l map[string]string) { l[key] = value })
	t.Cleanup(func() { update(func(l map[string]string) { delete(l, key) }) })
}

// admin sends one command to the stack's HAProxy admin socket and returns the answer.
func (b *catalogueBed) admin(t *testing.T, cmd string) string {
	t.Helper()
	c, err := net.Dial("unix", b.s.hap.AdminSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return strings.TrimSpace(string(out))
}
