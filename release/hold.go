package release

import (
	"context"
	"fmt"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// hold keeps a release that waits for a human (at the promotion gate, or paused as inconclusive) where
// it stands, with the canary at its share, while this process watches it with early looks: a canary
// that starts failing is aborted at once instead of serving users until someone looks. It ends on a
// request: a promotion first judges a fresh window (the one since the hold began, at least a bake long)
// and promotes only if it passes; an abort aborts. An interrupt aborts, or, for a release this process
// only watches (letGo), hands it back paused.
func (e *Engine) hold(ctx, parent context.Context, st *state) {
	pct := e.cfg.Steps[st.step]
	st.windowStart, st.countsAtStart, st.countersReset = time.Now(), e.counts(ctx, st), false
	st.bakeUntil, st.paused = time.Time{}, false
	where := "paused"
	if st.gate {
		where = "at the promotion gate"
	}
	e.send(st, Event{Kind: KindProgress, CanaryPercent: pct, Message: fmt.Sprintf("%s with %s%% of requests on the canary, watched with early looks: `fridaymorning promote %s` judges a fresh window and promotes, `fridaymorning abort %s` aborts",
		where, FormatPercent(st.canaryPercent), e.cfg.Service, e.cfg.Service)})
	e.persist(context.Background(), st)
	clock := &bakeClock{paused: true, pct: pct}
	for {
		r := e.sleep(ctx, st, clock)
		if r == sleepFailedEarly {
			st.hold = false
			return
		}
		if r == sleepInterrupted {
			break
		}
		// A skip has nothing to skip here: hold on.
	}
	if parent.Err() != nil && st.letGo {
		st.end, st.outcome = true, OutcomePaused
		e.send(st, Event{Kind: KindPhase, Message: "stopped watching: the release stays " + where + " for `fridaymorning promote` or `abort`"})
		return
	}
	if parent.Err() == nil && e.peekPending() == CommandPromote {
		e.takePending()
		st.hold, st.held, st.rejudge, st.keepWindow = false, true, true, true
		st.bakeUntil = st.windowStart.Add(e.cfg.Bake)
		if now := time.Now(); st.bakeUntil.Before(now) {
			st.bakeUntil = now
		}
		e.send(st, Event{Kind: KindProgress, CanaryPercent: pct, Until: st.bakeUntil, Message: fmt.Sprintf("promotion requested: judging the window since %s before promoting",
			st.windowStart.UTC().Format(time.RFC3339))})
		return
	}
	st.hold = false
	e.interrupted(parent, st, where)
}

// refusePromotion ends a fresh judgement of a paused release that came out inconclusive: it is not
// promoted. A process that held the release holds it again; otherwise it stays paused for a human.
func (e *Engine) refusePromotion(st *state, v verdict.Verdict) {
	st.rejudge = false
	msg := fmt.Sprintf("not promoted: the fresh window at %s%% is inconclusive (%s); the release stays paused: `fridaymorning promote %s` judges again, `fridaymorning promote %s --skip-analysis` promotes on the last verdict, `fridaymorning abort %s` aborts",
		FormatPercent(e.cfg.Steps[st.step]), v.Reason, e.cfg.Service, e.cfg.Service, e.cfg.Service)
	if st.held {
		st.held, st.hold = false, true
		e.send(st, Event{Kind: KindWarning, Message: msg})
		return
	}
	st.reason = msg
	st.end, st.outcome = true, OutcomePaused
	e.send(st, Event{Kind: KindPhase, Message: msg})
}

// peekPending returns the pending command without taking it.
func (e *Engine) peekPending() Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending
}
