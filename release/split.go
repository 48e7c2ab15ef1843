package release

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verifier holds the split the load balancer runs to the weights the release set.
type Verifier interface {
	// Verify reads the weights the load balancer runs and holds them to set, the weights a Shift to
	// canaryPercent returned. drifted names, with its live weight, each server that no longer runs its
	// weight in set: someone else changed it. stale reports, when nothing drifted, that servers took up
	// or left traffic since, so that a Shift to canaryPercent now would write other weights.
	Verify(ctx context.Context, canaryPercent float64, set map[string]int) (drifted map[string]int, stale bool, err error)
}

// checkSplit re-reads the split during a bake (every SplitInterval). Weights someone else changed (an
// operator's `set weight`, an HAProxy reload or restart with its configured weights) pause the bake and
// are left alone, said at once: the split users get is no longer the one being judged, and an
// operator's change is respected; `continue` sets the step's weights again and restarts its bake.
// Servers that took up or left traffic since the step's shift (a canary task that came up) have the
// weights computed again, so that the canary's share stays the step's. A failed read is no news.
func (e *Engine) checkSplit(ctx context.Context, st *state, clock *bakeClock) {
	if e.deps.Verifier == nil || st.weights == nil || clock.drifted {
		return
	}
	type verified struct {
		drifted map[string]int
		stale   bool
	}
	pct, set := clock.pct, st.weights
	got, err := await(e, st, e.loadBalancer("reading the weights it runs"), func() (verified, error) {
		d, s, err := e.deps.Verifier.Verify(ctx, pct, set)
		return verified{d, s}, err
	})
	drifted, stale := got.drifted, got.stale
	switch {
	case err != nil:
	case len(drifted) > 0:
		clock.drifted = true
		if !clock.paused {
			clock.paused, clock.left = true, max(time.Until(clock.until), 0)
		}
		e.send(st, Event{Kind: KindControl, Command: CommandPause, CanaryPercent: clock.pct,
			Message: fmt.Sprintf("the load balancer's weights were changed outside the release (%s): the split users get is not the step's %s%%, so the bake pauses and leaves them as they are; `fridaymorning continue %s` sets the step's weights again and restarts its bake, `fridaymorning abort %s` aborts",
				describeDrift(drifted, st.weights), FormatPercent(clock.pct), e.cfg.Service, e.cfg.Service)})
		st.bakeUntil, st.paused = time.Now().Add(clock.left), true
		e.persist(ctx, st)
	case stale:
		err := e.shift(ctx, st, clock.pct, shiftAndPersist, func(achieved float64) string {
			return fmt.Sprintf("a server took up or left traffic: weights computed again, canary gets %s%% of requests", FormatPercent(achieved))
		})
		if err != nil && ctx.Err() == nil {
			e.send(st, Event{Kind: KindWarning, CanaryPercent: clock.pct, Message: fmt.Sprintf("a server took up or left traffic, but computing the weights again failed: %v; they stay as they are", err)})
		}
	}
}

// reclaimSplit ends a pause for weights changed outside the release: the step's weights are set again
// and its bake starts over, on a new window. It reports whether it did.
func (e *Engine) reclaimSplit(ctx context.Context, st *state, clock *bakeClock) bool {
	err := e.shift(ctx, st, clock.pct, shiftStep, func(achieved float64) string {
		return fmt.Sprintf("continued by an operator: the step's weights are set again, canary gets %s%% of requests; the step's bake starts again", FormatPercent(achieved))
	})
	if err != nil {
		e.send(st, Event{Kind: KindWarning, CanaryPercent: clock.pct, Message: fmt.Sprintf("setting the step's weights again failed, the bake stays paused: %v", err)})
		return false
	}
	clock.drifted, clock.paused = false, false
	clock.until = time.Now().Add(e.cfg.Bake)
	e.send(st, Event{Kind: KindBake, CanaryPercent: clock.pct, Until: clock.until, Message: fmt.Sprintf("baking for %s", e.cfg.Bake)})
	return true
}

// describeDrift says, per server, what the load balancer runs against what the release set.
func describeDrift(live, set map[string]int) string {
	names := make([]string, 0, len(live))
	for n := range live {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s runs weight %d, the release set %d", n, live[n], set[n])
	}
	return strings.Join(parts, "; ")
}
