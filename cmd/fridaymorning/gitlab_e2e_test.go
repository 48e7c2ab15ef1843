//go:build integration

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fridaymorning/fridaymorning/swarm"
	"gopkg.in/yaml.v3"
)

// gitlabJob is what the test reads of one job of the example pipeline.
type gitlabJob struct {
	Image         string   `yaml:"image"`
	Script        []string `yaml:"script"`
	ResourceGroup string   `yaml:"resource_group"`
	Environment   struct {
		Name   string `yaml:"name"`
		URL    string `yaml:"url"`
		Action string `yaml:"action"`
	} `yaml:"environment"`
	AllowFailure struct {
		ExitCodes []int `yaml:"exit_codes"`
	} `yaml:"allow_failure"`
}

// TestGitLabPipelineRuns runs the example pipeline's release jobs for real against the test bed: the
// canary job's script lines as its shell would, then, with the canary job's dotenv artifact in the
// environment, the promote job's. It also holds the deployment bookkeeping: the jobs share a resource
// group per service, the promotion records a deployment of the environment, the canary and the abort do
// not.
func TestGitLabPipelineRuns(t *testing.T) {
	raw, err := os.ReadFile("../../stacks/gitlab/.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the example pipeline: %v", err)
	}
	jobs := map[string]gitlabJob{}
	for _, name := range []string{"canary", "promote", "abort"} {
		n, ok := doc[name]
		if !ok {
			t.Fatalf("the example pipeline has no %s job", name)
		}
		var j gitlabJob
		if err := n.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		jobs[name] = j
	}
	canary, promote := jobs["canary"], jobs["promote"]
	for name, want := range map[string]string{"canary": "prepare", "promote": "start", "abort": "access"} {
		j := jobs[name]
		if j.Environment.Name != "production" || j.Environment.Action != want || j.ResourceGroup != "release-$SERVICE" {
			t.Errorf("job %s: environment %+v, resource_group %q: want production with action %s in release-$SERVICE", name, j.Environment, j.ResourceGroup, want)
		}
	}
	if promote.Environment.URL == "" {
		t.Error("the promote job's environment has no url")
	}
	for _, name := range []string{"promote", "abort"} {
		if !strings.Contains(strings.Join(jobs[name].Script, "\n"), `--release "$FRIDAYMORNING_RELEASE"`) {
			t.Errorf("job %s does not name the release the canary job gated (--release \"$FRIDAYMORNING_RELEASE\")", name)
		}
	}

	s := newStack(t)
	dir := t.TempDir()
	cfg, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fridaymorning.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+filepath.Dir(bin.fridaymorning)+":"+os.Getenv("PATH"), "CI=true",
		"IMAGE="+s.image+":v2", "SERVICE="+s.service, envDataplanePassword+"=")
	stop := s.startLoad(50)
	code := runJob(t, "canary", canary, dir, env)
	if !slices.Contains(canary.AllowFailure.ExitCodes, code) {
		t.Fatalf("the canary job's script exited %d, which the pipeline does not allow", code)
	}
	dotenv := readDotenv(t, filepath.Join(dir, "canary.env"))
	if dotenv["FRIDAYMORNING_OUTCOME"] != "paused" || dotenv["FRIDAYMORNING_RELEASE"] == "" {
		t.Fatalf("the canary job's dotenv: %v", dotenv)
	}
	for k, v := range dotenv {
		env = append(env, k+"="+v)
	}
	if code := runJob(t, "promote", promote, dir, env); code != 0 {
		t.Fatalf("the promote job's script exited %d", code)
	}
	load := stop()
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" {
		t.Errorf("after the pipeline, stable runs %s, want v2", img)
	}
	if _, err := os.Stat(filepath.Join(dir, "promote-report.xml")); err != nil {
		t.Errorf("the promote job's JUnit report: %v", err)
	}
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed through the pipeline", load.Failed, load.Sent)
	}
}

// runJob runs a job's script lines one by one with sh, as GitLab's shell executor does, and returns the
// exit code of the first failing line (0 when all pass).
func runJob(t *testing.T, name string, j gitlabJob, dir string, env []string) int {
	t.Helper()
	for _, line := range j.Script {
		cmd := exec.Command("sh", "-ec", line)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("job %s: $ %s → exit %d\n%s", name, line, code, tail(out.String(), 12))
		if code != 0 {
			return code
		}
	}
	return 0
}

func readDotenv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("dotenv: %v", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
