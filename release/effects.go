package release

import (
	"context"
	"fmt"
	"time"
)

// This file holds the moves the phases are built of: converge a service, shift traffic, remove the
// canary. Each phase adds its own error text: what a failure means differs from phase to phase.

// update says how converge brings a service to its target (an image, or a spec: see Rollout).
type update int

const (
	// keepImage: the service runs the right target already (a new canary, or one just scaled).
	keepImage update = iota
	// setImage starts a rolling update to the target.
	setImage
	// setImageUnlessRunning updates only a service that runs another target, so that a phase taken over
	// from a dead process does not start a second rolling update of a service that already converged.
	setImageUnlessRunning
)

// converge brings service to target as how says, then waits until its tasks run and are healthy
// (reporting progress as KindProgress events that start with label) and every server of group passes
// the load balancer's health checks: only then may the group be given traffic. The error is the
// adapter's, unwrapped.
func (e *Engine) converge(ctx context.Context, st *state, service string, how update, target, group, label string) error {
	if how == setImageUnlessRunning {
		running, err := e.deps.Rollout.Current(ctx, service)
		if err != nil {
			return err
		}
		if running == target {
			how = keepImage
		}
	}
	if how != keepImage {
		if err := e.deps.Rollout.Update(ctx, service, target); err != nil {
			return err
		}
	}
	err := e.deps.Rollout.WaitReady(ctx, service, func(msg string) {
		e.send(st, Event{Kind: KindProgress, Message: label + " " + msg})
	})
	if err != nil {
		return err
	}
	var why func() string
	if w, ok := e.deps.Router.(UpExplainer); ok {
		why = func() string { return w.WaitingOn(group) }
	}
	_, err = awaitWhy(e, st, e.loadBalancer("health checks of the "+group+" servers"), why, func() (struct{}, error) {
		return struct{}{}, e.deps.Router.WaitUp(ctx, group)
	})
	return err
}

// shiftMode says what a shift does besides moving traffic.
type shiftMode int

const (
	// shiftAndPersist writes the new weights to the journal at once, so that a process taking the
	// release over knows where traffic stands.
	shiftAndPersist shiftMode = iota
	// shiftStep starts the step's window at the new share (its start time and the load balancer's
	// counters then); the caller persists it together with the bake's end, in one write.
	shiftStep
	// shiftOnly leaves the journal alone: the run ends next, and its end writes the record.
	shiftOnly
)

// trafficMessage says, given the canary share the load balancer achieved, why traffic moved.
type trafficMessage func(achieved float64) string

// plain is a trafficMessage that does not depend on the share achieved.
func plain(msg string) trafficMessage { return func(float64) string { return msg } }

// shift sends pct of new requests to the canary, keeps the weights read back in st and reports them in
// a KindTraffic event. A failed shift leaves st as it was and sends nothing: the error is the Router's,
// unwrapped, and the caller decides what it means.
func (e *Engine) shift(ctx context.Context, st *state, pct float64, mode shiftMode, message trafficMessage) error {
	type split struct {
		weights  map[string]int
		achieved float64
	}
	got, err := await(e, st, e.loadBalancer("setting the canary's share to "+FormatPercent(pct)+"%"), func() (split, error) {
		w, a, err := e.deps.Router.Shift(ctx, pct)
		return split{w, a}, err
	})
	if err != nil {
		return err
	}
	weights, achieved := got.weights, got.achieved
	if mode == shiftStep {
		st.windowStart, st.countsAtStart, st.countersReset = time.Now(), e.counts(ctx, st), false
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: pct, AchievedPercent: achieved, Weights: weights, Message: message(achieved)})
	if mode == shiftAndPersist {
		e.persist(ctx, st)
	}
	return nil
}

// removeCanary drains the canary servers (a slow drain is only a warning) and removes the service.
func (e *Engine) removeCanary(ctx context.Context, st *state) error {
	if st.canary == "" {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
	err := awaitErr(e, st, e.loadBalancer("draining the canary's sessions"), func() error { return e.deps.Router.Drain(dctx, GroupCanary) })
	cancel()
	if err != nil {
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("draining the canary: %v; removing it anyway", err)})
	} else {
		e.send(st, Event{Kind: KindProgress, Message: "the canary's servers are drained"})
	}
	if err := e.deps.Canaries.RemoveService(ctx, st.canary); err != nil {
		return fmt.Errorf("canary service %s: %w: remove it with docker service rm %s", st.canary, err, st.canary)
	}
	e.send(st, Event{Kind: KindProgress, Message: "canary service " + st.canary + " removed"})
	return nil
}

// restorePolicy puts back the stable service's own update policy after a promotion or rollback changed
// it for the update (see PolicyRestorer); a failure is a warning: the release itself is done.
func (e *Engine) restorePolicy(ctx context.Context, st *state) {
	r, ok := e.deps.Rollout.(PolicyRestorer)
	if !ok {
		return
	}
	if err := r.RestoreUpdatePolicy(ctx, e.cfg.Service); err != nil {
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("putting back the update policy of %s: %v; see docker service inspect %s", e.cfg.Service, err, e.cfg.Service)})
	}
}

// stackWarning warns about the stack that deployed the stable service, if any: before the release, that
// a `docker stack deploy` of it replaces the release record (and the release then aborts); after a
// promotion, that its stack file still names the old image, which its next deploy would put back.
func (e *Engine) stackWarning(ctx context.Context, st *state) {
	s, ok := e.deps.Rollout.(Stacks)
	if !ok {
		return
	}
	stack, err := s.Stack(ctx, e.cfg.Service)
	if err != nil || stack == "" {
		return
	}
	msg := fmt.Sprintf("%s belongs to stack %s: a `docker stack deploy` of %s during the release replaces the release record, and the release then aborts; once promoted, update %s's image to %s in the stack file, or its next deploy puts %s back",
		e.cfg.Service, stack, stack, e.cfg.Service, e.cfg.Image, e.stableImage)
	if st.phase == PhasePromoted {
		msg = fmt.Sprintf("%s belongs to stack %s: update its image to %s in the stack file, or the next `docker stack deploy` of %s puts %s back",
			e.cfg.Service, stack, e.cfg.Image, stack, e.stableImage)
	}
	e.send(st, Event{Kind: KindWarning, Message: msg})
}
