package release

import (
	"context"
	"fmt"
)

// promote runs Flagger's order: all traffic on the canary; stable takes the new image and converges;
// all traffic back on stable; the canary is drained and removed. After each sub-step the record says it
// is done (Progress), so that a promotion taken over from a dead process goes on from the next one;
// the sub-steps are idempotent besides, for a process that died between doing one and recording it.
// Once begun it is not interrupted: the stable service may already be moving to the new image, so
// finishing is the safe way out. An abort asked for meanwhile is said, and leaves a standby in place.
func (e *Engine) promote(ctx context.Context, st *state) {
	e.abortAsked(st)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.PromoteTimeout)
	defer cancel()
	st.gate = false

	if !st.progress.reached(ProgressOnCanary) {
		// The canary is about to carry everything: as many tasks as stable, where it can.
		_, err := e.deps.Canaries.ScaleCanary(pctx, st.canary, e.cfg.Service, 100)
		if err == nil {
			err = e.converge(pctx, st, st.canary, keepImage, "", GroupCanary, "canary")
		}
		if err != nil {
			e.startAbort(st, causeError, fmt.Sprintf("promotion: the canary could not be scaled to carry all traffic: %v", err))
			return
		}
		if !e.done(st, ProgressCanaryScaled, "the canary can carry all traffic") {
			return
		}
		if err := e.shift(pctx, st, 100, shiftOnly, plain("all requests to the canary while the stable service is updated")); err != nil {
			e.startAbort(st, causeError, fmt.Sprintf("promotion: moving all traffic to the canary failed: %v", err))
			return
		}
		if !e.done(st, ProgressOnCanary, "") {
			return
		}
	}

	if !st.progress.reached(ProgressStableUpdated) {
		// Recorded before the stable service is touched: from here an abort puts its image back.
		if !st.progress.reached(ProgressStableUpdating) && !e.done(st, ProgressStableUpdating, "") {
			return
		}
		if err := e.converge(pctx, st, e.cfg.Service, setImageUnlessRunning, e.target(), GroupStable, "stable"); err != nil {
			// Never move traffic onto servers that are not healthy: it stays on the canary, which runs the
			// same image and passed every step. The release stays active for an operator.
			st.reason = fmt.Sprintf("stable service %s did not become ready on %s: %v", e.cfg.Service, e.cfg.Image, err)
			e.halt(st, fmt.Errorf("promotion: %s; all traffic stays on the healthy canary %s: fix the stable service and run `fridaymorning resume %s`, or roll back with `fridaymorning abort %s`",
				st.reason, st.canary, e.cfg.Service, e.cfg.Service))
			return
		}
		e.restorePolicy(pctx, st)
		if !e.done(st, ProgressStableUpdated, fmt.Sprintf("stable %s runs %s and is healthy", e.cfg.Service, e.cfg.Image)) {
			return
		}
	}

	if !st.progress.reached(ProgressOnStable) {
		if err := e.retry(pctx, st, "moving traffic back to the stable service", func() error {
			return e.shift(pctx, st, 0, shiftOnly, plain("all requests back on the stable service, now running "+e.cfg.Image))
		}); err != nil {
			e.halt(st, fmt.Errorf("promotion: stable %s runs %s, but moving traffic back to it failed: %w; the canary %s still serves it: run `fridaymorning resume %s`", e.cfg.Service, e.cfg.Image, err, st.canary, e.cfg.Service))
			return
		}
		if !e.done(st, ProgressOnStable, "") {
			return
		}
		if e.cfg.Standby > 0 && e.stableTarget != "" {
			if err := e.warmStandby(pctx, st); err == nil {
				e.abortAsked(st)
				return
			} else {
				e.send(st, Event{Kind: KindWarning, Message: "keeping the previous version warm failed: " + err.Error() + "; promoting without a standby"})
			}
		}
	}
	if !st.progress.reached(ProgressCanaryRemoved) {
		if err := e.retry(pctx, st, "removing the canary", func() error { return e.removeCanary(pctx, st) }); err != nil {
			e.halt(st, fmt.Errorf("promotion done, but removing the canary failed: %w; run `fridaymorning resume %s`", err, e.cfg.Service))
			return
		}
		if !e.done(st, ProgressCanaryRemoved, "") {
			return
		}
	}
	e.abortAsked(st)
	e.finish(st, PhasePromoted, OutcomePromoted, fmt.Sprintf("%s runs %s", e.cfg.Service, e.cfg.Image), nil)
	e.stackWarning(pctx, st)
}

// done records that the promotion or rollback finished sub-step p (saying so first, if msg is set), and
// reports whether the release may go on: false once another process took it over.
func (e *Engine) done(st *state, p Progress, msg string) bool {
	if msg != "" {
		e.send(st, Event{Kind: KindProgress, Message: msg})
	}
	st.progress = p
	e.persist(context.Background(), st)
	return !st.lostOwnership
}

// abortAsked reports an abort asked for while the promotion ran: it is not carried out (the stable
// service may be moving to the new image already), and it never removes the warm standby silently.
func (e *Engine) abortAsked(st *state) {
	cmd := e.takePending()
	if cmd == CommandAbort {
		st.abortDuringPromotion = true
		e.send(st, Event{Kind: KindWarning, Message: "abort requested during the promotion: it is not carried out, since the stable service may already be moving to the new image; the promotion is finished"})
	}
	if cmd == commandRecordLost {
		e.send(st, Event{Kind: KindWarning, Message: "the release record was removed during the promotion: it was written back and the promotion goes on, since the stable service may already be moving to the new image"})
	}
	if st.abortDuringPromotion && st.phase == PhaseStandby {
		st.abortDuringPromotion = false
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("an abort was requested during the promotion: %s stands by on %s; `fridaymorning rollback %s` goes back to it, `fridaymorning abort %s` removes it",
			e.stableImage, st.canary, e.cfg.Service, e.cfg.Service)})
	}
}
