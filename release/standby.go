package release

import (
	"context"
	"fmt"
	"time"
)

// warmStandby turns the canary, at weight 0, into a warm standby of the previous version: it runs
// the stable service's previous image and passes its health checks, so that a rollback only moves
// weights.
func (e *Engine) warmStandby(ctx context.Context, st *state) error {
	e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("keeping %s warm on %s for %s, at weight 0", e.stableImage, st.canary, e.cfg.Standby)})
	if err := e.converge(ctx, st, st.canary, setImage, e.stableTarget, GroupCanary, "standby"); err != nil {
		return err
	}
	st.standbyUntil = time.Now().Add(e.cfg.Standby)
	e.enter(st, PhaseStandby, fmt.Sprintf("%s runs %s; %s stands by on %s until %s: `fridaymorning rollback %s` sends traffic back to it at once",
		e.cfg.Service, e.cfg.Image, e.stableImage, st.canary, st.standbyUntil.UTC().Format(time.RFC3339), e.cfg.Service))
	return nil
}

// standby keeps the previous version warm until its time is up (or an operator ends it), then removes
// it: the release ends promoted. A rollback request moves to rolling back.
func (e *Engine) standby(ctx, parent context.Context, st *state) {
	for !st.endStandby && time.Now().Before(st.standbyUntil) {
		wait := min(time.Until(st.standbyUntil), e.cfg.ProgressInterval)
		if !sleepCtx(ctx, wait) {
			if parent.Err() != nil {
				// An interrupt leaves the standby in place; resume or abort finish it.
				e.halt(st, fmt.Errorf("interrupted while %s stands by until %s: it stays; `fridaymorning abort %s` removes it now, `fridaymorning resume %s` waits it out",
					st.canary, st.standbyUntil.UTC().Format(time.RFC3339), e.cfg.Service, e.cfg.Service))
				return
			}
			e.interrupted(parent, st, "during the standby")
			if st.phase != PhaseStandby {
				return
			}
			continue
		}
		if left := time.Until(st.standbyUntil); left > 0 {
			e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("%s stands by for %s more", e.stableImage, left.Round(time.Second))})
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()
	if err := e.retry(cctx, st, "removing the standby", func() error { return e.removeCanary(cctx, st) }); err != nil {
		e.halt(st, fmt.Errorf("the standby's time is up, but removing it failed: %w; run `fridaymorning abort %s`", err, e.cfg.Service))
		return
	}
	e.finish(st, PhasePromoted, OutcomePromoted, fmt.Sprintf("%s runs %s; the standby of %s is removed", e.cfg.Service, e.cfg.Image, e.stableImage), nil)
}

// rollback sends all traffic to the warm standby of the previous version at once, puts the stable
// service back on its previous image, then moves traffic back to it and removes the standby. As in a
// promotion, each sub-step done is recorded (Progress), so that a rollback taken over goes on from the
// next one; and each is idempotent.
func (e *Engine) rollback(st *state) {
	e.takePending()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()
	if !st.progress.reached(ProgressOnStandby) {
		if err := e.shift(ctx, st, 100, shiftOnly, plain(fmt.Sprintf("all requests to the standby running %s", e.stableImage))); err != nil {
			e.halt(st, fmt.Errorf("rollback: moving traffic to the standby %s failed: %w; run `fridaymorning rollback %s` again", st.canary, err, e.cfg.Service))
			return
		}
		if !e.done(st, ProgressOnStandby, "") {
			return
		}
	}
	if !st.progress.reached(ProgressStableRolledBack) {
		if !st.progress.reached(ProgressStableRollingBack) && !e.done(st, ProgressStableRollingBack, "") {
			return
		}
		if err := e.converge(ctx, st, e.cfg.Service, setImageUnlessRunning, e.stableTarget, GroupStable, "stable"); err != nil {
			e.halt(st, fmt.Errorf("rollback: stable %s is not ready on %s: %w; all traffic stays on the standby %s: run `fridaymorning rollback %s` again", e.cfg.Service, e.stableImage, err, st.canary, e.cfg.Service))
			return
		}
		e.restorePolicy(ctx, st)
		if !e.done(st, ProgressStableRolledBack, fmt.Sprintf("stable %s runs %s again and is healthy", e.cfg.Service, e.stableImage)) {
			return
		}
	}
	if !st.progress.reached(ProgressBackOnStable) {
		if err := e.retry(ctx, st, "moving traffic back to the stable service", func() error {
			return e.shift(ctx, st, 0, shiftOnly, plain("all requests back on the stable service, running "+e.stableImage+" again"))
		}); err != nil {
			e.halt(st, fmt.Errorf("rollback: moving traffic back to stable failed: %w; the standby %s still serves it: run `fridaymorning rollback %s` again", err, st.canary, e.cfg.Service))
			return
		}
		if !e.done(st, ProgressBackOnStable, "") {
			return
		}
	}
	if !st.progress.reached(ProgressStandbyRemoved) {
		if err := e.retry(ctx, st, "removing the standby", func() error { return e.removeCanary(ctx, st) }); err != nil {
			e.halt(st, fmt.Errorf("rolled back, but removing the standby failed: %w; run `fridaymorning rollback %s` again", err, e.cfg.Service))
			return
		}
		if !e.done(st, ProgressStandbyRemoved, "") {
			return
		}
	}
	e.finish(st, PhaseRolledBack, OutcomeRolledBack, fmt.Sprintf("%s runs %s again", e.cfg.Service, e.stableImage), nil)
}
