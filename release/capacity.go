package release

import (
	"context"
	"fmt"
)

// scaleFor gives the canary the tasks to carry pct of the requests before its weight goes up to it:
// ceil(pct × stable's tasks), at least its configured count (Argo Rollouts' setCanaryScale with
// matchTrafficWeight), ready and healthy in the load balancer before the shift. A canary of one task at
// half of production's traffic would be judged overloaded, not on its merits. Nothing happens with
// FixedCanaryScale, or when pct is not above the share the canary has.
func (e *Engine) scaleFor(ctx context.Context, st *state, pct float64) error {
	if e.cfg.FixedCanaryScale || pct <= st.canaryPercent || st.canary == "" {
		return nil
	}
	scaled, err := e.deps.Canaries.ScaleCanary(ctx, st.canary, e.cfg.Service, pct)
	if err != nil || !scaled {
		return err
	}
	e.send(st, Event{Kind: KindProgress, CanaryPercent: pct, Message: fmt.Sprintf("canary %s scaled to carry %s%% of the requests; waiting for its new tasks", st.canary, FormatPercent(pct))})
	rctx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	return e.converge(rctx, st, st.canary, keepImage, "", GroupCanary, "canary")
}

// nudgeAllowed reports whether an operator's nudge up to pct may go ahead: past the last planned step's
// share only when confirmed (CommandNudgeUpPastPlan), which the cockpit asks for. A refused nudge is
// said as a warning.
func (e *Engine) nudgeAllowed(st *state, cmd Command, pct float64) bool {
	last := e.cfg.Steps[len(e.cfg.Steps)-1]
	if cmd != CommandNudgeUp || pct <= last {
		return true
	}
	e.send(st, Event{Kind: KindWarning, Command: cmd, CanaryPercent: st.canaryPercent,
		Message: fmt.Sprintf("not nudging the canary to %s%%: that is beyond the last planned step (%s%%) and needs confirming", FormatPercent(pct), FormatPercent(last))})
	return false
}
