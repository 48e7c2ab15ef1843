//go:build integration

package main

import (
	"context"
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
