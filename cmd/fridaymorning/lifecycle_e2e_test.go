//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// These tests run the real binary through a release's lifecycle on the test bed: kill -9 in every phase
// and resume, concurrent releases, canaries that never become healthy, and operators acting on a
// release from another process.

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a fridaymorning running in the background.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int
}

func (s *stack) start(args ...string) *proc {
	s.t.Helper()
	return startProc(s.t, nil, args...)
}

// startProc starts the fridaymorning binary with args, env added to its environment.
func startProc(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin.fridaymorning, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// waitLine waits until one line of the output holds every part.
func (p *proc) waitLine(timeout time.Duration, parts ...string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(p.out.String(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("fridaymorning exited %d before printing %q:\n%s", p.code, parts, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no line with %q within %s:\n%s", parts, timeout, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		p.t.Logf("fridaymorning %s → exit %d\n%s", strings.Join(p.cmd.Args[1:], " "), p.code, p.out.String())
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("fridaymorning did not end within %s:\n%s", timeout, p.out.String())
		return -1
	}
}

func (p *proc) kill9() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// statusJSON runs fridaymorning status SERVICE -o json.
func (s *stack) status() statusView {
	s.t.Helper()
	out, err := exec.Command(bin.fridaymorning, "status", s.service, "--config", s.configPath, "-o", "json").Output()
	if err != nil {
		s.t.Fatalf("status: %v", err)
	}
	var v statusView
	if err := json.Unmarshal(out, &v); err != nil {
		s.t.Fatalf("status output %q: %v", out, err)
	}
	return v
}

// waitDead polls status until the release's process counts as dead.
func (s *stack) waitDead() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.status().Alive {
		if time.Now().After(deadline) {
			s.t.Fatal("the killed release still counts as alive after 20s")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runningTasks counts the stable service's tasks that run.
func (s *stack) runningTasks() int {
	s.t.Helper()
	tasks, err := s.docker.TaskList(context.Background(), dockerswarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", s.service), filters.Arg("desired-state", "running"))})
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, t := range tasks {
		if t.Status.State == dockerswarm.TaskStateRunning {
			n++
		}
	}
	return n
}

// checkCleanEnd asserts what every release must end in: no canary, stable at full strength on image,
// all weight on stable, no release in progress.
func (s *stack) checkCleanEnd(image string, outcome string) {
	s.t.Helper()
	if s.canaryExists() {
		s.t.Error("an orphan canary service is left")
	}
	svc := s.inspect()
	if got := swarm.ReleasedImage(svc.Spec); got != image {
		s.t.Errorf("stable runs %s, want %s", got, image)
	}
	if r := *svc.Spec.Mode.Replicated.Replicas; r != 1 {
		s.t.Errorf("stable has %d replicas, want 1", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.runningTasks() != 1 {
		if time.Now().After(deadline) {
			s.t.Errorf("stable has %d running tasks, want 1", s.runningTasks())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		s.t.Errorf("weights %v: want all on stable", w)
	}
	v := s.status()
	if v.Record == nil || v.Record.Active() || string(v.Record.Outcome) != outcome {
		s.t.Errorf("release record %+v: want it ended %s", v.Record, outcome)
	}
}

func TestKillAndResumeInEveryPhase(t *testing.T) {
	tests := []struct {
		name    string
		image   string
		trigger []string
		then    string // resume or abort
		code    int
		outcome string
		final   string // image tag stable ends on
	}{
		{"canary starting", "v2", []string{"event=canary-created"}, "resume", exitPromoted, "promoted", "v2"},
		{"step 1 baking", "v2", []string{"event=bake", "step=1/2"}, "resume", exitPromoted, "promoted", "v2"},
		{"step 2 baking", "v2", []string{"event=bake", "step=2/2"}, "resume", exitPromoted, "promoted", "v2"},
		{"promoting", "v2", []string{"all requests to the canary while the stable service is updated"}, "resume", exitPromoted, "promoted", "v2"},
		{"aborting", "v2-errors", []string{"event=phase", "phase=aborting"}, "resume", exitAbortedAnalysis, "aborted-analysis", "v1"},
		{"step 1 baking and abort from another terminal", "v2", []string{"event=bake", "step=1/2"}, "abort", 0, "aborted-operator", "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			stop := s.startLoad(100)
			p := s.start("release", "--config", s.configPath, "--image", s.image+":"+tt.image)
			p.waitLine(2*time.Minute, tt.trigger...)
			p.kill9()
			t.Logf("killed after %q:\n%s", tt.trigger, p.out.String())
			s.waitDead()
			code, out := s.run(tt.then, s.service, "--config", s.configPath)
			load := stop()
			if code != tt.code {
				t.Fatalf("%s exited %d, want %d", tt.then, code, tt.code)
			}
			if !strings.Contains(out, "taking over") {
				t.Errorf("%s did not say it took the release over", tt.then)
			}
			s.checkCleanEnd(s.image+":"+tt.final, tt.outcome)
			if tt.image == "v2" && load.Failed != 0 {
				t.Errorf("%d of %d requests failed (%v): a killed fridaymorning must not cost users requests", load.Failed, load.Sent, load.Errors)
			}
		})
	}
}

func TestConcurrentReleasesExactlyOneProceeds(t *testing.T) {
	s := newStack(t)
	stop := s.startLoad(100)
	a := s.start("release", "--config", s.configPath, "--image", s.image+":v2")
	b := s.start("release", "--config", s.configPath, "--image", s.image+":v3")
	// One is refused at once; the other goes on.
	var loser, winner *proc
	select {
	case <-a.done:
		loser, winner = a, b
	case <-b.done:
		loser, winner = b, a
	case <-time.After(time.Minute):
		t.Fatalf("neither release was refused:\n%s\n---\n%s", a.out.String(), b.out.String())
	}
	if code := loser.wait(time.Second); code != exitError {
		t.Fatalf("the refused release exited %d, want %d", code, exitError)
	}
	winner.waitLine(time.Minute, "event=canary-created")
	v := s.status()
	if v.Record == nil || !v.Record.Active() || !v.Alive {
		t.Fatalf("status from a second process: %+v, want the live release", v)
	}
	for _, want := range []string{v.Record.ID, "fridaymorning abort " + s.service} {
		if !strings.Contains(loser.out.String(), want) {
			t.Errorf("the refusal does not name %q:\n%s", want, loser.out.String())
		}
	}
	if code := winner.wait(3 * time.Minute); code != exitPromoted {
		t.Fatalf("the release that proceeded exited %d", code)
	}
	stop()
	s.checkCleanEnd(v.Record.Image, "promoted")
}

func TestCanaryThatNeverBecomesHealthyIsAborted(t *testing.T) {
	tests := []struct {
		image string
		want  []string
	}{
		{"v2-crash", []string{"non-zero exit (1)"}},
		{"v2-unhealthy", []string{"did not become ready", "healthcheck unhealthy", "healthz answered 503"}},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			s := newStack(t)
			before := s.inspect()
			began := time.Now()
			code, out := s.run("release", "--config", s.configPath, "--image", s.image+":"+tt.image)
			took := time.Since(began)
			if code != exitAbortedAnalysis {
				t.Fatalf("exit %d, want %d", code, exitAbortedAnalysis)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks the task error %q", w)
				}
			}
			// Bounded: well within canary.ready_timeout (60s) for the crash loop, at most it for the rest.
			if took > 90*time.Second {
				t.Errorf("took %s to abort", took)
			}
			after := s.inspect()
			if !onlyOwnLabelsChanged(before.Spec, after.Spec) {
				t.Error("the stable service changed beyond fridaymorning's labels")
			}
			s.checkCleanEnd(s.image+":v1", "aborted-analysis")
		})
	}
}

func TestOperatorActsOnAReleaseFromAnotherProcess(t *testing.T) {
	tests := []struct {
		cmd      string
		relCode  int
		final    string
		outcome  string
		notBaked string
	}{
		{"abort", exitAbortedOperator, "v1", "aborted-operator", ""},
		{"promote", exitPromoted, "v2", "promoted", "step=2/2"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			s := newStack(t)
			stop := s.startLoad(100)
			rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2", "--bake", "30s")
			rel.waitLine(2*time.Minute, "event=bake", "step=1/2")
			code, out := s.run(tt.cmd, s.service, "--config", s.configPath)
			if code != 0 {
				t.Fatalf("%s exited %d", tt.cmd, code)
			}
			if !strings.Contains(out, "event=requested") {
				t.Errorf("%s did not ask the live process", tt.cmd)
			}
			if c := rel.wait(2 * time.Minute); c != tt.relCode {
				t.Fatalf("the release exited %d, want %d", c, tt.relCode)
			}
			load := stop()
			if tt.notBaked != "" && strings.Contains(rel.out.String(), tt.notBaked) {
				t.Errorf("the release went on to %s after being promoted", tt.notBaked)
			}
			s.checkCleanEnd(s.image+":"+tt.final, tt.outcome)
			if load.Failed != 0 {
				t.Errorf("%d requests failed", load.Failed)
			}
		})
	}
}

// withStandby rewrites the stack's config to keep the previous version warm for d after promotion.
func (s *stack) withStandby(d string) {
	s.t.Helper()
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		s.t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte("promote:\n  timeout: 2m\n"), []byte("promote:\n  timeout: 2m\n  standby: "+d+"\n"), 1)
	if !bytes.Contains(raw, []byte("standby: "+d)) {
		s.t.Fatal("the stack's config has no promote section to extend")
	}
	if err := os.WriteFile(s.configPath, raw, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func TestWarmStandbyAndRollback(t *testing.T) {
	t.Run("rollback sends traffic back to the previous version", func(t *testing.T) {
		s := newStack(t)
		s.withStandby("5m")
		stop := s.startLoad(100)
		rel := s.start("release", "--config", s.configPath, "--image", s.image+":v2")
		rel.waitLine(3*time.Minute, "event=phase", "phase=standby")
		if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" {
			t.Fatalf("stable runs %s during the standby, want v2", img)
		}
		if v := s.status(); v.Record == nil || v.Record.Phase != "standby" || v.Record.StandbyUntil == nil {
			t.Fatalf("status during the standby: %+v", v.Record)
		}
		code, out := s.run("rollback", s.service, "--config", s.configPath)
		if code != 0 || !strings.Contains(out, "event=requested") {
			t.Fatalf("rollback exited %d", code)
		}
		if c := rel.wait(2 * time.Minute); c != exitRolledBack {
			t.Fatalf("the release exited %d, want %d (rolled back)", c, exitRolledBack)
		}
		load := stop()
		s.checkCleanEnd(s.image+":v1", "rolled-back")
		if load.Failed != 0 {
			t.Errorf("%d of %d requests failed during promotion and rollback (%v)", load.Failed, load.Sent, load.Errors)
		}
	})
	t.Run("the standby goes when its time is up", func(t *testing.T) {
		s := newStack(t)
		s.withStandby("3s")
		stop := s.startLoad(100)
		code, out := s.release("--image", s.image+":v2")
		stop()
		if code != exitPromoted || !strings.Contains(out, "phase=standby") || !strings.Contains(out, "the standby of "+s.image+":v1 is removed") {
			t.Fatalf("exit %d", code)
		}
		s.checkCleanEnd(s.image+":v2", "promoted")
	})
}
