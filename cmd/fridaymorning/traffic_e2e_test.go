//go:build integration

package main

import (
	"context"
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
