package release

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// hungDocker is a world whose Docker side (the release record and the service reads) hangs once
// hang is called, until release is: a Docker Engine API that stopped answering.
type hungDocker struct {
	*world
	mu      sync.Mutex
	hung    bool
	unblock chan struct{}
}

func (h *hungDocker) hang() {
	h.mu.Lock()
	h.hung = true
	h.mu.Unlock()
}

func (h *hungDocker) wait(ctx context.Context) {
	h.mu.Lock()
	hung := h.hung
	h.mu.Unlock()
	if hung {
		select {
		case <-h.unblock:
		case <-ctx.Done():
		}
	}
}

func (h *hungDocker) WriteState(ctx context.Context, service string, version uint64, record []byte, request string) (bool, error) {
	h.wait(ctx)
	return h.memJournal.WriteState(ctx, service, version, record, request)
}

func (h *hungDocker) Image(ctx context.Context, service string) (string, error) {
	h.wait(ctx)
	return h.world.Image(ctx, service)
}

// TestAbortMovesTrafficBeforeDocker: when an early look fails the canary while the Docker Engine API
// hangs, the canary's weight is 0 within a second of the look; the record and the clean-up follow once
// Docker answers again.
func TestAbortMovesTrafficBeforeDocker(t *testing.T) {
	inconclusive := verdict.Verdict{Result: verdict.ResultInconclusive}
	h := &hungDocker{world: &world{early: []verdict.Verdict{inconclusive, inconclusive, {Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%"}}}, unblock: make(chan struct{})}
	var failedAt time.Time
	var once sync.Once
	h.onEarly = func(n int) {
		if n >= 2 {
			once.Do(func() { failedAt = time.Now(); h.hang() })
		}
	}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval, cfg.ProgressInterval = time.Hour, 5*time.Millisecond, time.Hour
	d := deps(h.world)
	d.Journal, d.Rollout = h, h
	e, err := New(cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := e.Run(context.Background())
		done <- result{out, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.log(), "early 10\nshift 0") {
		if time.Now().After(deadline) {
			close(h.unblock)
			t.Fatalf("no shift to 0 within 10s while Docker hangs; calls:\n%s", h.log())
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(failedAt); d > time.Second {
		t.Errorf("traffic left the canary %s after the failed look, want within a second", d)
	}
	close(h.unblock)
	r := <-done
	if r.out != OutcomeAbortedAnalysis || r.err != nil {
		t.Fatalf("outcome %s, %v", r.out, r.err)
	}
	if got, want := h.log(), "early 10\nshift 0\ndrain canary\nremove app-canary"; !strings.HasSuffix(got, want) || strings.Count(got, "shift 0") != 2 {
		t.Errorf("calls:\n%s\nwant them to end with\n%s", got, want)
	}
	if rec := h.stored(t); rec.Phase != PhaseAborted || rec.CanaryPercent != 0 {
		t.Errorf("record %+v", rec)
	}
}
