package release

import (
	"context"
	"fmt"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// bake runs one step: shift to the step's share (unless the bake is an extension), let it bake, judge
// it, then go to the next step, promote, extend, pause or abort.
func (e *Engine) bake(ctx, parent context.Context, st *state) {
	if ctx.Err() != nil {
		e.interrupted(parent, st, "before the step")
		return
	}
	if st.hold {
		e.hold(ctx, parent, st)
		return
	}
	pct := e.cfg.Steps[st.step]
	var until time.Time
	if st.keepWindow {
		st.keepWindow, until = false, st.bakeUntil
	} else if st.extensions == 0 {
		if err := e.scaleFor(ctx, st, pct); err != nil {
			if ctx.Err() != nil {
				e.interrupted(parent, st, "while the canary was scaled")
				return
			}
			e.startAbort(st, causeError, fmt.Sprintf("the canary could not be scaled to carry %s%% of requests: %v", FormatPercent(pct), err))
			return
		}
		err := e.shift(ctx, st, pct, shiftStep, func(achieved float64) string {
			return fmt.Sprintf("canary gets %s%% of requests (requested %s%%)", FormatPercent(achieved), FormatPercent(pct))
		})
		if err != nil {
			if ctx.Err() != nil {
				e.interrupted(parent, st, "while shifting traffic")
				return
			}
			e.startAbort(st, causeError, fmt.Sprintf("shifting %s%% of traffic to the canary failed: %v", FormatPercent(pct), err))
			return
		}
	}
	if until.IsZero() {
		// The bake starts once the share is in place: scaling and shifting are not part of it.
		until = time.Now().Add(e.cfg.Bake)
	}

	clock := &bakeClock{until: until, pct: pct}
	what := "baking"
	if st.extensions > 0 {
		what = fmt.Sprintf("extending the bake (%d of %d) to gather more requests", st.extensions, e.cfg.MaxExtensions)
	}
	e.send(st, Event{Kind: KindBake, CanaryPercent: pct, Until: clock.until, Message: fmt.Sprintf("%s for %s", what, e.cfg.Bake)})
	// One write records the new weights (or the extension) and when the bake ends.
	st.bakeUntil, st.paused = clock.until, false
	e.persist(context.Background(), st)
	switch e.sleep(ctx, st, clock) {
	case sleepInterrupted:
		e.interrupted(parent, st, "during the bake")
		return
	case sleepFailedEarly:
		return
	}
	until, pct = clock.until, clock.pct
	countsAtEnd := e.counts(ctx, st)
	if !sleepCtx(ctx, e.cfg.AnalysisDelay) {
		e.interrupted(parent, st, "during the bake")
		return
	}
	w := e.Schedule().FinalWindow(st.windowStart, until, pct, st.seq)
	var observed *Observed
	if c, s, ok := e.served(st, countsAtEnd); ok {
		w.Canary, w.Stable = &c, &s
		observed = &Observed{Canary: c.Requests, Stable: s.Requests}
	}
	v, err := await(e, st, e.metricsStore(fmt.Sprintf("analysis of step %d", st.step+1)), func() (verdict.Verdict, error) { return e.deps.Analyzer.Analyze(ctx, w) })
	if err != nil && ctx.Err() != nil {
		e.interrupted(parent, st, "during the analysis")
		return
	}
	e.keepSequence(st, v)
	v = verdict.FailClosed(v, err)
	st.lastVerdict, st.verdictAt = &VerdictSummary{Step: st.step + 1, Result: v.Result, Reason: v.Reason}, time.Now()
	st.verdict = &v
	st.bakeUntil, st.paused = time.Time{}, false
	e.send(st, Event{Kind: KindAnalysis, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed, Message: string(v.Result) + ": " + v.Reason})

	switch v.Result {
	case verdict.ResultPass:
		st.extensions = 0
		if st.rejudge {
			e.enter(st, PhasePromoting, "the fresh window passed: promoting the paused release")
			return
		}
		if st.step+1 < len(e.cfg.Steps) {
			st.step++
			e.enter(st, PhaseBaking, fmt.Sprintf("step %d of %d: %s%% of requests to the canary", st.step+1, len(e.cfg.Steps), FormatPercent(e.cfg.Steps[st.step])))
			return
		}
		if e.cfg.PauseBeforePromote {
			st.reason = fmt.Sprintf("every step passed; waiting at the promotion gate with %s%% of requests on the canary: `fridaymorning promote %s` promotes, `fridaymorning abort %s` aborts",
				FormatPercent(st.canaryPercent), e.cfg.Service, e.cfg.Service)
			st.gate = true
			if e.cfg.WatchAtGate {
				st.hold = true // the next bake holds at the gate
				return
			}
			st.end, st.outcome = true, OutcomePaused
			e.send(st, Event{Kind: KindPhase, Message: st.reason})
			return
		}
		if err := e.gates(ctx, st, GateConfirmPromotion, ""); err != nil {
			if ctx.Err() != nil {
				e.interrupted(parent, st, "while the confirm_promotion gate was asked")
				return
			}
			e.startAbort(st, causeAnalysis, "every step passed, but "+err.Error())
			return
		}
		e.enter(st, PhasePromoting, "every step passed")
	case verdict.ResultFail:
		e.startAbort(st, causeAnalysis, fmt.Sprintf("step %d failed: %s", st.step+1, v.Reason))
	default:
		if st.rejudge {
			e.refusePromotion(st, v)
			return
		}
		if st.extensions < e.cfg.MaxExtensions {
			st.extensions++ // the next bake persists it
			return
		}
		why := fmt.Sprintf("step %d stayed inconclusive after %d extensions: %s", st.step+1, st.extensions, v.Reason)
		if e.cfg.OnInconclusive == "pause" {
			st.extensions = 0
			st.reason = why + "; paused for a human: `fridaymorning promote`, `abort` or `resume` " + e.cfg.Service
			st.end, st.outcome = true, OutcomePaused
			e.send(st, Event{Kind: KindPhase, Phase: PhaseBaking, Message: st.reason})
			return
		}
		e.startAbort(st, causeInconclusive, why)
	}
}

// served is what the load balancer served each group since the step's window began, from its counters
// now and then. ok is false when that is unknown: no counters, or counters that went back (HAProxy
// reloaded and its new worker counts from zero), which is said once as a warning.
func (e *Engine) served(st *state, now map[string]verdict.Tally) (canary, stable verdict.Tally, ok bool) {
	if now == nil || st.countsAtStart == nil {
		return canary, stable, false
	}
	canary, stable = now[GroupCanary].Minus(st.countsAtStart[GroupCanary]), now[GroupStable].Minus(st.countsAtStart[GroupStable])
	if canary.Requests < 0 || stable.Requests < 0 || canary.Errors5xx < 0 || stable.Errors5xx < 0 || canary.Failed < 0 || stable.Failed < 0 {
		if !st.countersReset {
			st.countersReset = true
			e.send(st, Event{Kind: KindWarning, Message: "the load balancer's counters went back (HAProxy reloaded?): this step is judged on the metrics store alone"})
		}
		return verdict.Tally{}, verdict.Tally{}, false
	}
	return canary, stable, true
}

// counts reads the load balancer's counters, or nil when there is no Counter or it fails (the second
// signal is information; without it the metrics store is judged alone).
func (e *Engine) counts(ctx context.Context, st *state) map[string]verdict.Tally {
	if e.deps.Counter == nil {
		return nil
	}
	c, err := await(e, st, e.loadBalancer("reading its counters"), func() (map[string]verdict.Tally, error) { return e.deps.Counter.Counts(ctx) })
	if err != nil {
		return nil
	}
	return c
}

// sleepResult is how a bake's wait ended.
type sleepResult int

const (
	sleepDone sleepResult = iota
	sleepInterrupted
	sleepFailedEarly
)

// lookResult is what an early look found.
type lookResult int

const (
	// lookNothing: no news, the bake goes on.
	lookNothing lookResult = iota
	// lookFailed: the canary failed; the abort has begun.
	lookFailed
	// lookPassed: the canary is within every limit beyond doubt, and an early pass may end the bake.
	lookPassed
)

// bakeClock is a bake's schedule, which an operator can steer: pause stops it, continue restarts it,
// skip ends it, a nudge moves the share and starts the bake again.
type bakeClock struct {
	until  time.Time
	pct    float64
	paused bool
	// left is what remained of the bake when it was paused.
	left time.Duration
	// drifted: the bake is paused because the load balancer's weights were changed outside the release.
	drifted bool
}

// sleep waits until the bake ends, reporting progress on long bakes, taking an early look at the canary
// every EarlyInterval (a look that fails the canary starts the abort at once: sleepFailedEarly) and
// obeying bake commands. It returns sleepInterrupted if ctx ended.
func (e *Engine) sleep(ctx context.Context, st *state, clock *bakeClock) sleepResult {
	looks := e.Schedule().Looks()
	nextProgress := time.Now().Add(e.cfg.ProgressInterval)
	nextLook := time.Now().Add(e.cfg.EarlyInterval)
	nextSplit := time.Now().Add(e.cfg.SplitInterval)
	for {
		if !clock.paused && !time.Now().Before(clock.until) {
			return sleepDone
		}
		wake := nextProgress
		if !clock.paused && clock.until.Before(wake) {
			wake = clock.until
		}
		if looks > 0 && nextLook.Before(wake) {
			wake = nextLook
		}
		if e.cfg.SplitInterval > 0 && nextSplit.Before(wake) {
			wake = nextSplit
		}
		timer := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			timer.Stop()
			return sleepInterrupted
		case cmd := <-e.steer:
			timer.Stop()
			if e.steerBake(ctx, st, clock, cmd) {
				return sleepDone
			}
			if ctx.Err() != nil {
				return sleepInterrupted
			}
			continue
		case <-timer.C:
		}
		now := time.Now()
		if e.cfg.SplitInterval > 0 && !now.Before(nextSplit) {
			nextSplit = now.Add(e.cfg.SplitInterval)
			e.checkSplit(ctx, st, clock)
		}
		if looks > 0 && !now.Before(nextLook) && (clock.paused || now.Before(clock.until)) {
			nextLook = now.Add(e.cfg.EarlyInterval)
			switch e.earlyLook(ctx, st, clock.pct, now) {
			case lookFailed:
				return sleepFailedEarly
			case lookPassed:
				if !clock.paused {
					// The final look judges the window up to now, as after a skip.
					clock.until = now
					return sleepDone
				}
			}
			if ctx.Err() != nil {
				return sleepInterrupted
			}
		}
		if !now.Before(nextProgress) {
			nextProgress = now.Add(e.cfg.ProgressInterval)
			if clock.paused {
				e.send(st, Event{Kind: KindProgress, CanaryPercent: clock.pct,
					Message: fmt.Sprintf("paused by an operator with %s of the bake left; early looks go on", clock.left.Round(time.Second))})
			} else if left := time.Until(clock.until); left > 0 {
				e.send(st, Event{Kind: KindProgress, CanaryPercent: clock.pct, Until: clock.until,
					Message: fmt.Sprintf("baking, %s left", left.Round(time.Second))})
			}
		}
	}
}

// steerBake carries out a bake command. It reports whether the bake ends now (skip).
func (e *Engine) steerBake(ctx context.Context, st *state, clock *bakeClock, cmd Command) bool {
	defer func() {
		st.bakeUntil, st.paused = clock.until, clock.paused
		if clock.paused {
			st.bakeUntil = time.Now().Add(clock.left)
		}
		e.persist(context.Background(), st)
	}()
	switch cmd {
	case CommandPause:
		if !clock.paused {
			clock.paused, clock.left = true, max(time.Until(clock.until), 0)
			e.send(st, Event{Kind: KindControl, Command: cmd, CanaryPercent: clock.pct,
				Message: fmt.Sprintf("paused by an operator: the bake's clock stops with %s left; traffic stays at %s%%, early looks go on", clock.left.Round(time.Second), FormatPercent(st.canaryPercent))})
		}
	case CommandContinue:
		if clock.drifted {
			e.reclaimSplit(ctx, st, clock)
			return false
		}
		if clock.paused {
			clock.paused, clock.until = false, time.Now().Add(clock.left)
			e.send(st, Event{Kind: KindControl, Command: cmd, CanaryPercent: clock.pct, Until: clock.until,
				Message: fmt.Sprintf("continued by an operator: %s of the bake left", clock.left.Round(time.Second))})
		}
	case CommandSkip:
		clock.paused, clock.until = false, time.Now()
		e.send(st, Event{Kind: KindControl, Command: cmd, CanaryPercent: clock.pct, Message: "the rest of the bake skipped by an operator: judging the step now"})
		return true
	case CommandNudgeUp, CommandNudgeUpPastPlan, CommandNudgeDown:
		pct := clock.pct + NudgeStep
		if cmd == CommandNudgeDown {
			pct = clock.pct - NudgeStep
		}
		pct = min(max(pct, 1), 100)
		if pct == clock.pct || !e.nudgeAllowed(st, cmd, pct) {
			return false
		}
		if err := e.scaleFor(ctx, st, pct); err != nil {
			e.send(st, Event{Kind: KindWarning, CanaryPercent: clock.pct, Message: fmt.Sprintf("nudging the canary to %s%%: it could not be scaled to carry that share, it stays at %s%%: %v", FormatPercent(pct), FormatPercent(st.canaryPercent), err)})
			return false
		}
		err := e.shift(ctx, st, pct, shiftStep, func(achieved float64) string {
			return fmt.Sprintf("nudged by an operator: canary gets %s%% of requests; the step's bake starts again", FormatPercent(achieved))
		})
		if err != nil {
			e.send(st, Event{Kind: KindWarning, CanaryPercent: clock.pct, Message: fmt.Sprintf("nudging the canary to %s%% failed, it stays at %s%%: %v", FormatPercent(pct), FormatPercent(st.canaryPercent), err)})
			return false
		}
		clock.pct, clock.paused = pct, false
		clock.until = time.Now().Add(e.cfg.Bake)
		e.send(st, Event{Kind: KindBake, CanaryPercent: pct, Until: clock.until, Message: fmt.Sprintf("baking for %s", e.cfg.Bake)})
		e.persist(context.Background(), st)
	}
	return false
}

// earlyLook judges the bake so far (up to AnalysisDelay ago, so that telemetry has landed) and starts
// the abort if the canary fails beyond doubt. With EarlyPass it also says when the canary is within
// every limit beyond doubt and the step has baked MinBake (lookPassed). Anything else is no news: the
// bake goes on.
func (e *Engine) earlyLook(ctx context.Context, st *state, pct float64, now time.Time) lookResult {
	sched := e.Schedule()
	w := sched.EarlyWindow(st.windowStart, now, pct, st.seq)
	if w == nil {
		return lookNothing
	}
	v, err := await(e, st, e.metricsStore(fmt.Sprintf("early look at step %d", st.step+1)), func() (verdict.Verdict, error) { return e.deps.Analyzer.Analyze(ctx, *w) })
	if ctx.Err() != nil {
		return lookNothing
	}
	e.keepSequence(st, v)
	var observed *Observed
	if c, s, ok := e.served(st, e.counts(ctx, st)); ok {
		observed = &Observed{Canary: c.Requests, Stable: s.Requests}
	}
	to := w.To
	if v.Result != verdict.ResultFail {
		v.Early = true
		e.send(st, Event{Kind: KindLook, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed})
		if err == nil && sched.EndsEarly(v, st.windowStart, now) {
			e.send(st, Event{Kind: KindProgress, CanaryPercent: pct,
				Message: fmt.Sprintf("every check is within its limit beyond doubt after %s of the step (early pass): ending the bake", to.Sub(st.windowStart).Round(time.Second))})
			return lookPassed
		}
		return lookNothing
	}
	v = verdict.FailClosed(v, err)
	v.Early = true
	st.lastVerdict, st.verdictAt = &VerdictSummary{Step: st.step + 1, Result: v.Result, Reason: v.Reason}, time.Now()
	st.verdict = &v
	after := to.Sub(st.windowStart).Round(100 * time.Millisecond)
	e.send(st, Event{Kind: KindAnalysis, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed,
		Message: fmt.Sprintf("fail (early look after %s): %s", after, v.Reason)})
	e.startAbort(st, causeAnalysis, fmt.Sprintf("step %d failed an early look after %s: %s", st.step+1, after, v.Reason))
	return lookFailed
}

// keepSequence keeps the release's sequential analysis after a look, for the next one (and the
// release record). A look that judged each window on its own has none, and changes nothing.
func (e *Engine) keepSequence(st *state, v verdict.Verdict) {
	if v.Sequence != nil {
		st.seq = v.Sequence
	}
}
