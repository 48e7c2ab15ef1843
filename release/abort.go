package release

import (
	"context"
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
	st.fromPromotion = st.fromPromotion || st.phase == PhasePromoting
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
		st.progress = ""
		e.enter(st, PhaseRollingBack, "rollback requested by an operator")
	case st.phase == PhaseStandby && cmd == CommandAbort:
		st.endStandby = true
		e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("abort requested during the standby: %s is promoted already; the standby of %s on %s is removed now (a rollback is no longer possible)",
			e.cfg.Service, e.stableImage, st.canary)})
	case st.phase == PhaseStandby:
		// Nothing else applies to a promoted release (a lost record was written back): keep standing by.
	case cmd == CommandPromote && st.phase == PhaseBaking:
		e.enter(st, PhasePromoting, "promotion requested by an operator "+where)
	case cmd == CommandPromote && st.phase == PhaseStarting:
		st.promoteWhenReady = true
		e.send(st, Event{Kind: KindProgress, Message: "promotion requested: it follows once the canary is ready"})
	case cmd == commandRecordLost:
		e.startAbort(st, causeError, fmt.Sprintf("the release record on %s was removed %s (a `docker stack deploy` of its stack, or a `docker service update`, replaces its labels)", e.cfg.Service, where))
	default:
		e.startAbort(st, causeOperator, "aborted by an operator "+where)
	}
}

// retry runs do until it succeeds or ctx ends, waiting longer after each failure (RetryInterval,
// doubling up to ten times it) and saying each failure's own cause in a warning. It returns the last
// error, or nil.
func (e *Engine) retry(ctx context.Context, st *state, what string, do func() error) error {
	wait := e.cfg.RetryInterval
	for attempt := 1; ; attempt++ {
		err := do()
		if err == nil || st.lostOwnership {
			return err
		}
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("%s, attempt %d (next in %s): %v", what, attempt, wait, err)})
		if !sleepCtx(ctx, wait) {
			return err
		}
		wait = min(2*wait, 10*e.cfg.RetryInterval)
	}
}

// abort puts all traffic back on stable, then drains and removes the canary. Traffic moves first,
// within cutTimeout, before the record is written or Docker is asked anything. If this release changed
// the stable service (a promotion that failed half-way), it first goes back to its previous image and
// must be healthy before it gets traffic; a stable service that someone else changed is left alone. It
// runs on a context of its own, bounded by PromoteTimeout: an interrupt must not cut the way back short,
// and an outage of the load balancer's API or of Docker is waited out, with backoff, until then. Every
// step is idempotent.
func (e *Engine) abort(st *state) {
	e.takePending()
	// Traffic first, within cutTimeout, unless this release may have changed stable (then stable must
	// be put back, and healthy, before it gets traffic): the promotion got as far as updating it, or the
	// abort comes from a promotion whose progress is not known.
	touched := st.progress.reached(ProgressStableUpdating)
	cut := false
	if !touched && !st.fromPromotion {
		cctx, ccancel := context.WithTimeout(context.Background(), cutTimeout)
		err := e.shift(cctx, st, 0, shiftOnly, plain("all requests back on the stable service"))
		ccancel()
		if cut = err == nil; !cut {
			e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("moving traffic back to stable, at once: %v; trying again", err)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()
	e.persist(ctx, st)

	if e.stableTarget != "" && (touched || st.fromPromotion) {
		var cur string
		if err := e.retry(ctx, st, "reading what the stable service runs", func() (err error) {
			cur, err = e.deps.Rollout.Current(ctx, e.cfg.Service)
			return err
		}); err != nil {
			e.halt(st, fmt.Errorf("aborting (%s): reading what stable %s runs failed within %s: %w; traffic stays where it is: run `fridaymorning abort %s` again once Docker answers", st.reason, e.cfg.Service, e.cfg.PromoteTimeout, err, e.cfg.Service))
			return
		}
		img, _ := e.deps.Rollout.Image(ctx, e.cfg.Service)
		switch {
		case cur == e.stableTarget:
		case !touched && cur != e.target():
			e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("stable %s runs %s, which this release did not put there: someone else changed it, and it is left as it is", e.cfg.Service, img)})
		default:
			e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("this release changed stable %s (it runs %s): putting it back as it was (%s) before it gets traffic", e.cfg.Service, img, e.stableImage)})
			if err := e.converge(ctx, st, e.cfg.Service, setImage, e.stableTarget, GroupStable, "stable"); err != nil {
				e.halt(st, fmt.Errorf("aborting (%s): stable %s is not ready on %s: %w; traffic stays where it is: fix the stable service, then run `fridaymorning abort %s` again", st.reason, e.cfg.Service, e.stableImage, err, e.cfg.Service))
				return
			}
		}
	}
	if st.lostOwnership {
		return
	}

	var err error
	if !cut {
		err = e.retry(ctx, st, "moving traffic back to stable", func() error {
			return e.shift(ctx, st, 0, shiftAndPersist, plain("all requests back on the stable service"))
		})
	}
	if st.lostOwnership {
		return
	}
	if err != nil {
		e.halt(st, fmt.Errorf("aborting (%s): traffic could not be moved back to stable within %s: %w; the canary %s was left running so it keeps serving its share: fix that, then run `fridaymorning abort %s` again",
			st.reason, e.cfg.PromoteTimeout, err, st.canary, e.cfg.Service))
		return
	}
	if err := e.retry(ctx, st, "removing the canary", func() error { return e.removeCanary(ctx, st) }); err != nil {
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
		e.finish(st, PhaseAborted, OutcomeAbortedError, st.reason+"; aborted: traffic is back on stable and the canary is removed", nil)
	}
}
