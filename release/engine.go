package release

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Config is what one release does. Durations left zero take the defaults documented on each field.
type Config struct {
	// ReleaseID names the release in events, in the canary's labels and in the release record.
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
	// MaxExtensions is how many times an inconclusive step's bake is extended before OnInconclusive
	// applies (default 2; negative means none).
	MaxExtensions int
	// OnInconclusive is what happens when a step stays inconclusive after MaxExtensions: "abort"
	// (the default: traffic back to stable, canary removed) or "pause" (the release stays where it
	// stands and waits for `fridaymorning promote`, `abort` or `resume`).
	OnInconclusive string
	// PauseBeforePromote stops at the promotion gate: once every step passed, the release ends this
	// process's run as OutcomePaused, the canary keeping its last share, until `fridaymorning promote`
	// or `abort` (a later CI job, say) finishes it.
	PauseBeforePromote bool
	// EarlyInterval is how often a bake takes an early look at the canary, to abort a clearly failing
	// one without waiting for the bake to end (default 2s; negative turns early looks off).
	EarlyInterval time.Duration
	// ReadyTimeout bounds the wait for the canary's tasks and health checks (default 2m).
	ReadyTimeout time.Duration
	// PromoteTimeout bounds the stable service's update to the new image (default 5m).
	PromoteTimeout time.Duration
	// DrainTimeout bounds the wait for a group's open sessions to end (default 30s).
	DrainTimeout time.Duration
	// ProgressInterval is how often a long bake reports progress (default 10s).
	ProgressInterval time.Duration
	// StartedBy says who started the release, for the record ("alice@laptop", "CI job 1234").
	StartedBy string
	// Owner identifies this process in the release record (default: host, pid and a random part).
	Owner string
	// BeatInterval is how often the driving process stamps its heartbeat on the canary (default 5s).
	BeatInterval time.Duration
	// PollInterval is how often the driving process looks for requests from other processes (default 1s).
	PollInterval time.Duration
	// StaleAfter is how long without a heartbeat makes a release's process count as dead (default 30s).
	StaleAfter time.Duration
	// Standby, if positive, keeps the previous version running at weight 0 for that long after a
	// promotion, so that `fridaymorning rollback` can send traffic back to it at once.
	Standby time.Duration
	// MetricsStore and LoadBalancer name the far ends of the Analyzer and the Router in progress
	// events ("InfluxDB at http://…"); the defaults are "the metrics store" and "the load balancer".
	MetricsStore, LoadBalancer string
	// WaitNotice is how often a call to an adapter that has not returned is said in a progress event,
	// so that the output never goes silent (default 5s).
	WaitNotice time.Duration
}

// Deps are the adapters a release works through.
type Deps struct {
	Canaries Canaries
	Rollout  Rollout
	Router   Router
	Analyzer Analyzer
	Journal  Journal
	Pulse    Pulse
	// Counter, if set, gives each step's observed split from the load balancer's counters.
	Counter Counter
	// Gates are the outside checks the release waits on (pre_rollout, confirm_promotion, post_rollout).
	Gates     []GateConfig
	Preflight []Preflight
}

// Engine carries out one release: New, then Run for a new release or Resume for one that another
// process started. An Engine is used once.
type Engine struct {
	cfg  Config
	deps Deps
	emit func(Event)

	mu sync.Mutex
	// pending is a command not yet acted on; cancelPhase interrupts the phase at work so it is.
	pending     Command
	cancelPhase context.CancelFunc
	// steer carries bake commands (pause, continue, skip, nudges) to the bake at work.
	steer chan Command
	// stableImage is the stable service's image when the release began (from the record on resume).
	stableImage string
	startedAt   time.Time
	startedBy   string
}

// New checks cfg and returns an engine that reports every event to emit. emit is called from the
// engine's goroutine and must not block for long.
func New(cfg Config, deps Deps, emit func(Event)) (*Engine, error) {
	if cfg.Service == "" {
		return nil, errors.New("release: no service given: set service in fridaymorning.yaml or --service")
	}
	if err := ValidateSteps(cfg.Steps); err != nil {
		return nil, err
	}
	if cfg.Bake <= 0 {
		return nil, fmt.Errorf("release: bake interval %s: want a positive duration such as 1m", cfg.Bake)
	}
	if deps.Canaries == nil || deps.Rollout == nil || deps.Router == nil || deps.Analyzer == nil || deps.Journal == nil || deps.Pulse == nil {
		return nil, errors.New("release: missing adapter: Canaries, Rollout, Router, Analyzer, Journal and Pulse are all required")
	}
	setDefault(&cfg.AnalysisDelay, time.Second)
	setDefault(&cfg.ReadyTimeout, 2*time.Minute)
	setDefault(&cfg.PromoteTimeout, 5*time.Minute)
	setDefault(&cfg.DrainTimeout, 30*time.Second)
	setDefault(&cfg.ProgressInterval, 10*time.Second)
	setDefault(&cfg.BeatInterval, 5*time.Second)
	setDefault(&cfg.PollInterval, time.Second)
	setDefault(&cfg.StaleAfter, 30*time.Second)
	switch cfg.OnInconclusive {
	case "":
		cfg.OnInconclusive = "abort"
	case "abort", "pause":
	default:
		return nil, fmt.Errorf("release: on_inconclusive %q: want abort or pause", cfg.OnInconclusive)
	}
	setDefault(&cfg.EarlyInterval, 2*time.Second)
	if cfg.MaxExtensions == 0 {
		cfg.MaxExtensions = 2
	} else if cfg.MaxExtensions < 0 {
		cfg.MaxExtensions = 0
	}
	if cfg.ReleaseID == "" {
		cfg.ReleaseID = NewID(time.Now())
	}
	if cfg.Owner == "" {
		cfg.Owner = newOwner()
	}
	if cfg.StartedBy == "" {
		cfg.StartedBy = "unknown"
	}
	if emit == nil {
		emit = func(Event) {}
	}
	return &Engine{cfg: cfg, deps: deps, emit: emit, steer: make(chan Command, 8)}, nil
}

// setDefault gives a duration left zero (or negative) its default.
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

// Request asks the running release to carry out cmd as soon as it can: an abort at once, a promotion
// once the canary is ready, a rollback while the warm standby runs. It does not block. An abort
// replaces a pending command, not the reverse.
func (e *Engine) Request(cmd Command) {
	if bakeCommand(cmd) {
		select {
		case e.steer <- cmd:
		default: // a burst of key presses: the bake acts on the ones queued
		}
		return
	}
	e.mu.Lock()
	if e.pending == "" || cmd == CommandAbort {
		e.pending = cmd
	}
	cancel := e.cancelPhase
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// takePending returns the pending command and clears it: each command is acted on once.
func (e *Engine) takePending() Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.pending
	e.pending = ""
	return c
}

// state is the engine's position in the state machine. Each phase's handler reads it, does the
// phase's work and sets the next phase, or ends the run.
type state struct {
	phase  Phase
	canary string
	// step is the 0-based index of the step being baked.
	step       int
	extensions int
	// windowStart is when the current step's traffic split took effect; countsAtStart the load
	// balancer's counters then (nil if unknown).
	windowStart   time.Time
	countsAtStart map[string]verdict.Tally
	// countersReset: the counters went back during this step's window (said once).
	countersReset bool
	// promoteWhenReady: a promotion was asked for while the canary was starting.
	promoteWhenReady bool
	// standbyUntil is when the warm standby goes; endStandby: an operator ended it early.
	standbyUntil  time.Time
	endStandby    bool
	canaryPercent float64
	weights       map[string]int
	lastVerdict   *VerdictSummary
	verdict       *verdict.Verdict
	bakeUntil     time.Time
	paused        bool
	cause         cause
	reason        string
	outcome       Outcome
	err           error
	// end stops the run; phase may still be an active one when the process gives up on a release
	// that needs an operator (the record then says where it stands).
	end bool
}

// Run carries out a new release until it is promoted, aborted or failed, and returns how it ended. The
// error is non-nil exactly when the outcome is OutcomeFailed, and says what state was left behind.
//
// Cancelling ctx is an operator's abort: before promotion, traffic goes back to stable and the canary
// is removed (with a context of its own, so the clean-up is not cut short); once promotion has begun it
// is finished, since the stable service is already moving to the new image.
func (e *Engine) Run(ctx context.Context) (Outcome, error) {
	if e.cfg.Image == "" {
		return OutcomeFailed, errors.New("release: no image given: pass --image IMAGE")
	}
	st := &state{phase: PhasePreflight}
	e.send(st, Event{Kind: KindStarted, Message: fmt.Sprintf("releasing %s to service %s in %d steps (%s), %s bake each",
		e.cfg.Image, e.cfg.Service, len(e.cfg.Steps), FormatSteps(e.cfg.Steps), e.cfg.Bake)})
	return e.loop(ctx, st)
}

// ResumeMode says what Resume does with a release another process started.
type ResumeMode string

// The ways to take over a release.
const (
	// ResumeContinue carries on where the release stood.
	ResumeContinue ResumeMode = "resume"
	// ResumeAbort aborts it.
	ResumeAbort ResumeMode = "abort"
	// ResumePromote promotes it without the remaining steps.
	ResumePromote ResumeMode = "promote"
	// ResumeRollback rolls a promoted release back to its warm standby.
	ResumeRollback ResumeMode = "rollback"
)

// Resume takes over service's release in progress, whose process died (or, with force, any), and
// carries it on, aborts it or promotes it. The engine's Config supplies thresholds and timings; the
// release's identity, image, steps and position come from the record.
func (e *Engine) Resume(ctx context.Context, mode ResumeMode, force bool) (Outcome, error) {
	rec, prevOwner, err := e.takeOver(ctx, force)
	if err != nil {
		return OutcomeFailed, err
	}
	e.cfg.ReleaseID, e.cfg.Image, e.cfg.Steps = rec.ID, rec.Image, rec.Steps
	e.stableImage, e.startedAt, e.startedBy = rec.StableImage, rec.StartedAt, rec.StartedBy
	st := &state{phase: rec.Phase, canary: rec.Canary, step: max(rec.Step-1, 0), canaryPercent: rec.CanaryPercent,
		weights: rec.Weights, lastVerdict: rec.LastVerdict, cause: cause(rec.Cause), reason: rec.Message}
	if st.phase == PhasePreflight {
		st.phase = PhaseStarting
	}
	if st.step >= len(e.cfg.Steps) {
		st.step = len(e.cfg.Steps) - 1
	}
	e.send(st, Event{Kind: KindStarted, Message: fmt.Sprintf("taking over %s from %s (%s)", rec.Summary(), prevOwner, mode)})
	if rec.StandbyUntil != nil {
		st.standbyUntil = *rec.StandbyUntil
	}
	switch mode {
	case ResumeAbort:
		switch st.phase {
		case PhaseStandby:
			st.endStandby = true
		case PhaseRollingBack:
			return OutcomeFailed, fmt.Errorf("release: %s is rolling back: run fridaymorning resume %s to finish it", rec.ID, e.cfg.Service)
		case PhaseAborting:
		default:
			e.startAbort(st, causeOperator, "aborted by an operator after taking the release over")
		}
	case ResumeRollback:
		switch st.phase {
		case PhaseStandby:
			if time.Now().After(st.standbyUntil) {
				st.endStandby = true
				e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("the standby of %s expired at %s: removing it; to go back, release %s again", rec.StableImage, st.standbyUntil.UTC().Format(time.RFC3339), rec.StableImage)})
				break
			}
			e.enter(st, PhaseRollingBack, "rollback requested by an operator")
		case PhaseRollingBack:
		default:
			return OutcomeFailed, fmt.Errorf("release: %s is in phase %s: only a promoted release with a warm standby can be rolled back", rec.ID, rec.Phase)
		}
	case ResumePromote:
		switch st.phase {
		case PhaseBaking:
			e.enter(st, PhasePromoting, "promoted by an operator after taking the release over")
		case PhaseStarting:
			st.promoteWhenReady = true
		case PhaseAborting:
			return OutcomeFailed, fmt.Errorf("release: %s is aborting (%s): it can only be aborted; run fridaymorning abort %s", rec.ID, rec.Message, e.cfg.Service)
		case PhaseStandby, PhaseRollingBack:
			return OutcomeFailed, fmt.Errorf("release: %s is promoted already (phase %s)", rec.ID, rec.Phase)
		}
	}
	return e.loop(ctx, st)
}

// loop runs phases until the release ends, persisting each step of the way, with a watcher that beats
// the heartbeat and picks up requests from other processes.
func (e *Engine) loop(ctx context.Context, st *state) (Outcome, error) {
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var watchDone sync.WaitGroup
	watchDone.Add(1)
	go func() {
		defer watchDone.Done()
		e.watch(watchCtx, st)
	}()
	for !st.end && !st.phase.Done() {
		pctx, cancel := context.WithCancel(ctx)
		e.mu.Lock()
		e.cancelPhase = cancel
		if e.pending != "" {
			cancel()
		}
		e.mu.Unlock()
		switch st.phase {
		case PhasePreflight:
			e.preflight(pctx, ctx, st)
		case PhaseStarting:
			e.start(pctx, ctx, st)
		case PhaseBaking:
			e.bake(pctx, ctx, st)
		case PhasePromoting:
			e.promote(pctx, st)
		case PhaseAborting:
			e.abort(st)
		case PhaseStandby:
			e.standby(pctx, ctx, st)
		case PhaseRollingBack:
			e.rollback(st)
		default:
			panic("release: unknown phase " + string(st.phase))
		}
		e.mu.Lock()
		e.cancelPhase = nil
		e.mu.Unlock()
		cancel()
	}
	stopWatch()
	watchDone.Wait()
	msg := st.reason
	if st.err != nil {
		msg = st.err.Error()
	}
	if st.outcome == "" {
		st.outcome = OutcomeFailed
	}
	e.persist(context.WithoutCancel(ctx), st)
	if st.phase.Done() {
		if err := e.gates(context.WithoutCancel(ctx), st, GatePostRollout, st.outcome); err != nil {
			e.send(st, Event{Kind: KindWarning, Message: err.Error()})
		}
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
	ev.Plan = e.cfg.Steps
	ev.Image, ev.StableImage = e.cfg.Image, e.stableImage
	ev.StartedBy, ev.StartedAt = e.startedBy, e.startedAt
	ev.Bake = e.cfg.Bake
	if st.phase == PhaseBaking {
		ev.Step = st.step + 1
	}
	e.emit(ev)
}

// enter moves to phase, says why and persists the move.
func (e *Engine) enter(st *state, phase Phase, why string) {
	st.phase = phase
	e.send(st, Event{Kind: KindPhase, Message: why})
	e.persist(context.Background(), st)
}

// finish ends the release in a final phase.
func (e *Engine) finish(st *state, phase Phase, outcome Outcome, reason string, err error) {
	st.phase, st.outcome, st.err = phase, outcome, err
	if reason != "" {
		st.reason = reason
	}
}

// halt ends this process's run while the release stays active where it stands: something needs an
// operator, and err says what and how to go on (fridaymorning abort or resume).
func (e *Engine) halt(st *state, err error) {
	st.end, st.outcome, st.err = true, OutcomeFailed, err
}

// sleepCtx waits for d and reports whether it did; false means ctx ended first.
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
