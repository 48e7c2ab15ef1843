package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// unlockLook bounds how long Unlock waits for each service to show it is healthy.
const unlockLook = 20 * time.Second

// Unlock is the way out of a release that no command can carry on (a record that halts every resume, a
// phase abort refuses): it takes the release over (unless force, only from a dead process), looks at what
// actually runs rather than at what the record says, puts all traffic on what is healthy, removes the
// canary if stable can carry the traffic, and ends the record as OutcomeUnlocked, which frees the
// service's release lock. The finished event's message, also returned, reports what ran and what was
// done.
func (e *Engine) Unlock(ctx context.Context, force bool) (Outcome, string, error) {
	rec, prevOwner, _, err := e.takeOver(ctx, force)
	if err != nil {
		return OutcomeFailed, "", err
	}
	e.cfg.ReleaseID, e.cfg.Image, e.cfg.Steps = rec.ID, rec.Image, rec.Steps
	e.stableImage, e.startedAt, e.startedBy = rec.StableImage, rec.StartedAt, rec.StartedBy
	st := &state{phase: rec.Phase, canary: rec.Canary, canaryPercent: rec.CanaryPercent, weights: rec.Weights,
		lastVerdict: rec.LastVerdict, verdict: rec.Verdict, progress: rec.Progress}
	if prevOwner == "" {
		prevOwner = "no process"
	}
	e.send(st, Event{Kind: KindStarted, Message: fmt.Sprintf("unlocking %s, taken from %s: looking at what runs", rec.Summary(), prevOwner)})

	var report []string
	say := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		report = append(report, msg)
		e.send(st, Event{Kind: KindProgress, Message: msg})
	}
	stableImg, stableErr := e.healthy(ctx, e.cfg.Service, GroupStable)
	if stableErr != nil {
		say("stable %s (%s) is not healthy: %v", e.cfg.Service, orUnknown(stableImg), stableErr)
	} else {
		say("stable %s runs %s and is healthy", e.cfg.Service, stableImg)
	}
	canaryImg, canaryErr := "", errors.New("there is none")
	if st.canary != "" {
		canaryImg, canaryErr = e.healthy(ctx, st.canary, GroupCanary)
		switch {
		case canaryImg == "" && canaryErr != nil:
			say("canary %s is gone", st.canary)
		case canaryErr != nil:
			say("canary %s (%s) is not healthy: %v", st.canary, canaryImg, canaryErr)
		default:
			say("canary %s runs %s and is healthy", st.canary, canaryImg)
		}
	}

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.PromoteTimeout)
	defer cancel()
	switch {
	case stableErr == nil:
		if err := e.retry(wctx, st, "moving all traffic to stable", func() error {
			return e.shift(wctx, st, 0, shiftOnly, plain("all requests on the stable service"))
		}); err != nil {
			say("moving all traffic to stable failed: %v; traffic stays as it was", err)
			break
		}
		say("all traffic is on stable %s (%s)", e.cfg.Service, stableImg)
		if canaryImg == "" {
			break
		}
		if err := e.removeCanary(wctx, st); err != nil {
			say("removing the canary failed: %v", err)
		} else {
			say("the canary %s is removed", st.canary)
		}
	case canaryErr == nil:
		if err := e.retry(wctx, st, "moving all traffic to the canary", func() error {
			return e.shift(wctx, st, 100, shiftOnly, plain("all requests on the canary: the stable service is not healthy"))
		}); err != nil {
			say("moving all traffic to the canary failed: %v; traffic stays as it was", err)
			break
		}
		say("all traffic is on the canary %s (%s), which stays: fix stable %s, then move traffic back (`fridaymorning release` refuses while %s exists; remove it with docker service rm %s once stable is healthy)",
			st.canary, canaryImg, e.cfg.Service, st.canary, st.canary)
	default:
		say("nothing is healthy: traffic stays as it was (canary at %s%%); fix the services, then move traffic by hand", FormatPercent(st.canaryPercent))
	}
	msg := "unlocked: " + strings.Join(report, "; ")
	e.finish(st, PhaseFailed, OutcomeUnlocked, msg, nil)
	e.persist(context.WithoutCancel(ctx), st)
	e.unlockBackend(context.WithoutCancel(ctx), st)
	e.send(st, Event{Kind: KindFinished, Outcome: OutcomeUnlocked, Message: msg})
	return OutcomeUnlocked, msg, nil
}

// healthy returns the image service runs and whether its tasks are ready and its servers pass the load
// balancer's health checks, waiting at most unlockLook. A service that does not exist has no image.
func (e *Engine) healthy(ctx context.Context, service, group string) (string, error) {
	img, err := e.deps.Rollout.Image(ctx, service)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, unlockLook)
	defer cancel()
	if err := e.deps.Rollout.WaitReady(cctx, service, func(string) {}); err != nil {
		return img, err
	}
	return img, e.deps.Router.WaitUp(cctx, group)
}

func orUnknown(s string) string {
	if s == "" {
		return "image unknown"
	}
	return s
}
