package release

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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

// ResumeOptions qualify a take-over.
type ResumeOptions struct {
	// Force takes the release over even if its process seems alive.
	Force bool
	// SkipAnalysis promotes a paused release on its last verdict instead of judging a fresh window first.
	SkipAnalysis bool
	// ReleaseID and Image, when set, must be the release's: a CI job that gated one release must not
	// promote or abort another one started since.
	ReleaseID, Image string
	// By says who takes the release over, for its messages ("" is an operator).
	By string
}

// ResumeWatch takes over a paused release and watches its canary with early looks, where it stands,
// until it is promoted or aborted (what `fridaymorning supervise` does). A failing canary is aborted; an
// interrupt hands the release back, paused.
const ResumeWatch ResumeMode = "watch"

// Resume takes over service's release in progress, whose process died (or, with opts.Force, any), and
// carries it on, aborts it or promotes it. The engine's Config supplies thresholds and timings; the
// release's identity, image, steps and position come from the record. A request that was pending for
// the dead process is carried out: an abort wins over anything else asked.
func (e *Engine) Resume(ctx context.Context, mode ResumeMode, opts ResumeOptions) (Outcome, error) {
	if err := e.expect(ctx, opts); err != nil {
		return OutcomeFailed, err
	}
	rec, prevOwner, pending, err := e.takeOver(ctx, opts.Force)
	if err != nil {
		return OutcomeFailed, err
	}
	e.cfg.ReleaseID, e.cfg.Image, e.cfg.Steps = rec.ID, rec.Image, rec.Steps
	e.stableImage, e.startedAt, e.startedBy = rec.StableImage, rec.StartedAt, rec.StartedBy
	e.cfg.Target, e.stableTarget = rec.Target, rec.StableTarget
	if e.stableTarget == "" {
		e.stableTarget = rec.StableImage // a record of an image release
	}
	st := &state{phase: rec.Phase, canary: rec.Canary, step: max(rec.Step-1, 0), canaryPercent: rec.CanaryPercent,
		weights: rec.Weights, lastVerdict: rec.LastVerdict, verdict: rec.Verdict, cause: cause(rec.Cause), reason: rec.Message,
		progress: rec.Progress, gate: rec.Gate, seq: rec.Sequence}
	if rec.VerdictAt != nil {
		st.verdictAt = *rec.VerdictAt
	}
	if st.phase == PhasePreflight {
		st.phase = PhaseStarting
	}
	if st.step >= len(e.cfg.Steps) {
		st.step = len(e.cfg.Steps) - 1
	}
	if prevOwner == "" {
		prevOwner = "no process"
	}
	e.send(st, Event{Kind: KindStarted, Message: fmt.Sprintf("taking over %s from %s (%s)", rec.Summary(), prevOwner, mode)})
	if err := e.lockBackend(ctx); err != nil {
		e.send(st, Event{Kind: KindWarning, Message: err.Error() + "; carrying this release on all the same"})
	}
	if rec.StandbyUntil != nil {
		st.standbyUntil = *rec.StandbyUntil
	}
	// A held release is paused too: only its watcher is gone.
	paused := rec.Outcome == OutcomePaused || rec.Held
	mode = e.carry(st, mode, pending)
	by := opts.By
	if by == "" {
		by = "an operator"
	}
	switch mode {
	case ResumeAbort:
		switch st.phase {
		case PhaseStandby:
			st.endStandby = true
		case PhaseRollingBack:
			// Rolling back is the way back already: it is finished.
			e.send(st, Event{Kind: KindProgress, Message: "the release is rolling back to its previous version: finishing the rollback"})
		case PhaseAborting:
		case PhasePromoting:
			if st.progress.reached(ProgressCanaryRemoved) {
				break // nothing left to abort: the promotion only needs its record
			}
			e.startAbort(st, causeOperator, "aborted by "+by+" after taking the release over")
		default:
			e.startAbort(st, causeOperator, "aborted by "+by+" after taking the release over")
		}
	case ResumeRollback:
		switch st.phase {
		case PhaseStandby:
			if time.Now().After(st.standbyUntil) {
				st.endStandby = true
				e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("the standby of %s expired at %s: removing it; to go back, release %s again", rec.StableImage, st.standbyUntil.UTC().Format(time.RFC3339), rec.StableImage)})
				break
			}
			st.progress = ""
			e.enter(st, PhaseRollingBack, "rollback requested by an operator")
		case PhaseRollingBack:
		case PhasePromoting:
			return OutcomeFailed, fmt.Errorf("release: %s is still being promoted (done: %s): `fridaymorning resume %s` finishes the promotion, with its standby if promote.standby is set; roll it back then", rec.ID, orNothing(rec.Progress), e.cfg.Service)
		default:
			return OutcomeFailed, fmt.Errorf("release: %s is in phase %s: only a promoted release with a warm standby can be rolled back", rec.ID, rec.Phase)
		}
	case ResumePromote:
		switch st.phase {
		case PhaseBaking:
			if paused && !opts.SkipAnalysis {
				st.rejudge = true
				e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("%s was paused (%s): judging a fresh window of %s at %s%% before promoting it (--skip-analysis promotes on the last verdict)",
					rec.ID, verdictAge(rec, time.Now()), e.cfg.Bake, FormatPercent(e.cfg.Steps[st.step]))})
				break
			}
			if paused {
				e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("promoting %s without judging it again (--skip-analysis): its last verdict is %s", rec.ID, verdictAge(rec, time.Now()))})
			}
			st.gate = false
			e.enter(st, PhasePromoting, "promoted by "+by+" after taking the release over")
		case PhaseStarting:
			st.promoteWhenReady = true
		case PhaseAborting:
			return OutcomeFailed, fmt.Errorf("release: %s is aborting (%s): it can only be aborted; run fridaymorning abort %s", rec.ID, rec.Message, e.cfg.Service)
		case PhaseStandby, PhaseRollingBack:
			return OutcomeFailed, fmt.Errorf("release: %s is promoted already (phase %s)", rec.ID, rec.Phase)
		}
	case ResumeWatch:
		if st.phase != PhaseBaking || !paused {
			return OutcomeFailed, fmt.Errorf("release: %s is in phase %s and not paused: only a paused release is watched", rec.ID, rec.Phase)
		}
		st.hold, st.letGo = true, true
	default:
		if paused && st.phase == PhaseBaking && st.gate {
			// Every step passed already: resuming it means watching it at the gate, not baking again.
			st.hold = true
		}
	}
	return e.loop(ctx, st)
}

// carry turns the request pending for the previous owner into what this take-over does: an abort wins
// over anything asked; a promotion or rollback asked of the dead process is done instead of resuming;
// bake commands go to the bake.
func (e *Engine) carry(st *state, mode ResumeMode, pending Command) ResumeMode {
	switch {
	case pending == "":
		return mode
	case pending == CommandAbort && mode != ResumeAbort && mode != ResumeRollback:
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("an abort was asked of the previous owner and never carried out: aborting instead of %s", mode)})
		return ResumeAbort
	case pending == CommandPromote && mode == ResumeContinue:
		e.send(st, Event{Kind: KindProgress, Message: "a promotion was asked of the previous owner and never carried out: promoting"})
		return ResumePromote
	case pending == CommandRollback && mode == ResumeContinue:
		e.send(st, Event{Kind: KindProgress, Message: "a rollback was asked of the previous owner and never carried out: rolling back"})
		return ResumeRollback
	case bakeCommand(pending):
		e.Request(pending)
	}
	return mode
}

// expect refuses a take-over of another release than the one opts name.
func (e *Engine) expect(ctx context.Context, opts ResumeOptions) error {
	if opts.ReleaseID == "" && opts.Image == "" {
		return nil
	}
	rec, err := Load(ctx, e.deps.Journal, e.cfg.Service)
	if err != nil {
		return err
	}
	if !rec.Active() {
		return fmt.Errorf("release: service %s: %w%s", e.cfg.Service, ErrNoRelease, lastEnded(rec))
	}
	return Expect(rec, opts.ReleaseID, opts.Image)
}

// Expect refuses rec unless it is release id (when given) of image (when given): a CI job acting on the
// release it gated must not act on another one started since.
func Expect(rec *Record, id, image string) error {
	if id != "" && rec.ID != id {
		return fmt.Errorf("release: service %s now has release %s, not %s: %w (see fridaymorning status %s)", rec.Service, rec.ID, id, ErrOtherRelease, rec.Service)
	}
	if image != "" && rec.Image != image {
		return fmt.Errorf("release: %s releases %s, not %s: %w (see fridaymorning status %s)", rec.ID, rec.Image, image, ErrOtherRelease, rec.Service)
	}
	return nil
}

// ErrOtherRelease is returned when a command names a release (by ID or image) that is not the one in
// progress.
var ErrOtherRelease = errors.New("another release than the one named")

// orNothing names a promotion's progress, or says there is none yet.
func orNothing(p Progress) string {
	if p == "" {
		return "nothing yet"
	}
	return string(p)
}

// lastEnded says how the last release ended, for messages about a service without one in progress.
func lastEnded(rec *Record) string {
	if rec == nil {
		return ""
	}
	return fmt.Sprintf(" (the last one, %s, ended %s)", rec.ID, rec.Outcome)
}

// verdictAge says what a record's last verdict was and how old it is.
func verdictAge(rec *Record, now time.Time) string {
	if rec.LastVerdict == nil {
		return "no verdict yet"
	}
	age := ""
	if rec.VerdictAt != nil {
		age = ", " + now.Sub(*rec.VerdictAt).Round(time.Second).String() + " ago"
	}
	return fmt.Sprintf("step %d %s%s", rec.LastVerdict.Step, rec.LastVerdict.Result, age)
}
