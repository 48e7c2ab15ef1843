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
	// Backend names the load balancer backend the release moves traffic in, such that two names are
	// equal exactly when they are one backend (the load balancer's address and the backend's name); with
	// Deps.Lock, one release at a time holds it.
	Backend string
	// Target, if set, is what the release puts on the stable service when that is more than Image: an
	// opaque reference to a whole service spec (from a stack file) that the Canaries and Rollout
	// adapters resolve; Image is then the image that spec runs, for people. Empty: Image alone.
	Target string
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
	// FixedCanaryScale keeps the canary at its configured task count until promotion (canary.scale:
	// fixed). By default, before a step's weight goes up, the canary is scaled to carry that share of
	// stable's load and must be ready and healthy in the load balancer first.
	FixedCanaryScale bool
	// EarlyPass lets an early look end the bake once it shows the canary within every limit beyond
	// doubt, and the step has baked for MinBake (default a sixth of Bake, at least one EarlyInterval):
	// a fault that takes a while to show still gets that long.
	EarlyPass bool
	MinBake   time.Duration
	// ReadyTimeout bounds the wait for the canary's tasks and health checks (default 2m).
	ReadyTimeout time.Duration
	// PromoteTimeout bounds the stable service's update to the new image (default 5m).
	PromoteTimeout time.Duration
	// DrainTimeout bounds the wait for a group's open sessions to end (default 30s).
	DrainTimeout time.Duration
	// SplitInterval is how often a bake re-reads the load balancer's weights, to find weights changed
	// outside the release and servers that took up or left traffic (default 2s; negative turns it off).
	SplitInterval time.Duration
	// RetryInterval is the first wait before a failed move of the way back (traffic back to stable,
	// removing the canary) is tried again; each wait doubles, up to ten times this, until PromoteTimeout
	// (default 500ms).
	RetryInterval time.Duration
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
	// WatchAtGate keeps this process watching the canary with early looks while the release waits at the
	// promotion gate (PauseBeforePromote), until `fridaymorning promote` or `abort` asks it, instead of
	// leaving the canary unwatched.
	WatchAtGate bool
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
	// Verifier, if set, holds the split the load balancer runs to the one the release set during bakes.
	Verifier Verifier
	// Gates are the outside checks the release waits on (pre_rollout, confirm_promotion, post_rollout).
	Gates     []GateConfig
	Preflight []Preflight
	// Lock, if set, locks Config.Backend for the release (see BackendLock).
	Lock BackendLock
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
	// stableTarget is what the stable service ran when the release began, as Rollout.Current said:
	// what an abort or a rollback puts back.
	stableTarget string
	startedAt    time.Time
	startedBy    string
	// lostNoticed: the record was found gone and the abort that follows was asked for (once).
	// stored: this process wrote the record (or took it over), so a record found missing was removed.
	lostNoticed, stored bool
}

// commandRecordLost is the engine's own request when its record vanished from the stable service: an
// abort, except in the phases that cannot abort (a promotion finishes, a standby stays).
const commandRecordLost Command = "record-lost"

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
	setDefault(&cfg.RetryInterval, 500*time.Millisecond)
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
	if cfg.SplitInterval == 0 {
		cfg.SplitInterval = 2 * time.Second
	}
	setDefault(&cfg.MinBake, max(cfg.Bake/6, cfg.EarlyInterval))
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

// target is what the release puts on the stable service: Target, or Image alone.
func (e *Engine) target() string {
	if e.cfg.Target != "" {
		return e.cfg.Target
	}
	return e.cfg.Image
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
	if e.pending == "" || cmd == CommandAbort || cmd == commandRecordLost && e.pending != CommandAbort {
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
	// seq is the release's sequential analysis: the evidence of every look so far, over every step.
	seq       *verdict.Sequence
	bakeUntil time.Time
	paused    bool
	cause     cause
	reason    string
	outcome   Outcome
	err       error
	// end stops the run; phase may still be an active one when the process gives up on a release
	// that needs an operator (the record then says where it stands).
	end bool
	// lostOwnership: another process took the release over; nothing more may be done.
	lostOwnership bool
	// progress is the last sub-step of the promotion or rollback that is done.
	progress Progress
	// verdictAt is when lastVerdict was made.
	verdictAt time.Time
	// gate: every step passed and the release waits at the promotion gate. hold: this process watches
	// the canary meanwhile (early looks) until a promote or abort request; letGo: an interrupt then
	// hands the release back (paused) instead of aborting it.
	gate, hold, letGo bool
	// held: the fresh window being judged was asked for while holding; an inconclusive one holds again.
	held bool
	// rejudge: a paused release is baked and judged once more, on a fresh window, before it is promoted.
	// keepWindow: the bake that follows keeps the window and the end already set (bakeUntil).
	rejudge, keepWindow bool
	// abortDuringPromotion: an abort was asked for while the promotion ran; it is reported at its end.
	abortDuringPromotion bool
	// fromPromotion: the abort began in a promotion, which may have changed the stable service.
	fromPromotion bool
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
		e.unlockBackend(context.WithoutCancel(ctx), st)
	}
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
