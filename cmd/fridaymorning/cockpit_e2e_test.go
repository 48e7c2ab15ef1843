//go:build integration

package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// tmuxRun runs the fridaymorning binary in a terminal of its own (tmux, 120×40), as an operator would,
// and returns a handle to read its screen and press its keys.
type tmuxRun struct {
	t        *testing.T
	socket   string
	exitFile string
}

func (s *stack) inTmux(t *testing.T, args ...string) *tmuxRun {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: make testbed installs it")
	}
	dir := t.TempDir()
	r := &tmuxRun{t: t, socket: filepath.Join(dir, "tmux.sock"), exitFile: filepath.Join(dir, "exit")}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	// CI=true would mean line output: the cockpit is what is tested here. The password comes from the file.
	script := fmt.Sprintf("#!/bin/sh\nunset CI\nexport %s= TERM=xterm-256color\n%s %s\necho $? > %s\nsleep 600\n",
		envDataplanePassword, bin.fridaymorning, strings.Join(quoted, " "), r.exitFile)
	path := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tmux", "-S", r.socket, "new-session", "-d", "-x", "120", "-y", "40", "-s", "fm", path).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", r.socket, "kill-server").Run() })
	return r
}

// screen is what the terminal shows now.
func (r *tmuxRun) screen() string {
	out, err := exec.Command("tmux", "-S", r.socket, "capture-pane", "-p", "-t", "fm").CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// waitFor waits until the screen shows every one of want, and returns it.
func (r *tmuxRun) waitFor(within time.Duration, want ...string) string {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		sc := r.screen()
		all := true
		for _, w := range want {
			all = all && strings.Contains(sc, w)
		}
		if all {
			return sc
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the screen did not show %q within %s:\n%s", want, within, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *tmuxRun) press(keys ...string) {
	r.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "-S", r.socket, "send-keys", "-t", "fm", k).CombinedOutput(); err != nil {
			r.t.Fatalf("send-keys %s: %v: %s", k, err, out)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// exitCode waits for the binary to exit and returns its exit code.
func (r *tmuxRun) exitCode(within time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(r.exitFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return code
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.t.Fatalf("fridaymorning did not exit within %s:\n%s", within, r.screen())
	return -1
}

// TestCockpitAbortWithConfirmation: the operator watches a release in the cockpit, presses a, confirms,
// and the release aborts: traffic back on stable, canary gone, exit 4.
func TestCockpitAbortWithConfirmation(t *testing.T) {
	s := newStack(t, withConfig("bake: 4s", "bake: 60s"))
	stop := s.startLoad(50)
	defer stop()
	r := s.inTmux(t, "release", "--config", s.configPath, "--image", s.image+":v2")
	r.waitFor(90*time.Second, "▶ 10%", canaryShown(10), "p promote", "docker ✓")
	time.Sleep(5 * time.Second) // a few early looks
	t.Logf("the cockpit, baking:\n%s", r.screen())
	r.press("a")
	r.waitFor(5*time.Second, "Abort the release?")
	r.press("y")
	sc := r.waitFor(60*time.Second, "aborted-operator")
	if !strings.Contains(sc, "q quit") {
		t.Errorf("the finished screen offers no way out:\n%s", sc)
	}
	r.press("q")
	if code := r.exitCode(10 * time.Second); code != exitAbortedOperator {
		t.Fatalf("exit %d, want %d (aborted by an operator)", code, exitAbortedOperator)
	}
	if s.canaryExists() {
		t.Error("the canary is still there")
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights %v after the abort", w)
	}
	if img := s.inspect().Spec.TaskTemplate.ContainerSpec.Image; img != s.image+":v1" {
		t.Errorf("stable runs %s", img)
	}
}

// TestCockpitPromoteWithConfirmation: p, then y, promotes at once, skipping the remaining steps.
func TestCockpitPromoteWithConfirmation(t *testing.T) {
	s := newStack(t, withConfig("bake: 4s", "bake: 60s"))
	stop := s.startLoad(50)
	defer stop()
	r := s.inTmux(t, "release", "--config", s.configPath, "--image", s.image+":v2")
	r.waitFor(90*time.Second, "▶ 10%", canaryShown(10))
	r.press("p")
	r.waitFor(5*time.Second, "Promote now?")
	r.press("n")
	time.Sleep(time.Second)
	if sc := r.screen(); strings.Contains(sc, "Promote now?") || !strings.Contains(sc, "▶ 10%") {
		t.Fatalf("n did not cancel:\n%s", sc)
	}
	r.press("p", "y")
	r.waitFor(2*time.Minute, "promoted")
	r.press("q")
	if code := r.exitCode(10 * time.Second); code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" {
		t.Errorf("stable runs %s, want v2", img)
	}
	if s.canaryExists() {
		t.Error("the canary is still there")
	}
}

// TestWatchSteersAReleaseDrivenElsewhere: a release runs headless (a CI job, say); fridaymorning watch
// in a terminal shows it from Swarm, and pausing, continuing and aborting from there reach the process
// driving it.
func TestWatchSteersAReleaseDrivenElsewhere(t *testing.T) {
	s := newStack(t, withConfig("bake: 4s", "bake: 60s"))
	stop := s.startLoad(50)
	defer stop()
	rel := s.start("release", "--headless", "--config", s.configPath, "--image", s.image+":v2")
	rel.waitLine(90*time.Second, "event=bake", "step=1/2")
	r := s.inTmux(t, "watch", s.service, "--config", s.configPath)
	r.waitFor(30*time.Second, "watching", "▶ 10%", canaryShown(10), "fridaymorning/demoapp:v2")
	r.press("Space")
	rel.waitLine(15*time.Second, "event=control", "paused by an operator")
	r.waitFor(15*time.Second, "(paused)")
	r.press("Space")
	rel.waitLine(15*time.Second, "event=control", "continued by an operator")
	r.press("a")
	r.waitFor(5*time.Second, "Abort the release?")
	r.press("y")
	if code := rel.wait(time.Minute); code != exitAbortedOperator {
		t.Fatalf("the release exited %d, want %d (aborted by an operator)", code, exitAbortedOperator)
	}
	r.waitFor(15*time.Second, "aborted-operator")
	r.press("q")
	if code := r.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	if s.canaryExists() {
		t.Error("the canary is still there")
	}
}

// canaryShown is what the cockpit's split line says of a step at percent, against the stack's one stable
// server at weight 100: the share HAProxy's weights give (10% is 9.91%), not the one asked.
func canaryShown(percent float64) string {
	_, _, achieved := haproxy.SplitWeights(1, 1, percent, 100)
	return "canary " + strconv.FormatFloat(math.Round(achieved*100)/100, 'f', -1, 64) + "%"
}
