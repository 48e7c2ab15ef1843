package release

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Config is what one release does. Durations left zero take the defaults documented on each field.
type Config struct {
	// ReleaseID names the release in events and in the canary's labels.
	ReleaseID string
	// Service is the stable Swarm service; Image the image to release.
	Service, Image string
	// Steps are the canary's shares of requests, in percent, one per step, increasing, each in (0, 100].
	Steps []float64
	// Bake is how long each step runs before it is judged.
	Bake time.Duration
	// AnalysisDelay is how long to wait after a bake before querying, so that the last requests'
	// telemetry has landed (default 1s).
	AnalysisDelay time.Duration
	// MaxExtensions is how many times an inconclusive step's bake is extended before the release is
	// aborted as inconclusive (default 2; negative means none).
	MaxExtensions int
	// ReadyTimeout bounds the wait for the canary's tasks and health checks (default 2m).
	ReadyTimeout time.Duration
	// PromoteTimeout bounds the stable service's update to the new image (default 5m).
	PromoteTimeout time.Duration
	// DrainTimeout bounds the wait for a group's open sessions to end (default 30s).
	DrainTimeout time.Duration
	// ProgressInterval is how often a long bake reports progress (default 10s).
	ProgressInterval time.Duration
}

// Deps are the adapters a release works through.
type Deps struct {
	Canaries  Canaries
	Rollout   Rollout
	Router    Router
	Analyzer  Analyzer
	Preflight []Preflight
}

// Engine carries out one release. It is used once: New, then Run.
type Engine struct {
	cfg  Config
	deps Deps
	emit func(Event)
}

// New checks cfg and returns an engine that reports every event to emit. emit is called from the
// engine's goroutine and must not block for long.
func New(cfg Config, deps Deps, emit func(Event)) (*Engine, error) {
	if cfg.Service == "" {
		return nil, errors.New("release: no service given: set service in fridaymorning.yaml or --service")
	}
	if cfg.Image == "" {
		return nil, errors.New("release: no image given: pass --image IMAGE")
	}
	if err := ValidateSteps(cfg.Steps); err != nil {
		return nil, err
	}
	if cfg.Bake <= 0 {
		return nil, fmt.Errorf("release: bake interval %s: want a positive duration such as 1m", cfg.Bake)
	}
	if deps.Canaries == nil || deps.Rollout == nil || deps.Router == nil || deps.Analyzer == nil {
		return nil, errors.New("release: missing adapter: Canaries, Rollout, Router and Analyzer are all required")
	}
	setDefault(&cfg.AnalysisDelay, time.Second)
	setDefault(&cfg.ReadyTimeout, 2*time.Minute)
	setDefault(&cfg.PromoteTimeout, 5*time.Minute)
	setDefault(&cfg.DrainTimeout, 30*time.Second)
	setDefault(&cfg.ProgressInterval, 10*time.Second)
	if cfg.MaxExtensions == 0 {
		cfg.MaxExtensions = 2
	} else if cfg.MaxExtensions < 0 {
		cfg.MaxExtensions = 0
	}
	if cfg.ReleaseID == "" {
		cfg.ReleaseID = NewID(time.Now())
	}
	if emit == nil {
		emit = func(Event) {}
	}
	return &Engine{cfg: cfg, deps: deps, emit: emit}, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// ValidateSteps reports whether steps are usable canary shares: at least one, each in (0, 100],
// strictly increasing.
func ValidateSteps(steps []float64) error {
	if len(steps) == 0 {
		return errors.New("release: no steps: give the canary's traffic shares, e.g. steps: [10, 25, 50]")
	}
	for i, s := range steps {
		if math.IsNaN(s) || s <= 0 || s > 100 {
			return fmt.Errorf("release: step %d is %g%%: each step must be a share in (0, 100]", i+1, s)
		}
		if i > 0 && s <= steps[i-1] {
			return fmt.Errorf("release: step %d (%g%%) is not above step %d (%g%%): steps must increase", i+1, s, i, steps[i-1])
		}
	}
	return nil
}

// ID returns the release's ID.
func (e *Engine) ID() string { return e.cfg.ReleaseID }

// cause is why a release is being aborted.
type cause int

const (
	causeNone cause = iota
	causeAnalysis
	causeInconclusive
	causeOperator
	causeError
)

// state is the engine's position in the state machine. Each phase's handler reads it, does the
// phase's work and sets the next phase.
type state struct {
	phase  Phase
	canary string
	// step is the 0-based index of the step being baked.
	step       int
	extensions int
	// windowStart is when the current step's traffic split took effect.
	windowStart time.Time
	cause       cause
	reason      string
	outcome     Outcome
	err         error
}

// Run carries out the release until it is promoted, aborted or failed, and returns how it ended. The
// error is non-nil exactly when the outcome is OutcomeFailed, and says what state was left behind.
//
// Cancelling ctx is an operator's abort: before promotion, traffic goes back to stable and the canary
// is removed (with a context of its own, so the clean-up is not cut short); once promotion has begun it
// is finished, since the stable service is already moving to the new image.
func (e *Engine) Run(ctx context.Context) (Outcome, error) {
	st := &state{phase: PhasePreflight}
	e.send(st, Event{Kind: KindStarted, Message: fmt.Sprintf("releasing %s to service %s in %d steps (%s), %s bake each",
		e.cfg.Image, e.cfg.Service, len(e.cfg.Steps), formatSteps(e.cfg.Steps), e.cfg.Bake)})
	for !st.phase.Done() {
		switch st.phase {
		case PhasePreflight:
			e.preflight(ctx, st)
		case PhaseStarting:
			e.start(ctx, st)
		case PhaseBaking:
			e.bake(ctx, st)
		case PhasePromoting:
			e.promote(ctx, st)
		case PhaseAborting:
			e.abort(st)
		default:
			panic("release: unknown phase " + string(st.phase))
		}
	}
	msg := st.reason
	if st.err != nil {
		msg = st.err.Error()
	}
	e.send(st, Event{Kind: KindFinished, Outcome: st.outcome, Message: msg})
	return st.outcome, st.err
}

// send stamps ev with the release's identity and current position and hands it to the front end.
func (e *Engine) send(st *state, ev Event) {
	ev.Time = time.Now()
	ev.Phase = st.phase
	ev.ReleaseID = e.cfg.ReleaseID
	ev.Service = e.cfg.Service
	ev.Canary = st.canary
	ev.Steps = len(e.cfg.Steps)
	if st.phase == PhaseBaking {
		ev.Step = st.step + 1
	}
	e.emit(ev)
}

// enter moves to phase and says why.
func (e *Engine) enter(st *state, phase Phase, why string) {
	st.phase = phase
	e.send(st, Event{Kind: KindPhase, Message: why})
}

// fail ends the release as failed with err, which must say what was left behind.
func (e *Engine) fail(st *state, err error) {
	st.outcome = OutcomeFailed
	st.err = err
	st.phase = PhaseFailed
}

// startAbort moves to the aborting phase for the given cause.
func (e *Engine) startAbort(st *state, c cause, why string) {
	st.cause = c
	st.reason = why
	e.enter(st, PhaseAborting, why)
}

func (e *Engine) preflight(ctx context.Context, st *state) {
	for _, p := range e.deps.Preflight {
		if err := p.Run(ctx); err != nil {
			if ctx.Err() != nil {
				st.outcome, st.reason, st.phase = OutcomeAbortedOperator, "interrupted before anything changed", PhaseAborted
				return
			}
			e.fail(st, fmt.Errorf("preflight %s: %w (nothing was changed)", p.Name, err))
			return
		}
		e.send(st, Event{Kind: KindPreflight, Message: p.Name + " ok"})
	}
	e.enter(st, PhaseStarting, "creating the canary service")
}

func (e *Engine) start(ctx context.Context, st *state) {
	name, err := e.deps.Canaries.CreateCanary(ctx, e.cfg.Service, e.cfg.Image, e.cfg.ReleaseID)
	if name != "" {
		st.canary = name
	}
	if err != nil {
		if st.canary != "" {
			e.startAbort(st, causeError, "creating the canary failed: "+err.Error())
			return
		}
		if ctx.Err() != nil {
			st.outcome, st.reason, st.phase = OutcomeAbortedOperator, "interrupted before anything changed", PhaseAborted
			return
		}
		e.fail(st, fmt.Errorf("creating the canary: %w (nothing was changed)", err))
		return
	}
	e.send(st, Event{Kind: KindCanaryCreated, Message: fmt.Sprintf("canary service %s runs %s", name, e.cfg.Image)})

	readyCtx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	err = e.deps.Rollout.WaitReady(readyCtx, name, func(msg string) {
		e.send(st, Event{Kind: KindProgress, Message: "canary " + msg})
	})
	if err == nil {
		err = e.deps.Router.WaitUp(readyCtx, GroupCanary)
	}
	switch {
	case ctx.Err() != nil:
		e.startAbort(st, causeOperator, "interrupted while the canary was starting")
	case err != nil:
		e.startAbort(st, causeAnalysis, fmt.Sprintf("canary %s did not become ready within %s: %v", name, e.cfg.ReadyTimeout, err))
	default:
		e.send(st, Event{Kind: KindCanaryReady, Message: "canary tasks are running and pass HAProxy's health checks"})
		st.step = 0
		e.enter(st, PhaseBaking, fmt.Sprintf("step 1 of %d: %s%% of requests to the canary", len(e.cfg.Steps), fmtPct(e.cfg.Steps[0])))
	}
}

func (e *Engine) bake(ctx context.Context, st *state) {
	if ctx.Err() != nil {
		e.startAbort(st, causeOperator, "interrupted")
		return
	}
	pct := e.cfg.Steps[st.step]
	if st.extensions == 0 {
		weights, achieved, err := e.deps.Router.Shift(ctx, pct)
		if err != nil {
			if ctx.Err() != nil {
				e.startAbort(st, causeOperator, "interrupted while shifting traffic")
				return
			}
			e.startAbort(st, causeError, fmt.Sprintf("shifting %s%% of traffic to the canary failed: %v", fmtPct(pct), err))
			return
		}
		st.windowStart = time.Now()
		e.send(st, Event{Kind: KindTraffic, CanaryPercent: pct, AchievedPercent: achieved, Weights: weights,
			Message: fmt.Sprintf("canary gets %s%% of requests (requested %s%%)", fmtPct(achieved), fmtPct(pct))})
	}

	until := time.Now().Add(e.cfg.Bake)
	what := "baking"
	if st.extensions > 0 {
		what = fmt.Sprintf("extending the bake (%d of %d) to gather more requests", st.extensions, e.cfg.MaxExtensions)
	}
	e.send(st, Event{Kind: KindBake, CanaryPercent: pct, Until: until, Message: fmt.Sprintf("%s for %s", what, e.cfg.Bake)})
	if !e.sleep(ctx, st, until, pct) {
		e.startAbort(st, causeOperator, "interrupted during the bake")
		return
	}
	if !sleepCtx(ctx, e.cfg.AnalysisDelay) {
		e.startAbort(st, causeOperator, "interrupted before the analysis")
		return
	}
	v, err := e.deps.Analyzer.Analyze(ctx, st.windowStart, until, pct)
	if err != nil && ctx.Err() != nil {
		e.startAbort(st, causeOperator, "interrupted during the analysis")
		return
	}
	if err != nil && v.Result == ResultPass {
		// Fail closed, whatever the analyzer says: a judgement that errored is no pass.
		v.Result = ResultInconclusive
	}
	if v.Result == "" {
		v.Result = ResultInconclusive
	}
	if err != nil && v.Reason == "" {
		v.Reason = err.Error()
	}
	e.send(st, Event{Kind: KindAnalysis, CanaryPercent: pct, Verdict: &v, Message: string(v.Result) + ": " + v.Reason})

	switch v.Result {
	case ResultPass:
		st.extensions = 0
		if st.step+1 < len(e.cfg.Steps) {
			st.step++
			e.enter(st, PhaseBaking, fmt.Sprintf("step %d of %d: %s%% of requests to the canary", st.step+1, len(e.cfg.Steps), fmtPct(e.cfg.Steps[st.step])))
			return
		}
		e.enter(st, PhasePromoting, "every step passed")
	case ResultFail:
		e.startAbort(st, causeAnalysis, fmt.Sprintf("step %d failed: %s", st.step+1, v.Reason))
	default:
		if st.extensions < e.cfg.MaxExtensions {
			st.extensions++
			return
		}
		e.startAbort(st, causeInconclusive, fmt.Sprintf("step %d stayed inconclusive after %d extensions: %s", st.step+1, st.extensions, v.Reason))
	}
}

// sleep waits until the bake ends, reporting progress on long bakes. It returns false if ctx ended.
func (e *Engine) sleep(ctx context.Context, st *state, until time.Time, pct float64) bool {
	for {
		left := time.Until(until)
		if left <= 0 {
			return true
		}
		wait := min(left, e.cfg.ProgressInterval)
		if !sleepCtx(ctx, wait) {
			return false
		}
		if left = time.Until(until); left > 0 {
			e.send(st, Event{Kind: KindProgress, CanaryPercent: pct, Until: until,
				Message: fmt.Sprintf("baking, %s left", left.Round(time.Second))})
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// promote runs Flagger's order: all traffic on the canary; stable takes the new image and converges;
// all traffic back on stable; the canary is drained and removed. Once begun it is not interrupted by
// ctx: the stable service is already moving to the new image, so finishing is the safe way out.
func (e *Engine) promote(ctx context.Context, st *state) {
	if ctx.Err() != nil {
		e.startAbort(st, causeOperator, "interrupted before promotion")
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.PromoteTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		e.send(st, Event{Kind: KindWarning, Message: "interrupt received during promotion: finishing it, since the stable service is already moving to the new image"})
	})
	defer stop()

	weights, achieved, err := e.deps.Router.Shift(pctx, 100)
	if err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: moving all traffic to the canary failed: %v", err))
		return
	}
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 100, AchievedPercent: achieved, Weights: weights,
		Message: "all requests to the canary while the stable service is updated"})

	if err := e.deps.Rollout.UpdateImage(pctx, e.cfg.Service, e.cfg.Image); err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: updating %s to %s failed: %v", e.cfg.Service, e.cfg.Image, err))
		return
	}
	err = e.deps.Rollout.WaitReady(pctx, e.cfg.Service, func(msg string) {
		e.send(st, Event{Kind: KindProgress, Message: "stable " + msg})
	})
	if err == nil {
		err = e.deps.Router.WaitUp(pctx, GroupStable)
	}
	if err != nil {
		// Never move traffic onto servers that are not healthy: it stays on the canary, which runs the
		// same image and passed every step.
		e.fail(st, fmt.Errorf("promotion: stable service %s did not become ready on %s: %w; all traffic stays on the healthy canary %s: fix the stable service, then move traffic back",
			e.cfg.Service, e.cfg.Image, err, st.canary))
		return
	}

	weights, achieved, err = e.deps.Router.Shift(pctx, 0)
	if err != nil {
		e.fail(st, fmt.Errorf("promotion: stable %s runs %s, but moving traffic back to it failed: %w; the canary %s still serves it", e.cfg.Service, e.cfg.Image, err, st.canary))
		return
	}
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 0, AchievedPercent: achieved, Weights: weights,
		Message: "all requests back on the stable service, now running " + e.cfg.Image})
	if err := e.removeCanary(pctx, st); err != nil {
		e.fail(st, fmt.Errorf("promotion done, but removing the canary failed: %w", err))
		return
	}
	st.outcome = OutcomePromoted
	st.reason = fmt.Sprintf("%s runs %s", e.cfg.Service, e.cfg.Image)
	st.phase = PhasePromoted
}

// abort puts all traffic back on stable at once, then drains and removes the canary. It runs on a
// context of its own: an interrupt must not cut the way back short.
func (e *Engine) abort(st *state) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()

	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		var weights map[string]int
		var achieved float64
		weights, achieved, err = e.deps.Router.Shift(ctx, 0)
		if err == nil {
			e.send(st, Event{Kind: KindTraffic, CanaryPercent: 0, AchievedPercent: achieved, Weights: weights,
				Message: "all requests back on the stable service"})
			break
		}
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("moving traffic back to stable, attempt %d: %v", attempt, err)})
		if !sleepCtx(ctx, time.Duration(attempt)*500*time.Millisecond) {
			break
		}
	}
	if err != nil {
		e.fail(st, fmt.Errorf("aborting (%s): traffic could not be moved back to stable: %w; the canary %s was left running so it keeps serving its share: set its servers' weight to 0, then remove it",
			st.reason, err, st.canary))
		return
	}
	if err := e.removeCanary(ctx, st); err != nil {
		e.fail(st, fmt.Errorf("aborted (%s) and traffic is back on stable, but removing the canary failed: %w", st.reason, err))
		return
	}
	switch st.cause {
	case causeAnalysis:
		st.outcome = OutcomeAbortedAnalysis
	case causeInconclusive:
		st.outcome = OutcomeAbortedInconclusive
	case causeOperator:
		st.outcome = OutcomeAbortedOperator
	default:
		st.outcome = OutcomeFailed
		st.err = errors.New(st.reason + "; aborted: traffic is back on stable and the canary is removed")
	}
	st.phase = PhaseAborted
	if st.outcome == OutcomeFailed {
		st.phase = PhaseFailed
	}
}

// removeCanary drains the canary servers (a slow drain is only a warning) and removes the service.
func (e *Engine) removeCanary(ctx context.Context, st *state) error {
	if st.canary == "" {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
	err := e.deps.Router.Drain(dctx, GroupCanary)
	cancel()
	if err != nil {
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("draining the canary: %v; removing it anyway", err)})
	}
	if err := e.deps.Canaries.RemoveService(ctx, st.canary); err != nil {
		return fmt.Errorf("canary service %s: %w: remove it with docker service rm %s", st.canary, err, st.canary)
	}
	e.send(st, Event{Kind: KindProgress, Message: "canary service " + st.canary + " removed"})
	return nil
}

// FormatWeights renders weights as "name:w,name:w" in name order.
func FormatWeights(w map[string]int) string {
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", n, w[n])
	}
	return b.String()
}

func formatSteps(steps []float64) string {
	s := make([]string, len(steps))
	for i, p := range steps {
		s[i] = fmtPct(p) + "%"
	}
	return strings.Join(s, ", ")
}

// fmtPct renders a share without trailing zeros: 10, 12.5, 33.33.
func fmtPct(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", p), "0"), ".")
}
