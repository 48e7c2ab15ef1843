package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// Pulse tells whether the process driving a release still lives: it stamps the canary service with a
// heartbeat, which other processes read.
type Pulse interface {
	// Beat records that owner was alive at at, on service.
	Beat(ctx context.Context, service, owner string, at time.Time) error
	// LastBeat returns the last heartbeat on service; a zero time if there is none or no service.
	LastBeat(ctx context.Context, service string) (owner string, at time.Time, err error)
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

// takeOver makes this process the owner of service's active release, atomically, and returns its record
// and the owner it had. Unless force, a release whose process still beats is refused: two processes
// driving one release would fight over its traffic.
func (e *Engine) takeOver(ctx context.Context, force bool) (*Record, string, error) {
	rec, err := Load(ctx, e.deps.Journal, e.cfg.Service)
	if err != nil {
		return nil, "", err
	}
	if !rec.Active() {
		if rec != nil {
			return nil, "", fmt.Errorf("release: service %s: %w (the last one, %s, ended %s)", e.cfg.Service, ErrNoRelease, rec.ID, rec.Outcome)
		}
		return nil, "", fmt.Errorf("release: service %s: %w", e.cfg.Service, ErrNoRelease)
	}
	if !force {
		last, alive, err := Liveness(ctx, e.deps.Pulse, rec, e.cfg.StaleAfter, time.Now())
		if err != nil {
			return nil, "", err
		}
		if alive {
			return nil, "", fmt.Errorf("release: %s is driven by a live process (%s, last heartbeat %s ago): ask it with `fridaymorning abort|promote %s`, or take it over with --force",
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
		return nil, "", err
	}
	return rec, prevOwner, nil
}

// record is st as the journal keeps it.
func (e *Engine) record(st *state) Record {
	r := Record{
		ID: e.cfg.ReleaseID, Service: e.cfg.Service, StableImage: e.stableImage, Image: e.cfg.Image,
		Target: e.cfg.Target, StableTarget: e.stableTarget,
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

// Liveness says whether the process driving rec still beats, judged from its canary's heartbeat (or the
// record's last update when there is no canary yet): stale means no sign of life for staleAfter.
func Liveness(ctx context.Context, p Pulse, rec *Record, staleAfter time.Duration, now time.Time) (last time.Time, alive bool, err error) {
	last = rec.UpdatedAt
	if rec.Outcome == OutcomePaused {
		// A paused release waits for a human: no process drives it.
		return last, false, nil
	}
	if rec.Canary != "" {
		owner, at, err := p.LastBeat(ctx, rec.Canary)
		if err != nil {
			return last, false, err
		}
		if owner == rec.Owner && at.After(last) {
			last = at
		}
	}
	return last, now.Sub(last) < staleAfter, nil
}
