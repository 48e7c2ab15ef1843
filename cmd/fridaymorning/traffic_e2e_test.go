//go:build integration

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// canaryReading is HAProxy's count of the canary's responses at a moment.
type canaryReading struct {
	at       time.Time
	requests int64
}

// watchCanary reads HAProxy's canary counters every 50ms until the returned function stops it and
// returns the readings.
func (s *stack) watchCanary() func() []canaryReading {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var readings []canaryReading
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if c, err := s.hp.Counts(ctx); err == nil {
				mu.Lock()
				readings = append(readings, canaryReading{time.Now(), c["canary"].Requests})
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() []canaryReading {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return readings
	}
}

// TestCanaryGetsNoTrafficBeforeTheFirstStep: HAProxy's configuration gives the canary server weight
// 100. The release sets it to 0 before the canary service exists, so the canary answers no request
// before the first step's shift, though its task passes the health checks seconds earlier.
func TestCanaryGetsNoTrafficBeforeTheFirstStep(t *testing.T) {
	s := newStack(t, withHAProxyConfig(" weight 0\n", " weight 100\n"), withConfig("steps: [10, 50]", "steps: [10]"))
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	readings := s.watchCanary()
	code, out := s.release("--image", s.image+":v2")
	got := readings()
	stop()
	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	ready := lineTime(t, out, "event=canary-ready")
	before := 0
	for _, r := range got {
		if r.at.Before(ready) {
			before++
			if r.requests != 0 {
				t.Fatalf("HAProxy counted %d canary responses at %s, before the canary was ready (%s) and before the first step", r.requests, r.at.UTC().Format(time.RFC3339Nano), ready.Format(time.RFC3339Nano))
			}
		}
	}
	if before == 0 {
		t.Fatal("no reading of HAProxy's counters before the canary was ready: the test proves nothing")
	}
	if last := got[len(got)-1]; last.requests == 0 {
		t.Error("the canary never got a request")
	}
}

// admin sends one command to the stack's HAProxy admin socket, as an operator would, and returns the
// answer.
func (s *stack) admin(cmd string) string {
	s.t.Helper()
	c, err := net.Dial("unix", s.hap.AdminSocket)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		s.t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return strings.TrimSpace(string(out))
}

// TestReleaseAfterSetWeightByHand: an operator used `set weight` on the admin socket, so HAProxy runs
// weights its configuration does not have. The preflight names the servers with both values, and the
// release sets the runtime weights it needs and promotes (before, every shift failed its read-back with
// a misleading "check that the Data Plane API reaches its runtime socket").
func TestReleaseAfterSetWeightByHand(t *testing.T) {
	s := newStack(t, withConfig("steps: [10, 50]", "steps: [10]"))
	for _, cmd := range []string{"set weight be_" + s.app + "/stable1 7", "set weight be_" + s.app + "/canary1 50"} {
		if out := s.admin(cmd); out != "" {
			t.Fatalf("%s: %s", cmd, out)
		}
	}
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	code, out := s.release("--image", s.image+":v2")
	stop()
	if code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", code, exitPromoted)
	}
	for _, want := range []string{"canary1 runs weight 50, its configuration says 0", "stable1 runs weight 7, its configuration says 100", "the release sets the runtime weights"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] != 100 {
		t.Errorf("runtime weights after the release %v, want canary1 0, stable1 100", w)
	}
}

// TestOperatorsWeightChangeMidBakePauses: an operator sets the canary's weight to 0 on the admin
// socket while a step bakes. The release notices within a look, says so naming the server and both
// weights, and pauses leaving the operator's weight alone; `fridaymorning continue` sets the step's
// weights again and the step bakes anew to a promotion. (Before, the step passed with the split it
// happened to get, and the next step overwrote the operator.)
func TestOperatorsWeightChangeMidBakePauses(t *testing.T) {
	s := newStack(t, withConfig("steps: [10, 50]", "steps: [10]"), withConfig("bake: 4s", "bake: 6s"))
	stop := s.startLoad(100)
	defer stop()
	time.Sleep(time.Second)
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := s.releaseQuiet("--image", s.image+":v2")
		done <- result{code, out}
	}()
	// fail ends the test, with the release's output if it ended.
	fail := func(format string, args ...any) {
		t.Helper()
		select {
		case r := <-done:
			t.Fatalf(format+"\nthe release ended with exit %d:\n%s", append(args, r.code, r.out)...)
		case <-time.After(5 * time.Second):
			t.Fatalf(format, args...)
		}
	}
	// As soon as the step's weights are in, the operator steps in.
	deadline := time.Now().Add(90 * time.Second)
	for s.weights()["canary1"] == 0 {
		if time.Now().After(deadline) {
			fail("the canary never got its step's weight")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := s.admin("set weight be_" + s.app + "/canary1 0"); out != "" {
		t.Fatalf("set weight: %s", out)
	}
	// The release pauses: the record says so.
	for {
		s.quiet = true
		code, out := s.run("status", "--config", s.configPath, "-o", "json")
		s.quiet = false
		var st struct {
			Record struct {
				Paused bool `json:"paused"`
			} `json:"record"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Record.Paused {
			break
		}
		if time.Now().After(deadline) {
			fail("the release did not pause after the operator's weight change:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if w := s.weights(); w["canary1"] != 0 {
		t.Errorf("the release overwrote the operator's weight while paused: %v", w)
	}
	if code, out := s.run("continue", "--config", s.configPath); code != 0 {
		t.Fatalf("continue: exit %d\n%s", code, out)
	}
	r := <-done
	t.Logf("release output:\n%s", r.out)
	if r.code != exitPromoted {
		t.Fatalf("exit %d, want %d (promoted)", r.code, exitPromoted)
	}
	for _, want := range []string{"changed outside the release", "canary1 runs weight 0, the release set", "the step's weights are set again"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
