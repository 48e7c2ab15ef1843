//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
	"github.com/fridaymorning/fridaymorning/haproxy/haproxytest"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// These tests run the real fridaymorning binary against the real test bed: Docker Swarm, HAProxy 2.6,
// InfluxDB 1.8 fed by HAProxy's per-request log, and the Data Plane API test server. Each test gets its
// own stable service, HAProxy (from stacks/haproxy/haproxy.cfg) and Data Plane API server on free ports;
// the swarm and InfluxDB are the bed's (make testbed; make test sources .testbed/<bed>/env).

var bin struct{ fridaymorning, loadgen string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fm-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.fridaymorning = filepath.Join(dir, "fridaymorning")
	bin.loadgen = filepath.Join(dir, "loadgen")
	for out, pkg := range map[string]string{bin.fridaymorning: ".", bin.loadgen: "../loadgen"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bedEnv returns a test-bed variable, failing the test (never skipping it) when the bed is not up.
func bedEnv(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: start the test bed (make testbed) and source .testbed/fm/env, or run make test", key)
	}
	return v
}

// stack is one test's release target: a stable service behind its own HAProxy and Data Plane API.
type stack struct {
	t          testing.TB
	quiet      bool
	env        []string // added to the binary's environment
	app        string   // names the backend (be_<app>) and the service
	service    string
	image      string // the image repository, e.g. fridaymorning/demoapp
	frontend   string // URL of HAProxy's frontend
	configPath string // fridaymorning.yaml
	password   string // the Data Plane API's, which must never show in output
	hp         *haproxy.Client
	docker     *client.Client
	hap        *haproxytest.Instance // the stack's HAProxy
}

// stackOption changes how newStack builds a stack.
type stackOption func(cfgText, yaml *string)

// withCohorts adds stacks/haproxy/cohorts.cfg to the stack's backend, cookie values to its servers, and
// haproxy.cohorts to its fridaymorning.yaml.
func withCohorts(t *testing.T) stackOption {
	snippet, err := os.ReadFile("../../stacks/haproxy/cohorts.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return func(cfgText, yaml *string) {
		*cfgText = strings.Replace(*cfgText, "    balance roundrobin\n", "    balance roundrobin\n"+string(snippet), 1)
		*cfgText = strings.Replace(*cfgText, " weight 100\n", " weight 100 cookie stable1\n", 1)
		*cfgText = strings.Replace(*cfgText, " weight 0\n", " weight 0 cookie canary1\n", 1)
		*yaml = strings.Replace(*yaml, "  drain_timeout: 10s\n", "  drain_timeout: 10s\n  cohorts: true\n", 1)
	}
}

func newStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, image: bedEnv(t, "FM_IMAGE_REPO")}
	s.app = fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e8)
	s.service = "fm-" + s.app
	influxPort, udpPort, db := bedEnv(t, "FM_INFLUX_PORT"), bedEnv(t, "FM_INFLUX_UDP_PORT"), bedEnv(t, "FM_INFLUX_DB")
	stablePort, canaryPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	fePort, statsPort := haproxytest.FreePort(t), haproxytest.FreePort(t)

	var err error
	s.docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.docker.Close() })
	sw, err := swarm.New(swarm.Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })

	// The stable service, as an operator would have deployed it.
	replicas := uint64(1)
	_, err = s.docker.ServiceCreate(ctx, dockerswarm.ServiceSpec{
		Annotations: dockerswarm.Annotations{Name: s.service, Labels: map[string]string{"fridaymorning.test": "e2e"}},
		TaskTemplate: dockerswarm.TaskSpec{ContainerSpec: &dockerswarm.ContainerSpec{
			Image: s.image + ":v1", StopGracePeriod: ptr(10 * time.Second),
		}},
		Mode:         dockerswarm.ServiceMode{Replicated: &dockerswarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &dockerswarm.EndpointSpec{Ports: []dockerswarm.PortConfig{{TargetPort: 8080, PublishedPort: uint32(stablePort), PublishMode: dockerswarm.PortConfigPublishModeHost}}},
		// Swarm watches an updated task for 1s rather than its default 5s: a promotion takes seconds.
		UpdateConfig: &dockerswarm.UpdateConfig{Monitor: time.Second},
	}, dockerswarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = sw.RemoveService(ctx, swarm.CanaryName(s.service))
		_ = sw.RemoveService(ctx, s.service)
		// A release the test left active keeps its backend's lock (a Swarm config).
		locks, _ := s.docker.ConfigList(ctx, dockerswarm.ConfigListOptions{Filters: filters.NewArgs(filters.Arg("label", swarm.LabelLockService+"="+s.service))})
		for _, l := range locks {
			_ = s.docker.ConfigRemove(ctx, l.ID)
		}
	})
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sw.WaitReady(wctx, s.service, nil); err != nil {
		t.Fatal(err)
	}

	// HAProxy from the stack's own config template, logging to the bed's InfluxDB.
	dir := t.TempDir()
	vars := map[string]string{
		"FM_HAPROXY_DIR": dir, "FM_INFLUX_UDP_PORT": udpPort, "FM_APP": s.app,
		"FM_HAPROXY_PORT": fmt.Sprint(fePort), "FM_HAPROXY_STATS_PORT": fmt.Sprint(statsPort),
		"FM_STABLE_PORT": fmt.Sprint(stablePort), "FM_CANARY_PORT": fmt.Sprint(canaryPort),
	}
	tmpl, err := os.ReadFile("../../stacks/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := os.Expand(string(tmpl), func(k string) string {
		v, ok := vars[k]
		if !ok {
			t.Fatalf("stacks/haproxy/haproxy.cfg uses ${%s}, which the test does not fill in", k)
		}
		return v
	})
	yamlMods := ""
	for _, o := range opts {
		o(&cfgText, &yamlMods)
	}
	inst := haproxytest.Start(t, dir, cfgText)
	s.hap = inst

	// The Data Plane API test server over that HAProxy, with a password only a file holds.
	password := fmt.Sprintf("pw-%d", time.Now().UnixNano())
	s.password = password
	dp, err := dataplanetest.New(ctx, dataplanetest.Config{
		ConfigFile: inst.ConfigPath, HAProxyBin: "haproxy", RuntimeSocket: inst.AdminSocket, MasterSocket: inst.MasterSocket,
		TransactionsDir: filepath.Join(dir, "transactions"), User: "admin", Password: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(dp)
	t.Cleanup(api.Close)
	pwFile := filepath.Join(dir, "dataplane.password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.hp, err = haproxy.New(haproxy.Config{URL: api.URL + "/v2", User: "admin", Password: password, Backend: "be_" + s.app,
		StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.hp.WaitUp(wctx, "stable"); err != nil {
		t.Fatal(err)
	}
	s.frontend = fmt.Sprintf("http://127.0.0.1:%d/", fePort)

	s.configPath = filepath.Join(dir, "fridaymorning.yaml")
	cfg := fmt.Sprintf(`service: %s
steps: [10, 50]
bake: 4s
canary:
  ports: ["%d:%d"]
  ready_timeout: 60s
promote:
  timeout: 2m
haproxy:
  url: %s/v2
  user: admin
  password_file: %s
  backend: be_%s
  stable_servers: [stable1]
  canary_servers: [canary1]
  drain_timeout: 10s
influxdb:
  url: http://127.0.0.1:%s
  bucket: %s/autogen
state:
  heartbeat: 500ms
  stale_after: 3s
analysis:
  min_requests: 20
  max_error_rate: 1
  max_p99: 500ms
  delay: 1s
  max_extensions: 1
`, s.service, stablePort, canaryPort, api.URL, pwFile, s.app, influxPort, db)
	for _, o := range opts {
		noCfg := ""
		o(&noCfg, &cfg)
	}
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// loadSummary is loadgen's JSON summary.
type loadSummary struct {
	Sent, OK, Failed int64
	ByVersion        map[string]int64 `json:"by_version"`
	Errors           map[string]int64
}

// startLoad sends steady traffic through HAProxy until the returned function stops it and reports.
func (s *stack) startLoad(rps int) func() loadSummary {
	s.t.Helper()
	return startLoadgen(s.t, s.frontend, rps)
}

// startLoadgen sends rps requests a second to url with loadgen until the returned function stops it and
// returns loadgen's summary.
func startLoadgen(t testing.TB, url string, rps int) func() loadSummary {
	t.Helper()
	var stdout bytes.Buffer
	cmd := exec.Command(bin.loadgen, "-url", url, "-rps", fmt.Sprint(rps), "-duration", "15m", "-every", "1h")
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() loadSummary {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("loadgen: %v", err)
		}
		var sum loadSummary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("loadgen summary %q: %v", stdout.String(), err)
		}
		return sum
	}
}

// release runs fridaymorning release with the stack's config and args.
func (s *stack) release(args ...string) (int, string) {
	s.t.Helper()
	return s.run(append([]string{"release", "--config", s.configPath}, args...)...)
}

// releaseQuiet is release without logging the output (the caller shows it on failure).
func (s *stack) releaseQuiet(args ...string) (int, string) {
	s.t.Helper()
	s.quiet = true
	defer func() { s.quiet = false }()
	return s.release(args...)
}

// run runs the fridaymorning binary and returns its exit code and output.
func (s *stack) run(args ...string) (int, string) {
	s.t.Helper()
	cmd := exec.Command(bin.fridaymorning, args...)
	cmd.Env = append(append(os.Environ(), envDataplanePassword+"="), s.env...) // the password comes from the file
	code, out := runBinary(s.t, cmd)
	if !s.quiet {
		s.t.Logf("fridaymorning %s → exit %d\n%s", strings.Join(args, " "), code, out)
	}
	if strings.Contains(out, s.password) {
		s.t.Errorf("the Data Plane API password appears in fridaymorning's output")
	}
	return code, out
}

// runBinary runs cmd and returns its exit code and its output, stdout and stderr together.
func runBinary(tb testing.TB, cmd *exec.Cmd) (int, string) {
	tb.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		tb.Fatal(err)
	}
	return 0, out.String()
}

func (s *stack) inspect() dockerswarm.Service {
	s.t.Helper()
	svc, _, err := s.docker.ServiceInspectWithRaw(context.Background(), s.service, dockerswarm.ServiceInspectOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return svc
}

func (s *stack) canaryExists() bool {
	_, _, err := s.docker.ServiceInspectWithRaw(context.Background(), swarm.CanaryName(s.service), dockerswarm.ServiceInspectOptions{})
	return err == nil
}

// weights reads the live weights back through a zero-change Shift of nothing: the Data Plane API's view.
func (s *stack) weights() map[string]int {
	s.t.Helper()
	w, err := s.hp.Weights(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return w
}

func TestReleasePromotesHealthyVersionWithoutFailedRequests(t *testing.T) {
	s := newStack(t)
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2")
	load := stop()

	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	for _, want := range []string{"event=canary-ready", "event=traffic", "step=1/2 canary=10%", "event=analysis", "observed=", "result=pass", "outcome=promoted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" {
		t.Errorf("stable runs %s, want %s:v2", img, s.image)
	}
	if s.canaryExists() {
		t.Error("the canary service is still there after promotion")
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after promotion %v: want all on stable", w)
	}
	t.Logf("load: %+v", load)
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed during the release (%v): want zero", load.Failed, load.Sent, load.Errors)
	}
	if load.ByVersion["v2"] == 0 || load.ByVersion["v1"] == 0 || load.Sent < 1000 {
		t.Errorf("load %+v: want steady traffic served by both versions", load)
	}
}

// TestReleaseWithCohorts: with persistence on (stacks/haproxy/cohorts.cfg), a release promotes without
// a failed request, and the split HAProxy served matches the weights.
func TestReleaseWithCohorts(t *testing.T) {
	s := newStack(t, withCohorts(t))
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2")
	load := stop()
	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	var observed float64
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "event=analysis") && strings.Contains(line, "step=1/2") {
			if _, after, ok := strings.Cut(line, " observed="); ok {
				fmt.Sscanf(after, "%g%%", &observed)
			}
		}
	}
	if observed < 9 || observed > 11 {
		t.Errorf("HAProxy served %g%% of step 1's requests to the canary, want 10±1", observed)
	}
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed (%v)", load.Failed, load.Sent, load.Errors)
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after promotion %v", w)
	}
}

func TestReleaseAbortsErroringVersion(t *testing.T) {
	s := newStack(t)
	before := s.inspect()
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2-errors")
	load := stop()

	if code != exitAbortedAnalysis {
		t.Fatalf("exit %d, want %d (aborted by analysis)", code, exitAbortedAnalysis)
	}
	for _, want := range []string{"result=fail", "check=error_rate", "outcome=aborted-analysis"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if s.canaryExists() {
		t.Error("the canary service is still there after the abort")
	}
	after := s.inspect()
	if after.Spec.TaskTemplate.ContainerSpec.Image != before.Spec.TaskTemplate.ContainerSpec.Image {
		t.Errorf("stable image changed: %s → %s", before.Spec.TaskTemplate.ContainerSpec.Image, after.Spec.TaskTemplate.ContainerSpec.Image)
	}
	if *after.Spec.Mode.Replicated.Replicas != *before.Spec.Mode.Replicated.Replicas {
		t.Errorf("stable replicas changed")
	}
	if after.Version.Index != before.Version.Index && !onlyOwnLabelsChanged(before.Spec, after.Spec) {
		t.Errorf("stable spec changed beyond fridaymorning's labels:\nbefore %+v\nafter  %+v", before.Spec, after.Spec)
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after abort %v: want canary 0", w)
	}
	if load.ByVersion["v2-errors"] == 0 {
		t.Errorf("the canary served no requests (%+v): the abort was not judged on real traffic", load)
	}
}

// onlyOwnLabelsChanged reports whether two specs differ in nothing but fridaymorning.* service labels.
func onlyOwnLabelsChanged(a, b dockerswarm.ServiceSpec) bool {
	strip := func(s dockerswarm.ServiceSpec) string {
		labels := map[string]string{}
		for k, v := range s.Labels {
			if !strings.HasPrefix(k, "fridaymorning.") || k == "fridaymorning.test" {
				labels[k] = v
			}
		}
		s.Labels = labels
		b, _ := json.Marshal(s)
		return string(b)
	}
	return strip(a) == strip(b)
}

func TestReleaseRefusesBadInputWithoutChangingAnything(t *testing.T) {
	s := newStack(t)
	before := s.inspect()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"--image", s.image + ":v2", "--service", "fm-no-such-service"}, `service "fm-no-such-service" not found`},
		{"image that exists nowhere", []string{"--image", s.image + ":no-such-tag"}, "neither on this Docker Engine nor in its registry"},
		{"same image as stable", []string{"--image", s.image + ":v1"}, "already runs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := s.release(tt.args...)
			if code != exitError || !strings.Contains(out, tt.want) || !strings.Contains(out, "nothing was changed") {
				t.Fatalf("exit %d, output lacks %q or 'nothing was changed'", code, tt.want)
			}
		})
	}
	t.Run("missing backend", func(t *testing.T) {
		raw, _ := os.ReadFile(s.configPath)
		bad := filepath.Join(t.TempDir(), "fm.yaml")
		_ = os.WriteFile(bad, bytes.Replace(raw, []byte("backend: be_"), []byte("backend: be_missing_"), 1), 0o600)
		code, out := s.release("--image", s.image+":v2", "--config", bad)
		if code != exitError || !strings.Contains(out, "be_missing_") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("exit %d; output must name the backend", code)
		}
	})
	t.Run("unreachable metrics store", func(t *testing.T) {
		raw, _ := os.ReadFile(s.configPath)
		bad := filepath.Join(t.TempDir(), "fm.yaml")
		closed := haproxytest.FreePort(t)
		_ = os.WriteFile(bad, bytes.Replace(raw, []byte("url: http://127.0.0.1:"+bedEnv(t, "FM_INFLUX_PORT")), []byte(fmt.Sprintf("url: http://127.0.0.1:%d", closed)), 1), 0o600)
		code, out := s.release("--image", s.image+":v2", "--config", bad)
		if code != exitError || !strings.Contains(out, "influxdb") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("exit %d; output must say InfluxDB is unreachable", code)
		}
	})
	t.Run("malformed config", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "fm.yaml")
		_ = os.WriteFile(bad, []byte("service: x\nsteps: [10\n"), 0o600)
		code, out := s.release("--image", s.image+":v2", "--config", bad)
		if code != exitError || !strings.Contains(out, "malformed") {
			t.Fatalf("exit %d; output must say the config is malformed", code)
		}
	})
	after := s.inspect()
	if after.Version.Index != before.Version.Index {
		t.Errorf("the stable service changed (version %d → %d)", before.Version.Index, after.Version.Index)
	}
	if s.canaryExists() {
		t.Error("a canary was left behind")
	}
	if w := s.weights(); w["canary1"] != 0 {
		t.Errorf("weights changed: %v", w)
	}
}
