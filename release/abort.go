package release

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// cause is why a release is being aborted.
type cause string

const (
	causeAnalysis     cause = "analysis"
	causeInconclusive cause = "inconclusive"
	causeOperator     cause = "operator"
	causeError        cause = "error"
)

// startAbort moves to the aborting phase for the given cause. It says so at once but does not write
// the record: abort moves traffic off the canary first, and the record waits on Docker.
func (e *Engine) startAbort(st *state, c cause, why string) {
	st.cause = c
	st.reason = why
	st.phase = PhaseAborting
	e.send(st, Event{Kind: KindPhase, Message: why})
}

// cutTimeout bounds an abort's first attempt to move traffic off the canary, made before anything that
// waits on Docker: a hung Docker Engine API must not keep a failing canary in traffic.
const cutTimeout = 5 * time.Second

// interrupted handles a phase cut short by a command or by the end of parent (an operator's
// interrupt, which means abort), and sets what follows: the promotion or rollback asked for (a
// promotion asked for while the canary starts follows once it is ready), an abort otherwise. A
// promoted release in standby is never aborted: an abort only ends the standby early.
func (e *Engine) interrupted(parent context.Context, st *state, where string) {
	cmd := e.takePending()
	if parent.Err() != nil {
		cmd = CommandAbort
	}
	switch {
	case st.phase == PhaseStandby && cmd == CommandRollback:
		e.enter(st, PhaseRollingBack, "rollback requested by an operator")
	case st.phase == PhaseStandby && cmd == CommandAbort:
		st.endStandby = true
	case st.phase == PhaseStandby:
		// Nothing else applies to a promoted release: keep standing by.
	case cmd == CommandPromote && st.phase == PhaseBaking:
		e.enter(st, PhasePromoting, "promotion requested by an operator "+where)
	case cmd == CommandPromote && st.phase == PhaseStarting:
		st.promoteWhenReady = true
		e.send(st, Event{Kind: KindProgress, Message: "promotion requested: it follows once the canary is ready"})
	default:
		e.startAbort(st, causeOperator, "aborted by an operator "+where)
	}
}

// abort puts all traffic back on stable, then drains and removes the canary. Traffic moves first,
// within cutTimeout, before the record is written or Docker is asked anything. If the stable service
// may have been touched (a promotion that failed half-way), it first goes back to its previous image and
// must be healthy before it gets traffic. It runs on a context of its own: an interrupt must not cut
// the way back short. Every step is idempotent.
func (e *Engine) abort(st *state) {
	e.takePending()
	cut, tried := false, !st.stableTouched
	if tried {
		cctx, ccancel := context.WithTimeout(context.Background(), cutTimeout)
		err := e.shift(cctx, st, 0, shiftOnly, plain("all requests back on the stable service"))
		ccancel()
		if cut = err == nil; !cut {
			e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("moving traffic back to stable, attempt 1: %v", err)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()
	e.persist(ctx, st)

	// Stable untouched (the usual case): straight to moving traffic back. Touched by a promotion that
	// failed half-way: back to what it ran (image, or whole spec), and healthy, before it gets traffic.
	if cur, err := e.deps.Rollout.Current(ctx, e.cfg.Service); err != nil {
		e.send(st, Event{Kind: KindWarning, Message: "reading what the stable service runs: " + err.Error()})
	} else if e.stableTarget != "" && cur != e.stableTarget {
		img, _ := e.deps.Rollout.Image(ctx, e.cfg.Service)
		e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("stable %s was changed (it runs %s): putting it back as it was (%s) before it gets traffic", e.cfg.Service, img, e.stableImage)})
		if err := e.converge(ctx, st, e.cfg.Service, setImage, e.stableTarget, GroupStable, "stable"); err != nil {
			e.halt(st, fmt.Errorf("aborting (%s): stable %s is not ready on %s: %w; traffic stays where it is: fix the stable service, then run `fridaymorning abort %s` again", st.reason, e.cfg.Service, e.stableImage, err, e.cfg.Service))
			return
		}
	}

	var err error
	first := 1
	if tried {
		first = 2 // the cut above was the first attempt
	}
	for attempt := first; attempt <= 5 && !cut; attempt++ {
		if err = e.shift(ctx, st, 0, shiftAndPersist, plain("all requests back on the stable service")); err == nil {
			break
		}
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("moving traffic back to stable, attempt %d: %v", attempt, err)})
		if !sleepCtx(ctx, time.Duration(attempt)*500*time.Millisecond) {
			break
		}
	}
	if err != nil {
		e.halt(st, fmt.Errorf("aborting (%s): traffic could not be moved back to stable: %w; the canary %s was left running so it keeps serving its share: run `fridaymorning abort %s` again once HAProxy's Data Plane API answers",
			st.reason, err, st.canary, e.cfg.Service))
		return
	}
	if err := e.removeCanary(ctx, st); err != nil {
		e.halt(st, fmt.Errorf("aborted (%s) and traffic is back on stable, but removing the canary failed: %w; run `fridaymorning abort %s` again", st.reason, err, e.cfg.Service))
		return
	}
	switch st.cause {
	case causeAnalysis:
		e.finish(st, PhaseAborted, OutcomeAbortedAnalysis, "", nil)
	case causeInconclusive:
		e.finish(st, PhaseAborted, OutcomeAbortedInconclusive, "", nil)
	case causeOperator:
		e.finish(st, PhaseAborted, OutcomeAbortedOperator, "", nil)
	default:
		e.finish(st, PhaseAborted, OutcomeFailed, "", errors.New(st.reason+"; aborted: traffic is back on stable and the canary is removed"))
	}
}
