package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
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
	Counter   Counter
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

func newOwner() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
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

func (e *Engine) takePending() Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.pending
	e.pending = ""
	return c
}

func (e *Engine) peekPending() Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending
}

// cause is why a release is being aborted.
type cause string

const (
	causeAnalysis     cause = "analysis"
	causeInconclusive cause = "inconclusive"
	causeOperator     cause = "operator"
	causeError        cause = "error"
)

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
	rec, err := Load(ctx, e.deps.Journal, e.cfg.Service)
	if err != nil {
		return OutcomeFailed, err
	}
	if !rec.Active() {
		if rec != nil {
			return OutcomeFailed, fmt.Errorf("release: service %s: %w (the last one, %s, ended %s)", e.cfg.Service, ErrNoRelease, rec.ID, rec.Outcome)
		}
		return OutcomeFailed, fmt.Errorf("release: service %s: %w", e.cfg.Service, ErrNoRelease)
	}
	if !force {
		last, alive, err := Liveness(ctx, e.deps.Pulse, rec, e.cfg.StaleAfter, time.Now())
		if err != nil {
			return OutcomeFailed, err
		}
		if alive {
			return OutcomeFailed, fmt.Errorf("release: %s is driven by a live process (%s, last heartbeat %s ago): ask it with `fridaymorning abort|promote %s`, or take it over with --force",
				rec.Summary(), rec.Owner, time.Since(last).Round(time.Second), e.cfg.Service)
		}
	}
	prevOwner := rec.Owner
	rec, err = casRecord(ctx, e.deps.Journal, e.cfg.Service, func(cur *Record, req string) (*Record, string, error) {
		if cur == nil || cur.ID != rec.ID || cur.Owner != prevOwner || !cur.Active() {
			return nil, "", fmt.Errorf("release: %s changed hands while we were taking it over: %w", rec.ID, ErrLostOwnership)
		}
		cur.Owner = e.cfg.Owner
		cur.UpdatedAt = time.Now()
		return cur, "", nil
	})
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
	e.send(st, Event{Kind: KindFinished, Outcome: st.outcome, Message: msg})
	return st.outcome, st.err
}

// watch beats the heartbeat on the canary and delivers requests written by other processes until ctx
// ends. Its own errors are warnings: the release goes on without them.
func (e *Engine) watch(ctx context.Context, st *state) {
	lastBeat := time.Time{}
	for sleepCtx(ctx, e.cfg.PollInterval) {
		e.mu.Lock()
		canary := st.canary
		e.mu.Unlock()
		if canary != "" && time.Since(lastBeat) >= e.cfg.BeatInterval {
			if err := e.deps.Pulse.Beat(ctx, canary, e.cfg.Owner, time.Now()); err == nil {
				lastBeat = time.Now()
			}
		}
		_, req, _, err := e.deps.Journal.ReadState(ctx, e.cfg.Service)
		if err != nil || req == "" {
			continue
		}
		var got Command
		_, err = casRecord(ctx, e.deps.Journal, e.cfg.Service, func(cur *Record, req string) (*Record, string, error) {
			if cur == nil || cur.ID != e.cfg.ReleaseID || cur.Owner != e.cfg.Owner {
				return nil, "", ErrLostOwnership
			}
			got = Command(req)
			return cur, "", nil
		})
		if err == nil && (got == CommandAbort || got == CommandPromote || got == CommandRollback || bakeCommand(got)) {
			e.Request(got)
		}
	}
}

// record is st as the journal keeps it.
func (e *Engine) record(st *state) Record {
	r := Record{
		ID: e.cfg.ReleaseID, Service: e.cfg.Service, StableImage: e.stableImage, Image: e.cfg.Image,
		Canary: st.canary, Steps: e.cfg.Steps, CanaryPercent: st.canaryPercent, Weights: st.weights,
		Phase: st.phase, Cause: string(st.cause), Message: st.reason, LastVerdict: st.lastVerdict, Verdict: st.verdict,
		StartedBy: e.startedBy, StartedAt: e.startedAt, UpdatedAt: time.Now(), Owner: e.cfg.Owner,
	}
	if st.phase == PhaseBaking {
		r.Step = st.step + 1
		if !st.bakeUntil.IsZero() {
			until := st.bakeUntil
			r.BakeUntil, r.Paused = &until, st.paused
		}
	}
	if st.phase == PhaseStandby || st.phase == PhaseRollingBack {
		until := st.standbyUntil
		r.StandbyUntil = &until
		r.Outcome = OutcomePromoted
	}
	if st.end || st.phase.Done() {
		r.Outcome = st.outcome
		if st.err != nil {
			r.Message = st.err.Error()
		}
	}
	return r
}

// persist writes st to the journal if this process still owns the release. Losing ownership ends the
// run at once: another process drives the release now.
func (e *Engine) persist(ctx context.Context, st *state) {
	if e.startedAt.IsZero() {
		return // the lock was never taken: nothing of ours is stored
	}
	rec := e.record(st)
	_, err := casRecord(ctx, e.deps.Journal, e.cfg.Service, func(cur *Record, req string) (*Record, string, error) {
		if cur == nil || cur.ID != rec.ID || cur.Owner != e.cfg.Owner {
			return nil, "", ErrLostOwnership
		}
		return &rec, req, nil
	})
	switch {
	case errors.Is(err, ErrLostOwnership):
		if !st.end {
			st.end, st.outcome = true, OutcomeFailed
			st.err = fmt.Errorf("release %s: %w; stopping here without touching anything (see fridaymorning status %s)", e.cfg.ReleaseID, ErrLostOwnership, e.cfg.Service)
		}
	case err != nil:
		e.send(st, Event{Kind: KindWarning, Message: "saving the release record: " + err.Error()})
	}
}

// acquire takes the service's release lock by storing a new active record, atomically.
func (e *Engine) acquire(ctx context.Context, st *state) error {
	e.startedAt = time.Now()
	e.startedBy = e.cfg.StartedBy
	rec := e.record(st)
	_, err := casRecord(ctx, e.deps.Journal, e.cfg.Service, func(cur *Record, _ string) (*Record, string, error) {
		if cur.Active() {
			return nil, "", &LockedError{Record: *cur}
		}
		return &rec, "", nil
	})
	if err != nil {
		e.startedAt = time.Time{}
	}
	return err
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

// startAbort moves to the aborting phase for the given cause.
func (e *Engine) startAbort(st *state, c cause, why string) {
	st.cause = c
	st.reason = why
	e.enter(st, PhaseAborting, why)
}

// interrupted handles a phase cut short by a command or by the end of parent (an operator's
// interrupt, which means abort). It reports whether the phase should stop.
func (e *Engine) interrupted(parent context.Context, st *state, where string) {
	cmd := e.takePending()
	if parent.Err() != nil {
		cmd = CommandAbort
	}
	switch {
	case st.phase == PhaseStandby && cmd == CommandRollback:
		e.enter(st, PhaseRollingBack, "rollback requested by an operator")
	case st.phase == PhaseStandby && cmd == CommandAbort:
		st.endStandby = true
	case st.phase == PhaseStandby:
		// Nothing else applies to a promoted release: keep standing by.
	case cmd == CommandPromote && st.phase == PhaseBaking:
		e.enter(st, PhasePromoting, "promotion requested by an operator "+where)
	case cmd == CommandPromote && st.phase == PhaseStarting:
		st.promoteWhenReady = true
		e.send(st, Event{Kind: KindProgress, Message: "promotion requested: it follows once the canary is ready"})
	default:
		e.startAbort(st, causeOperator, "aborted by an operator "+where)
	}
}

func (e *Engine) preflight(ctx, parent context.Context, st *state) {
	// A release in progress is the first thing to tell: its canary would fail the checks below with a
	// less helpful message. The lock itself is taken atomically after the checks.
	if rec, err := Load(ctx, e.deps.Journal, e.cfg.Service); err == nil && rec.Active() {
		e.finish(st, PhaseFailed, OutcomeFailed, "", fmt.Errorf("%w (nothing was changed)", &LockedError{Record: *rec}))
		return
	}
	for _, p := range e.deps.Preflight {
		if err := p.Run(ctx); err != nil {
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
	err = e.deps.Rollout.WaitReady(readyCtx, name, func(msg string) {
		e.send(st, Event{Kind: KindProgress, Message: "canary " + msg})
	})
	if err == nil {
		err = e.deps.Router.WaitUp(readyCtx, GroupCanary)
	}
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
		if st.promoteWhenReady {
			e.enter(st, PhasePromoting, "promotion requested by an operator")
			return
		}
		e.enter(st, PhaseBaking, fmt.Sprintf("step %d of %d: %s%% of requests to the canary", st.step+1, len(e.cfg.Steps), FormatPercent(e.cfg.Steps[st.step])))
	}
}

func (e *Engine) bake(ctx, parent context.Context, st *state) {
	if ctx.Err() != nil {
		e.interrupted(parent, st, "before the step")
		return
	}
	pct := e.cfg.Steps[st.step]
	if st.extensions == 0 {
		weights, achieved, err := e.deps.Router.Shift(ctx, pct)
		if err != nil {
			if ctx.Err() != nil {
				e.interrupted(parent, st, "while shifting traffic")
				return
			}
			e.startAbort(st, causeError, fmt.Sprintf("shifting %s%% of traffic to the canary failed: %v", FormatPercent(pct), err))
			return
		}
		st.windowStart = time.Now()
		st.countsAtStart, st.countersReset = e.counts(ctx), false
		st.canaryPercent, st.weights = achieved, weights
		e.send(st, Event{Kind: KindTraffic, CanaryPercent: pct, AchievedPercent: achieved, Weights: weights,
			Message: fmt.Sprintf("canary gets %s%% of requests (requested %s%%)", FormatPercent(achieved), FormatPercent(pct))})
	}

	clock := &bakeClock{until: time.Now().Add(e.cfg.Bake), pct: pct}
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
	until, pct := clock.until, clock.pct
	countsAtEnd := e.counts(ctx)
	if !sleepCtx(ctx, e.cfg.AnalysisDelay) {
		e.interrupted(parent, st, "during the bake")
		return
	}
	w := verdict.Window{From: st.windowStart, To: until, Share: pct}
	var observed *Observed
	if c, s, ok := e.served(st, countsAtEnd); ok {
		w.Canary, w.Stable = &c, &s
		observed = &Observed{Canary: c.Requests, Stable: s.Requests}
	}
	v, err := e.deps.Analyzer.Analyze(ctx, w)
	if err != nil && ctx.Err() != nil {
		e.interrupted(parent, st, "during the analysis")
		return
	}
	v = verdict.FailClosed(v, err)
	st.lastVerdict = &VerdictSummary{Step: st.step + 1, Result: v.Result, Reason: v.Reason}
	st.verdict = &v
	st.bakeUntil, st.paused = time.Time{}, false
	e.send(st, Event{Kind: KindAnalysis, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed, Message: string(v.Result) + ": " + v.Reason})

	switch v.Result {
	case verdict.ResultPass:
		st.extensions = 0
		if st.step+1 < len(e.cfg.Steps) {
			st.step++
			e.enter(st, PhaseBaking, fmt.Sprintf("step %d of %d: %s%% of requests to the canary", st.step+1, len(e.cfg.Steps), FormatPercent(e.cfg.Steps[st.step])))
			return
		}
		if e.cfg.PauseBeforePromote {
			st.reason = fmt.Sprintf("every step passed; waiting at the promotion gate with %s%% of requests on the canary: `fridaymorning promote %s` promotes, `fridaymorning abort %s` aborts",
				FormatPercent(st.canaryPercent), e.cfg.Service, e.cfg.Service)
			st.end, st.outcome = true, OutcomePaused
			e.send(st, Event{Kind: KindPhase, Message: st.reason})
			return
		}
		e.enter(st, PhasePromoting, "every step passed")
	case verdict.ResultFail:
		e.startAbort(st, causeAnalysis, fmt.Sprintf("step %d failed: %s", st.step+1, v.Reason))
	default:
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
	if canary.Requests < 0 || stable.Requests < 0 || canary.Errors5xx < 0 || stable.Errors5xx < 0 {
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
func (e *Engine) counts(ctx context.Context) map[string]verdict.Tally {
	if e.deps.Counter == nil {
		return nil
	}
	c, err := e.deps.Counter.Counts(ctx)
	if err != nil {
		return nil
	}
	return c
}

type sleepResult int

const (
	sleepDone sleepResult = iota
	sleepInterrupted
	sleepFailedEarly
)

// bakeClock is a bake's schedule, which an operator can steer: pause stops it, continue restarts it,
// skip ends it, a nudge moves the share and starts the bake again.
type bakeClock struct {
	until  time.Time
	pct    float64
	paused bool
	// left is what remained of the bake when it was paused.
	left time.Duration
}

// sleep waits until the bake ends, reporting progress on long bakes, taking an early look at the canary
// every EarlyInterval (a look that fails the canary starts the abort at once: sleepFailedEarly) and
// obeying bake commands. It returns sleepInterrupted if ctx ended.
func (e *Engine) sleep(ctx context.Context, st *state, clock *bakeClock) sleepResult {
	looks := 0
	if e.cfg.EarlyInterval > 0 {
		looks = max(int(e.cfg.Bake/e.cfg.EarlyInterval), 1)
	}
	nextProgress := time.Now().Add(e.cfg.ProgressInterval)
	nextLook := time.Now().Add(e.cfg.EarlyInterval)
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
		if looks > 0 && !now.Before(nextLook) && (clock.paused || now.Before(clock.until)) {
			nextLook = now.Add(e.cfg.EarlyInterval)
			if e.earlyLook(ctx, st, clock.pct, looks) {
				return sleepFailedEarly
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
		if clock.paused {
			clock.paused, clock.until = false, time.Now().Add(clock.left)
			e.send(st, Event{Kind: KindControl, Command: cmd, CanaryPercent: clock.pct, Until: clock.until,
				Message: fmt.Sprintf("continued by an operator: %s of the bake left", clock.left.Round(time.Second))})
		}
	case CommandSkip:
		clock.paused, clock.until = false, time.Now()
		e.send(st, Event{Kind: KindControl, Command: cmd, CanaryPercent: clock.pct, Message: "the rest of the bake skipped by an operator: judging the step now"})
		return true
	case CommandNudgeUp, CommandNudgeDown:
		pct := clock.pct + NudgeStep
		if cmd == CommandNudgeDown {
			pct = clock.pct - NudgeStep
		}
		pct = min(max(pct, 1), 100)
		if pct == clock.pct {
			return false
		}
		weights, achieved, err := e.deps.Router.Shift(ctx, pct)
		if err != nil {
			e.send(st, Event{Kind: KindWarning, CanaryPercent: clock.pct, Message: fmt.Sprintf("nudging the canary to %s%% failed, it stays at %s%%: %v", FormatPercent(pct), FormatPercent(st.canaryPercent), err)})
			return false
		}
		clock.pct, clock.paused = pct, false
		clock.until = time.Now().Add(e.cfg.Bake)
		st.windowStart, st.countsAtStart, st.countersReset = time.Now(), e.counts(ctx), false
		st.canaryPercent, st.weights = achieved, weights
		e.send(st, Event{Kind: KindTraffic, CanaryPercent: pct, AchievedPercent: achieved, Weights: weights,
			Message: fmt.Sprintf("nudged by an operator: canary gets %s%% of requests; the step's bake starts again", FormatPercent(achieved))})
		e.send(st, Event{Kind: KindBake, CanaryPercent: pct, Until: clock.until, Message: fmt.Sprintf("baking for %s", e.cfg.Bake)})
		e.persist(context.Background(), st)
	}
	return false
}

// earlyLook judges the bake so far (up to AnalysisDelay ago, so that telemetry has landed) and starts
// the abort if the canary fails beyond doubt. Anything short of that is no news: the bake goes on.
func (e *Engine) earlyLook(ctx context.Context, st *state, pct float64, looks int) bool {
	to := time.Now().Add(-e.cfg.AnalysisDelay)
	if !to.After(st.windowStart) {
		return false
	}
	v, err := e.deps.Analyzer.Analyze(ctx, verdict.Window{From: st.windowStart, To: to, Share: pct, Early: true, Looks: looks})
	if ctx.Err() != nil {
		return false
	}
	var observed *Observed
	if c, s, ok := e.served(st, e.counts(ctx)); ok {
		observed = &Observed{Canary: c.Requests, Stable: s.Requests}
	}
	if v.Result != verdict.ResultFail {
		v.Early = true
		e.send(st, Event{Kind: KindLook, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed})
		return false
	}
	v = verdict.FailClosed(v, err)
	v.Early = true
	st.lastVerdict = &VerdictSummary{Step: st.step + 1, Result: v.Result, Reason: v.Reason}
	st.verdict = &v
	after := to.Sub(st.windowStart).Round(100 * time.Millisecond)
	e.send(st, Event{Kind: KindAnalysis, CanaryPercent: pct, AchievedPercent: st.canaryPercent, Verdict: &v, Observed: observed,
		Message: fmt.Sprintf("fail (early look after %s): %s", after, v.Reason)})
	e.startAbort(st, causeAnalysis, fmt.Sprintf("step %d failed an early look after %s: %s", st.step+1, after, v.Reason))
	return true
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
// all traffic back on stable; the canary is drained and removed. Every step is idempotent, so a
// promotion taken over from a dead process just runs again. Once begun it is not interrupted: the
// stable service is already moving to the new image, so finishing is the safe way out.
func (e *Engine) promote(ctx context.Context, st *state) {
	if e.takePending() == CommandAbort {
		e.send(st, Event{Kind: KindWarning, Message: "abort requested during promotion: finishing the promotion, since the stable service may already be moving to the new image"})
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.PromoteTimeout)
	defer cancel()

	// The canary is about to carry everything: as many tasks as stable, where it can.
	err := e.deps.Canaries.ScaleCanary(pctx, st.canary, e.cfg.Service)
	if err == nil {
		err = e.deps.Rollout.WaitReady(pctx, st.canary, func(msg string) {
			e.send(st, Event{Kind: KindProgress, Message: "canary " + msg})
		})
	}
	if err == nil {
		err = e.deps.Router.WaitUp(pctx, GroupCanary)
	}
	if err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: the canary could not be scaled to carry all traffic: %v", err))
		return
	}
	weights, achieved, err := e.deps.Router.Shift(pctx, 100)
	if err != nil {
		e.startAbort(st, causeError, fmt.Sprintf("promotion: moving all traffic to the canary failed: %v", err))
		return
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 100, AchievedPercent: achieved, Weights: weights,
		Message: "all requests to the canary while the stable service is updated"})
	e.persist(pctx, st)

	img, err := e.deps.Rollout.Image(pctx, e.cfg.Service)
	if err == nil && img != e.cfg.Image {
		err = e.deps.Rollout.UpdateImage(pctx, e.cfg.Service, e.cfg.Image)
	}
	if err == nil {
		err = e.deps.Rollout.WaitReady(pctx, e.cfg.Service, func(msg string) {
			e.send(st, Event{Kind: KindProgress, Message: "stable " + msg})
		})
	}
	if err == nil {
		err = e.deps.Router.WaitUp(pctx, GroupStable)
	}
	if err != nil {
		// Never move traffic onto servers that are not healthy: it stays on the canary, which runs the
		// same image and passed every step. The release stays active for an operator.
		st.reason = fmt.Sprintf("stable service %s did not become ready on %s: %v", e.cfg.Service, e.cfg.Image, err)
		e.halt(st, fmt.Errorf("promotion: %s; all traffic stays on the healthy canary %s: fix the stable service and run `fridaymorning resume %s`, or roll back with `fridaymorning abort %s`",
			st.reason, st.canary, e.cfg.Service, e.cfg.Service))
		return
	}

	weights, achieved, err = e.deps.Router.Shift(pctx, 0)
	if err != nil {
		e.halt(st, fmt.Errorf("promotion: stable %s runs %s, but moving traffic back to it failed: %w; the canary %s still serves it: run `fridaymorning resume %s`", e.cfg.Service, e.cfg.Image, err, st.canary, e.cfg.Service))
		return
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 0, AchievedPercent: achieved, Weights: weights,
		Message: "all requests back on the stable service, now running " + e.cfg.Image})
	e.persist(pctx, st)
	if e.cfg.Standby > 0 && e.stableImage != "" {
		if err := e.warmStandby(pctx, st); err == nil {
			return
		} else {
			e.send(st, Event{Kind: KindWarning, Message: "keeping the previous version warm failed: " + err.Error() + "; promoting without a standby"})
		}
	}
	if err := e.removeCanary(pctx, st); err != nil {
		e.halt(st, fmt.Errorf("promotion done, but removing the canary failed: %w; run `fridaymorning resume %s`", err, e.cfg.Service))
		return
	}
	e.finish(st, PhasePromoted, OutcomePromoted, fmt.Sprintf("%s runs %s", e.cfg.Service, e.cfg.Image), nil)
}

// abort puts all traffic back on stable, then drains and removes the canary. If the stable service was
// touched (a promotion that failed half-way), it first goes back to its previous image and must be
// healthy before it gets traffic. It runs on a context of its own: an interrupt must not cut the way
// back short. Every step is idempotent.
func (e *Engine) abort(st *state) {
	e.takePending()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()

	// Stable untouched (the usual case): straight to moving traffic back. Touched by a promotion that
	// failed half-way: back to its previous image, and healthy, before it gets traffic.
	if img, err := e.deps.Rollout.Image(ctx, e.cfg.Service); err != nil {
		e.send(st, Event{Kind: KindWarning, Message: "reading the stable service's image: " + err.Error()})
	} else if e.stableImage != "" && img != e.stableImage {
		e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("stable %s runs %s: rolling it back to %s before it gets traffic", e.cfg.Service, img, e.stableImage)})
		err = e.deps.Rollout.UpdateImage(ctx, e.cfg.Service, e.stableImage)
		if err == nil {
			err = e.deps.Rollout.WaitReady(ctx, e.cfg.Service, func(msg string) {
				e.send(st, Event{Kind: KindProgress, Message: "stable " + msg})
			})
		}
		if err == nil {
			err = e.deps.Router.WaitUp(ctx, GroupStable)
		}
		if err != nil {
			e.halt(st, fmt.Errorf("aborting (%s): stable %s is not ready on %s: %w; traffic stays where it is: fix the stable service, then run `fridaymorning abort %s` again", st.reason, e.cfg.Service, e.stableImage, err, e.cfg.Service))
			return
		}
	}

	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		var weights map[string]int
		var achieved float64
		weights, achieved, err = e.deps.Router.Shift(ctx, 0)
		if err == nil {
			st.canaryPercent, st.weights = achieved, weights
			e.send(st, Event{Kind: KindTraffic, CanaryPercent: 0, AchievedPercent: achieved, Weights: weights,
				Message: "all requests back on the stable service"})
			e.persist(ctx, st)
			break
		}
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("moving traffic back to stable, attempt %d: %v", attempt, err)})
		if !sleepCtx(ctx, time.Duration(attempt)*500*time.Millisecond) {
			break
		}
	}
	if err != nil {
		e.halt(st, fmt.Errorf("aborting (%s): traffic could not be moved back to stable: %w; the canary %s was left running so it keeps serving its share: run `fridaymorning abort %s` again once HAProxy's Data Plane API answers",
			st.reason, err, st.canary, e.cfg.Service))
		return
	}
	if err := e.removeCanary(ctx, st); err != nil {
		e.halt(st, fmt.Errorf("aborted (%s) and traffic is back on stable, but removing the canary failed: %w; run `fridaymorning abort %s` again", st.reason, err, e.cfg.Service))
		return
	}
	switch st.cause {
	case causeAnalysis:
		e.finish(st, PhaseAborted, OutcomeAbortedAnalysis, "", nil)
	case causeInconclusive:
		e.finish(st, PhaseAborted, OutcomeAbortedInconclusive, "", nil)
	case causeOperator:
		e.finish(st, PhaseAborted, OutcomeAbortedOperator, "", nil)
	default:
		e.finish(st, PhaseAborted, OutcomeFailed, "", errors.New(st.reason+"; aborted: traffic is back on stable and the canary is removed"))
	}
}

// warmStandby turns the canary, at weight 0, into a warm standby of the previous version: it runs
// the stable service's previous image and passes its health checks, so that a rollback only moves
// weights.
func (e *Engine) warmStandby(ctx context.Context, st *state) error {
	e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("keeping %s warm on %s for %s, at weight 0", e.stableImage, st.canary, e.cfg.Standby)})
	err := e.deps.Rollout.UpdateImage(ctx, st.canary, e.stableImage)
	if err == nil {
		err = e.deps.Rollout.WaitReady(ctx, st.canary, func(msg string) {
			e.send(st, Event{Kind: KindProgress, Message: "standby " + msg})
		})
	}
	if err == nil {
		err = e.deps.Router.WaitUp(ctx, GroupCanary)
	}
	if err != nil {
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
	if err := e.removeCanary(cctx, st); err != nil {
		e.halt(st, fmt.Errorf("the standby's time is up, but removing it failed: %w; run `fridaymorning abort %s`", err, e.cfg.Service))
		return
	}
	e.finish(st, PhasePromoted, OutcomePromoted, fmt.Sprintf("%s runs %s; the standby of %s is removed", e.cfg.Service, e.cfg.Image, e.stableImage), nil)
}

// rollback sends all traffic to the warm standby of the previous version at once, puts the stable
// service back on its previous image, then moves traffic back to it and removes the standby. Every
// step is idempotent.
func (e *Engine) rollback(st *state) {
	e.takePending()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.PromoteTimeout)
	defer cancel()
	weights, achieved, err := e.deps.Router.Shift(ctx, 100)
	if err != nil {
		e.halt(st, fmt.Errorf("rollback: moving traffic to the standby %s failed: %w; run `fridaymorning rollback %s` again", st.canary, err, e.cfg.Service))
		return
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 100, AchievedPercent: achieved, Weights: weights,
		Message: fmt.Sprintf("all requests to the standby running %s", e.stableImage)})
	e.persist(ctx, st)
	img, err := e.deps.Rollout.Image(ctx, e.cfg.Service)
	if err == nil && img != e.stableImage {
		err = e.deps.Rollout.UpdateImage(ctx, e.cfg.Service, e.stableImage)
	}
	if err == nil {
		err = e.deps.Rollout.WaitReady(ctx, e.cfg.Service, func(msg string) {
			e.send(st, Event{Kind: KindProgress, Message: "stable " + msg})
		})
	}
	if err == nil {
		err = e.deps.Router.WaitUp(ctx, GroupStable)
	}
	if err != nil {
		e.halt(st, fmt.Errorf("rollback: stable %s is not ready on %s: %w; all traffic stays on the standby %s: run `fridaymorning rollback %s` again", e.cfg.Service, e.stableImage, err, st.canary, e.cfg.Service))
		return
	}
	weights, achieved, err = e.deps.Router.Shift(ctx, 0)
	if err != nil {
		e.halt(st, fmt.Errorf("rollback: moving traffic back to stable failed: %w; the standby %s still serves it: run `fridaymorning rollback %s` again", err, st.canary, e.cfg.Service))
		return
	}
	st.canaryPercent, st.weights = achieved, weights
	e.send(st, Event{Kind: KindTraffic, CanaryPercent: 0, AchievedPercent: achieved, Weights: weights,
		Message: "all requests back on the stable service, running " + e.stableImage + " again"})
	if err := e.removeCanary(ctx, st); err != nil {
		e.halt(st, fmt.Errorf("rolled back, but removing the standby failed: %w; run `fridaymorning abort %s`", err, e.cfg.Service))
		return
	}
	e.finish(st, PhaseRolledBack, OutcomeRolledBack, fmt.Sprintf("%s runs %s again", e.cfg.Service, e.stableImage), nil)
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

// FormatSteps renders steps as "10%, 25%, 50%".
func FormatSteps(steps []float64) string {
	s := make([]string, len(steps))
	for i, p := range steps {
		s[i] = FormatPercent(p) + "%"
	}
	return strings.Join(s, ", ")
}

// FormatPercent renders a share without trailing zeros: 10, 12.5, 33.33.
func FormatPercent(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", p), "0"), ".")
}
