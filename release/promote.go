package release

import (
	"context"
	"fmt"
)

// promote runs Flagger's order: all traffic on the canary; stable takes the new image and converges;
// all traffic back on stable; the canary is drained and removed. Every step is idempotent, so a
// promotion taken over from a dead process just runs again. Once begun it is not interrupted: the
// stable service is already moving to the new image, so finishing is the safe way out.
func (e *Engine) promote(ctx context.Context, st *state) {
	if e.takePending() == CommandAbort {
		e.send(st, Event{Kind: KindWarning, Message: "abort requested during promotion: finishing the promotion, since the stable service may already be moving to the new image"})
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.PromoteTimeout)
	defer cancel()

	// The canary is about to carry everything: as many tasks as stable, where it can.
	_, err := e.deps.Canaries.ScaleCanary(pctx, st.canary, e.cfg.Service, 100)
	if err == nil {
		err = e.converge(pctx, st, st.canary, keepImage, "", GroupCanary, "canary")
	}
	if err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: the canary could not be scaled to carry all traffic: %v", err))
		return
	}
	if err := e.shift(pctx, st, 100, shiftAndPersist, plain("all requests to the canary while the stable service is updated")); err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: moving all traffic to the canary failed: %v", err))
		return
	}

	st.stableTouched = true
	if err := e.converge(pctx, st, e.cfg.Service, setImageUnlessRunning, e.target(), GroupStable, "stable"); err != nil {
		// Never move traffic onto servers that are not healthy: it stays on the canary, which runs the
		// same image and passed every step. The release stays active for an operator.
		st.reason = fmt.Sprintf("stable service %s did not become ready on %s: %v", e.cfg.Service, e.cfg.Image, err)
		e.halt(st, fmt.Errorf("promotion: %s; all traffic stays on the healthy canary %s: fix the stable service and run `fridaymorning resume %s`, or roll back with `fridaymorning abort %s`",
			st.reason, st.canary, e.cfg.Service, e.cfg.Service))
		return
	}

	if err := e.shift(pctx, st, 0, shiftAndPersist, plain("all requests back on the stable service, now running "+e.cfg.Image)); err != nil {
		e.halt(st, fmt.Errorf("promotion: stable %s runs %s, but moving traffic back to it failed: %w; the canary %s still serves it: run `fridaymorning resume %s`", e.cfg.Service, e.cfg.Image, err, st.canary, e.cfg.Service))
		return
	}
	if e.cfg.Standby > 0 && e.stableTarget != "" {
		if err := e.warmStandby(pctx, st); err == nil {
			return
		} else {
			e.send(st, Event{Kind: KindWarning, Message: "keeping the previous version warm failed: " + err.Error() + "; promoting without a standby"})
		}
	}
	if err := e.removeCanary(pctx, st); err != nil {
		e.halt(st, fmt.Errorf("promotion done, but removing the canary failed: %w; run `fridaymorning resume %s`", err, e.cfg.Service))
		return
	}
	e.finish(st, PhasePromoted, OutcomePromoted, fmt.Sprintf("%s runs %s", e.cfg.Service, e.cfg.Image), nil)
}
