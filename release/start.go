package release

import (
	"context"
	"errors"
	"fmt"
)

// preflight runs the checks, reads the stable service's image and takes the release lock: nothing is
// changed until all of that has succeeded, so a failure here leaves the service as it was.
func (e *Engine) preflight(ctx, parent context.Context, st *state) {
	// A release in progress is the first thing to tell: its canary would fail the checks below with a
	// less helpful message. The lock itself is taken atomically after the checks.
	if rec, err := Load(ctx, e.deps.Journal, e.cfg.Service); err == nil && rec.Active() {
		e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("%w (nothing was changed)", &LockedError{Record: *rec}))
		return
	}
	for _, p := range e.deps.Preflight {
		if err := awaitErr(e, st, p.Name+" (preflight check)", func() error { return p.Run(ctx) }); err != nil {
			if ctx.Err() != nil {
				e.finish(st, PhaseAborted, OutcomeAbortedOperator, "interrupted before anything changed", nil)
				return
			}
			e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("preflight %s: %w (nothing was changed)", p.Name, err))
			return
		}
		e.send(st, Event{Kind: KindPreflight, Message: p.Name + " ok"})
	}
	img, err := e.deps.Rollout.Image(ctx, e.cfg.Service)
	if err != nil {
		e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("preflight: %w (nothing was changed)", err))
		return
	}
	e.stableImage = img
	st.phase = PhaseStarting
	if err := e.acquire(ctx, st); err != nil {
		st.phase = PhasePreflight
		e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("%w (nothing was changed)", err))
		return
	}
	e.send(st, Event{Kind: KindPhase, Message: fmt.Sprintf("release lock taken on %s (stable runs %s); creating the canary service", e.cfg.Service, img)})
}

// start creates the canary service and waits until it is ready to take traffic. The canary's name is
// persisted as soon as it is known, so that an abort, in this process or another, removes it.
func (e *Engine) start(ctx, parent context.Context, st *state) {
	name, err := e.deps.Canaries.CreateCanary(ctx, e.cfg.Service, e.cfg.Image, e.cfg.ReleaseID)
	if name != "" && name != st.canary {
		e.mu.Lock()
		st.canary = name
		e.mu.Unlock()
		e.persist(context.Background(), st)
	}
	if err != nil {
		switch {
		case ctx.Err() != nil && st.canary != "":
			e.interrupted(parent, st, "while the canary was being created")
		case ctx.Err() != nil:
			e.takePending()
			e.finish(st, PhaseAborted, OutcomeAbortedOperator, "interrupted before anything changed", nil)
		case st.canary != "":
			e.startAbort(st, causeError, "creating the canary failed: "+err.Error())
		default:
			e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("creating the canary: %w (nothing was changed)", err))
		}
		return
	}
	e.send(st, Event{Kind: KindCanaryCreated, Message: fmt.Sprintf("canary service %s runs %s", name, e.cfg.Image)})

	readyCtx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	err = e.converge(readyCtx, st, name, keepImage, "", GroupCanary, "canary")
	switch {
	case ctx.Err() != nil:
		e.interrupted(parent, st, "while the canary was starting")
	case err != nil:
		within := ""
		if errors.Is(err, context.DeadlineExceeded) {
			within = " within " + e.cfg.ReadyTimeout.String()
		}
		e.startAbort(st, causeAnalysis, fmt.Sprintf("canary %s did not become ready%s: %v", name, within, err))
	default:
		e.send(st, Event{Kind: KindCanaryReady, Message: "canary tasks are running and pass HAProxy's health checks"})
		if err := e.gates(ctx, st, GatePreRollout, ""); err != nil {
			if ctx.Err() != nil {
				e.interrupted(parent, st, "while the pre_rollout gate was asked")
				return
			}
			e.startAbort(st, causeAnalysis, err.Error())
			return
		}
		if st.promoteWhenReady {
			e.enter(st, PhasePromoting, "promotion requested by an operator")
			return
		}
		e.enter(st, PhaseBaking, fmt.Sprintf("step %d of %d: %s%% of requests to the canary", st.step+1, len(e.cfg.Steps), FormatPercent(e.cfg.Steps[st.step])))
	}
}
