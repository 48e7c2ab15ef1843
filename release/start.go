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
		err := awaitErr(e, st, p.Name+" (preflight check)", func() error { return p.Run(ctx) })
		var changes []Change
		if err == nil && p.Review != nil {
			changes, err = await(e, st, p.Name+" (preflight review)", func() ([]Change, error) { return p.Review(ctx) })
		}
		if n := Notice(""); errors.As(err, &n) {
			e.send(st, Event{Kind: KindWarning, Message: "preflight " + p.Name + ": " + n.Error()})
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				e.finish(st, PhaseAborted, OutcomeAbortedOperator, "interrupted before anything changed", nil)
				return
			}
			e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("preflight %s: %w (nothing was changed)", p.Name, err))
			return
		}
		msg := p.Name + " ok"
		if p.Review != nil {
			msg = fmt.Sprintf("%s ok: %d change(s) to %s", p.Name, len(changes), e.cfg.Service)
		}
		e.send(st, Event{Kind: KindPreflight, Changes: changes, Message: msg})
	}
	img, err := e.deps.Rollout.Image(ctx, e.cfg.Service)
	if err == nil {
		e.stableTarget, err = e.deps.Rollout.Current(ctx, e.cfg.Service)
	}
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
	e.stackWarning(ctx, st)
}

// start creates the canary service and waits until it is ready to take traffic. The canary's name is
// persisted as soon as it is known, so that an abort, in this process or another, removes it. Before
// the service exists, its servers are set to weight 0 (and read back): whatever the load balancer's
// configuration says, the canary gets no request before the first step. The creation itself is never
// cut short: a request to Swarm cancelled half-way may still create the service, which nobody would
// then know of; a command or interrupt is acted on once it returns.
func (e *Engine) start(ctx, parent context.Context, st *state) {
	if !e.zeroCanary(ctx, parent, st) {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ReadyTimeout)
	name, err := e.deps.Canaries.CreateCanary(cctx, e.cfg.Service, e.target(), e.cfg.ReleaseID)
	cancel()
	if name != "" && name != st.canary {
		e.mu.Lock()
		st.canary = name
		e.mu.Unlock()
		e.persist(context.Background(), st)
	}
	if err != nil {
		switch {
		case st.canary != "":
			e.startAbort(st, causeError, "creating the canary failed: "+err.Error())
		case ctx.Err() != nil:
			e.takePending()
			e.finish(st, PhaseAborted, OutcomeAbortedOperator, "interrupted before anything changed", nil)
		default:
			e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("creating the canary: %w (nothing was changed)", err))
		}
		return
	}
	if ctx.Err() != nil {
		e.interrupted(parent, st, "while the canary was being created")
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

// zeroCanary sets the canary servers to weight 0 before the canary service is created, so that a
// server configured with a weight (weight 100 in haproxy.cfg, say) does not take requests as soon as
// its task passes the health check. It reports whether the start may go on; a failure ends the run:
// nothing was created yet.
func (e *Engine) zeroCanary(ctx, parent context.Context, st *state) bool {
	type split struct {
		weights  map[string]int
		achieved float64
	}
	got, err := await(e, st, e.loadBalancer("setting the canary servers to weight 0"), func() (split, error) {
		w, a, err := e.deps.Router.Shift(ctx, 0)
		return split{w, a}, err
	})
	weights, achieved := got.weights, got.achieved
	switch {
	case err != nil && ctx.Err() != nil && st.canary != "":
		e.interrupted(parent, st, "while the canary servers were set to weight 0")
		return false
	case err != nil && ctx.Err() != nil:
		e.takePending()
		e.finish(st, PhaseAborted, OutcomeAbortedOperator, "interrupted before the canary was created", nil)
		return false
	case err != nil && st.canary != "":
		e.startAbort(st, causeError, "setting the canary servers to weight 0 failed: "+err.Error())
		return false
	case err != nil:
		e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("setting the canary servers to weight 0 before creating the canary: %w (no canary was created; stable keeps its traffic)", err))
		return false
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindProgress, Weights: weights, Message: "canary servers at weight 0 until the first step (" + FormatWeights(weights) + ")"})
	return true
}
