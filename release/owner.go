package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Pulse tells whether the process driving a release still lives: it stamps the canary service with a
// heartbeat, which other processes read. How old a beat is, is judged by the clock of the store that
// keeps it (the Swarm manager's), never by comparing the driver's clock with the reader's: a laptop 30s
// behind a CI runner must not look dead to it.
type Pulse interface {
	// Beat records that owner is alive, on service; at is the driver's own time, for humans only.
	Beat(ctx context.Context, service, owner string, at time.Time) error
	// LastBeat returns how long ago service last changed (a heartbeat, a record write), by the store's
	// own clock; found is false, and no error, if there is no such service.
	LastBeat(ctx context.Context, service string) (age time.Duration, found bool, err error)
}

// LockedError is returned when a service already has a release in progress.
type LockedError struct{ Record Record }

// Error names the release that holds the lock and the commands that act on it.
func (e *LockedError) Error() string {
	return fmt.Sprintf("service %s already has a release in progress: %s: watch it with `fridaymorning status %s`, abort it with `fridaymorning abort %s`, or, if the process driving it died, continue it with `fridaymorning resume %s`",
		e.Record.Service, e.Record.Summary(), e.Record.Service, e.Record.Service, e.Record.Service)
}

// ErrLostOwnership is returned when another process took over the release this one was driving.
var ErrLostOwnership = errors.New("another process took over this release")

// newOwner names this process for the release record: host and pid say where it runs, the random
// part tells apart two runs that reuse a pid.
func newOwner() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// acquire takes the backend's lock, then the service's release lock by storing a new active record,
// both atomically.
func (e *Engine) acquire(ctx context.Context, st *state) error {
	if err := e.lockBackend(ctx); err != nil {
		return err
	}
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
		e.unlockBackend(context.WithoutCancel(ctx), st)
	}
	return err
}

// BackendLockedError is returned when another release holds the backend a release needs.
type BackendLockedError struct {
	Backend, Service, Release string
}

// Error names the release that holds the backend and what to do.
func (e *BackendLockedError) Error() string {
	return fmt.Sprintf("backend %s is in use by release %s of service %s: one release at a time moves a backend's traffic; wait for it (`fridaymorning status %s`), or check haproxy.backend in fridaymorning.yaml",
		e.Backend, e.Release, e.Service, e.Service)
}

// lockBackend takes Config.Backend's lock for this release. A lock left by a release that is over (or
// by a service that is gone) is stale and broken; one held by a release in progress is refused.
func (e *Engine) lockBackend(ctx context.Context) error {
	if e.deps.Lock == nil || e.cfg.Backend == "" {
		return nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		svc, id, err := e.deps.Lock.LockBackend(ctx, e.cfg.Backend, e.cfg.Service, e.cfg.ReleaseID)
		if err != nil || id == "" {
			return err
		}
		rec, err := Load(ctx, e.deps.Journal, svc)
		switch {
		case err == nil && rec.Active() && rec.ID == id && svc == e.cfg.Service:
			return &LockedError{Record: *rec} // a release of this very service: say it as the service lock does
		case err != nil || rec.Active() && rec.ID == id:
			return &BackendLockedError{Backend: e.cfg.Backend, Service: svc, Release: id}
		}
		if err := e.deps.Lock.UnlockBackend(ctx, e.cfg.Backend, id); err != nil {
			return err
		}
	}
	return fmt.Errorf("release: the lock of backend %s keeps changing: try again", e.cfg.Backend)
}

// unlockBackend releases Config.Backend's lock once the release is over; a failure is a warning, and
// the next release breaks the stale lock.
func (e *Engine) unlockBackend(ctx context.Context, st *state) {
	if e.deps.Lock == nil || e.cfg.Backend == "" {
		return
	}
	if err := e.deps.Lock.UnlockBackend(ctx, e.cfg.Backend, e.cfg.ReleaseID); err != nil {
		e.send(st, Event{Kind: KindWarning, Message: "releasing the lock of backend " + e.cfg.Backend + ": " + err.Error()})
	}
}

// takeOver makes this process the owner of service's active release and returns its record, the owner
// it had and the request that was pending for that owner: a take-over carries it out. Unless force, a
// release whose process still beats is refused: two processes driving one release would fight over its
// traffic. The write is a compare-and-swap on the version the release was judged stale at, so that a
// driver that beats (or another process that takes over) in between wins, and this one judges again.
func (e *Engine) takeOver(ctx context.Context, force bool) (*Record, string, Command, error) {
	for attempt := 0; ; attempt++ {
		raw, req, version, err := e.deps.Journal.ReadState(ctx, e.cfg.Service)
		if err != nil {
			return nil, "", "", err
		}
		rec, err := ParseRecord(raw)
		if err == nil && rec == nil {
			rec, err = mirrored(ctx, e.deps.Journal, e.cfg.Service)
		}
		if err != nil {
			return nil, "", "", err
		}
		if !rec.Active() {
			return nil, "", "", fmt.Errorf("release: service %s: %w%s", e.cfg.Service, ErrNoRelease, lastEnded(rec))
		}
		if !force {
			last, alive, err := Liveness(ctx, e.deps.Pulse, rec, e.cfg.StaleAfter, time.Now())
			if err != nil {
				return nil, "", "", err
			}
			if alive {
				return nil, "", "", fmt.Errorf("release: %s is driven by a live process (%s, last sign of life %s ago): ask it with `fridaymorning abort|promote %s`, or take it over with --force",
					rec.Summary(), rec.Owner, time.Since(last).Round(time.Second), e.cfg.Service)
			}
		}
		prevOwner := rec.Owner
		next := *rec
		next.Owner, next.UpdatedAt, next.Recovered = e.cfg.Owner, time.Now(), false
		out, err := json.Marshal(&next)
		if err != nil {
			return nil, "", "", err
		}
		ok, err := e.deps.Journal.WriteState(ctx, e.cfg.Service, version, out, "")
		if err != nil {
			return nil, "", "", err
		}
		if ok {
			e.mu.Lock()
			e.stored = true
			e.mu.Unlock()
			if next.Canary != "" {
				// At once: until this owner beats, the last beat is the dead one's.
				_ = e.deps.Pulse.Beat(ctx, next.Canary, e.cfg.Owner, time.Now())
			}
			if rec.Recovered {
				e.send(&state{}, Event{Kind: KindWarning, Message: fmt.Sprintf("the release record on %s was gone (a `docker stack deploy` or `docker service update` replaces its labels): found %s on its canary %s and wrote it back", e.cfg.Service, rec.ID, rec.Canary)})
			}
			return &next, prevOwner, Command(req), nil
		}
		if attempt >= 20 {
			return nil, "", "", fmt.Errorf("release: the record of %s keeps changing while we take it over: run the command again", e.cfg.Service)
		}
		// Something wrote the record since it was judged: judge it again.
		if !sleepCtx(ctx, time.Duration(10+attempt*10)*time.Millisecond) {
			return nil, "", "", ctx.Err()
		}
	}
}

// record is st as the journal keeps it.
func (e *Engine) record(st *state) Record {
	r := Record{
		ID: e.cfg.ReleaseID, Service: e.cfg.Service, StableImage: e.stableImage, Image: e.cfg.Image,
		Target: e.cfg.Target, StableTarget: e.stableTarget,
		Canary: st.canary, Steps: e.cfg.Steps, CanaryPercent: st.canaryPercent, Weights: st.weights,
		Phase: st.phase, Cause: string(st.cause), Message: st.reason, LastVerdict: st.lastVerdict, Verdict: st.verdict, Sequence: st.seq,
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
	if st.verdictAt != (time.Time{}) {
		at := st.verdictAt
		r.VerdictAt = &at
	}
	r.Gate, r.Held, r.Progress = st.gate, st.hold, st.progress
	if st.end || st.phase.Done() {
		r.Outcome = st.outcome
		if st.err != nil {
			r.Message = st.err.Error()
		}
	}
	if st.end && !st.phase.Done() {
		// The process lets go of a release that stays active (paused, or halted for an operator): no
		// process drives it, and the next command takes it over at once instead of asking a dead one.
		r.Owner = ""
	}
	return r
}

// persist writes st to the journal if this process still owns the release, and a copy on the canary
// (see Mirror). Losing ownership ends the run at once: another process drives the release now. A record
// that is gone (the stable service's labels were replaced) is written back, and the release aborted.
func (e *Engine) persist(ctx context.Context, st *state) {
	if e.startedAt.IsZero() {
		return // the lock was never taken: nothing of ours is stored
	}
	rec := e.record(st)
	lost := false
	_, err := casRecord(ctx, e.deps.Journal, e.cfg.Service, func(cur *Record, req string) (*Record, string, error) {
		if cur != nil && (cur.ID != rec.ID || cur.Owner != e.cfg.Owner) {
			return nil, "", ErrLostOwnership
		}
		lost = cur == nil || cur.Recovered
		return &rec, req, nil
	})
	switch {
	case errors.Is(err, ErrLostOwnership):
		if !st.end {
			st.end, st.outcome, st.lostOwnership = true, OutcomeFailed, true
			st.err = fmt.Errorf("release %s: %w; stopping here without touching anything (see fridaymorning status %s)", e.cfg.ReleaseID, ErrLostOwnership, e.cfg.Service)
		}
		return
	case err != nil:
		e.send(st, Event{Kind: KindWarning, Message: "saving the release record: " + err.Error()})
		return
	}
	e.mu.Lock()
	e.stored = true
	e.mu.Unlock()
	if lost {
		e.recordLost(st)
	}
	if m, ok := e.deps.Journal.(Mirror); ok && st.canary != "" && !st.phase.Done() {
		if raw, err := json.Marshal(&rec); err == nil {
			if err := m.MirrorState(ctx, st.canary, raw); err != nil {
				e.send(st, Event{Kind: KindWarning, Message: "keeping a copy of the release record on the canary: " + err.Error()})
			}
		}
	}
}

// recordLost says, once, that the release record had vanished from the stable service and was written
// back, and asks for the abort that follows: whoever removed it (a `docker stack deploy` of the stable
// service's stack replaces its labels) may have changed the service under the release.
func (e *Engine) recordLost(st *state) {
	e.mu.Lock()
	noticed := e.lostNoticed
	e.lostNoticed = true
	e.mu.Unlock()
	if noticed {
		return
	}
	e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("the release record on %s was removed (a `docker stack deploy` of its stack or a `docker service update` replaces its labels): written back; aborting the release, since its service may have changed under it", e.cfg.Service)})
	e.Request(commandRecordLost)
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
		raw, req, _, err := e.deps.Journal.ReadState(ctx, e.cfg.Service)
		if err == nil && len(raw) == 0 {
			// The record vanished: the phase at work is interrupted, and its next write puts it back.
			e.mu.Lock()
			noticed, stored := e.lostNoticed, e.stored
			e.mu.Unlock()
			if stored && !noticed {
				e.Request(commandRecordLost)
			}
			continue
		}
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

// Liveness says whether the process driving rec still shows signs of life: its canary changed (a
// heartbeat) less than staleAfter ago, or, while there is no canary, the record on the stable service
// did; both by the store's own clock. A release no process drives (paused, halted) is never alive. last
// is when the last sign of life was, on the caller's clock (now minus its age).
func Liveness(ctx context.Context, p Pulse, rec *Record, staleAfter time.Duration, now time.Time) (last time.Time, alive bool, err error) {
	if rec.Owner == "" || rec.Outcome == OutcomePaused {
		// A paused or halted release waits for a human: no process drives it.
		return rec.UpdatedAt, false, nil
	}
	var age time.Duration
	found := false
	if rec.Canary != "" {
		if age, found, err = p.LastBeat(ctx, rec.Canary); err != nil {
			return rec.UpdatedAt, false, err
		}
	}
	if !found {
		if age, found, err = p.LastBeat(ctx, rec.Service); err != nil {
			return rec.UpdatedAt, false, err
		}
		if !found {
			return rec.UpdatedAt, false, nil
		}
	}
	return now.Add(-age), age < staleAfter, nil
}
