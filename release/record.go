package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Journal keeps each service's release record where every process can read it: in Swarm, on the stable
// service. Writes are compare-and-swap on the service's version, which makes taking the release lock
// atomic across terminals and CI jobs. A Journal that is also a Mirror keeps a copy on the canary, where a
// release is still found when the stable service's labels are replaced.
type Journal interface {
	// ReadState returns service's release record (nil if none), the pending request from another
	// process ("" if none) and the version they were read at.
	ReadState(ctx context.Context, service string) (record []byte, request string, version uint64, err error)
	// WriteState stores record and request if service is still at version. It returns false, and
	// changes nothing, if the service changed since: read again and retry.
	WriteState(ctx context.Context, service string, version uint64, record []byte, request string) (bool, error)
}

// Mirror keeps a copy of the release record on the canary service. `docker stack deploy` of the stable
// service's stack, or `docker service update --label-rm`, replaces the stable service's labels and with
// them the record; the canary, which no stack file names, keeps its copy, from which any process finds the
// release again (and writes it back on the stable service with its next write).
type Mirror interface {
	// MirrorState stores record on the canary service; a canary that is gone is not an error.
	MirrorState(ctx context.Context, canary string, record []byte) error
	// MirroredState returns the copy kept on stable's canary; nil if there is no canary or no copy.
	MirroredState(ctx context.Context, stable string) ([]byte, error)
}

// Command is a request to a running release, from an operator or another process.
type Command string

// The commands a release obeys.
const (
	// CommandAbort: traffic back to stable now, canary removed.
	CommandAbort Command = "abort"
	// CommandPromote: skip the remaining steps and promote now.
	CommandPromote Command = "promote"
	// CommandRollback: send traffic back to the warm standby of the previous version and put the
	// stable service back on its previous image.
	CommandRollback Command = "rollback"
	// CommandPause stops the bake's clock: traffic stays where it is and early looks go on (a failing
	// canary is still aborted) until CommandContinue.
	CommandPause Command = "pause"
	// CommandContinue restarts a paused bake's clock.
	CommandContinue Command = "continue"
	// CommandSkip ends the current bake now: the step is judged on what it has.
	CommandSkip Command = "skip"
	// CommandNudgeUp and CommandNudgeDown move the current step's canary share by NudgeStep points; the
	// step's window starts again at the new share.
	CommandNudgeUp   Command = "nudge-up"
	CommandNudgeDown Command = "nudge-down"
	// CommandNudgeUpPastPlan is a nudge up that an operator confirmed may take the canary beyond the
	// last planned step's share; a plain CommandNudgeUp stops there.
	CommandNudgeUpPastPlan Command = "nudge-up-past-plan"
)

// NudgeStep is how many percentage points a nudge moves the canary's share.
const NudgeStep = 5

// bakeCommand reports whether c steers a bake rather than ending the phase.
func bakeCommand(c Command) bool {
	switch c {
	case CommandPause, CommandContinue, CommandSkip, CommandNudgeUp, CommandNudgeDown, CommandNudgeUpPastPlan:
		return true
	}
	return false
}

// VerdictSummary is what a Record keeps of a step's verdict.
type VerdictSummary struct {
	Step   int            `json:"step"`
	Result verdict.Result `json:"result"`
	Reason string         `json:"reason"`
}

// Record is a release's state as kept in Swarm: enough for any process to show it, and to resume,
// abort or promote it after the process that started it died.
type Record struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	StableImage string `json:"stable_image"`
	Image       string `json:"image"`
	// Target and StableTarget are, for a release of a whole spec (from a stack file), the references
	// to the spec released and to the one stable ran before (see Rollout); empty for an image release.
	Target       string    `json:"target,omitempty"`
	StableTarget string    `json:"stable_target,omitempty"`
	Canary       string    `json:"canary,omitempty"`
	Steps        []float64 `json:"steps"`
	// Step is the 1-based step being baked; 0 before the first.
	Step          int            `json:"step"`
	CanaryPercent float64        `json:"canary_percent"`
	Weights       map[string]int `json:"weights,omitempty"`
	Phase         Phase          `json:"phase"`
	Outcome       Outcome        `json:"outcome,omitempty"`
	// Cause says why an aborting release aborts: analysis, inconclusive, operator or error.
	Cause       string          `json:"cause,omitempty"`
	Message     string          `json:"message,omitempty"`
	LastVerdict *VerdictSummary `json:"last_verdict,omitempty"`
	// Sequence is the release's sequential analysis as of the last write: the evidence the looks have
	// gathered, over every step, so that a process taking the release over goes on spending the same
	// budget instead of starting a new one.
	Sequence *verdict.Sequence `json:"sequence,omitempty"`
	// Verdict is the last verdict in full, with its evidence, for a display in another process.
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
	// BakeUntil is when the current step's bake ends; Paused says an operator stopped its clock.
	BakeUntil *time.Time `json:"bake_until,omitempty"`
	Paused    bool       `json:"paused,omitempty"`
	// VerdictAt is when the last verdict was made, so that its age shows.
	VerdictAt *time.Time `json:"verdict_at,omitempty"`
	// Gate says every step passed and the release waits at the promotion gate.
	Gate bool `json:"gate,omitempty"`
	// Held says the release waits for a human (paused, or at the gate) while its process watches the
	// canary with early looks; a process that takes it over watches it too, and judges a fresh window
	// before promoting it.
	Held bool `json:"held,omitempty"`
	// StandbyUntil is when the warm standby of the previous version goes, in phase standby.
	StandbyUntil *time.Time `json:"standby_until,omitempty"`
	// Progress is the last sub-step of a promotion or rollback that is done, so that a process taking
	// the release over goes on from there instead of doing it again (or undoing it).
	Progress  Progress  `json:"progress,omitempty"`
	StartedBy string    `json:"started_by"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Owner identifies the process driving the release; it changes when another process takes over. It
	// is empty while no process drives an active release: paused, or halted for an operator.
	Owner string `json:"owner"`
	// Recovered says the record was not on the stable service (its labels were replaced) and was found
	// on the canary instead. It is not stored.
	Recovered bool `json:"-"`
}

// Active reports whether the release has not ended, so that it holds the service's release lock.
func (r *Record) Active() bool { return r != nil && r.Phase != "" && !r.Phase.Done() }

// ParseRecord reads a record as stored by the journal; nil, nil when there is none. A record that does
// not parse, or that no fridaymorning could have written (an unknown phase; a release in progress
// without an ID or with a step beyond its steps; steps still to bake that are unusable), is an error:
// acting on it could not end well.
func ParseRecord(raw []byte) (*Record, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("release: the stored release record is unreadable: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("release: the stored release record is inconsistent: %w", err)
	}
	return &r, nil
}

// phases are the phases a record may be in.
var phases = map[Phase]bool{PhasePreflight: true, PhaseStarting: true, PhaseBaking: true, PhasePromoting: true, PhaseAborting: true,
	PhaseStandby: true, PhaseRollingBack: true, PhasePromoted: true, PhaseAborted: true, PhaseRolledBack: true, PhaseFailed: true}

// check says what makes r a record no fridaymorning writes.
func (r *Record) check() error {
	switch {
	case !phases[r.Phase]:
		return fmt.Errorf("phase %q is none that fridaymorning knows", r.Phase)
	case !r.Active():
		return nil
	case r.ID == "":
		return errors.New("a release in progress without an ID")
	case r.Step < 0 || r.Step > len(r.Steps):
		return fmt.Errorf("step %d of %d", r.Step, len(r.Steps))
	case math.IsNaN(r.CanaryPercent) || r.CanaryPercent < 0 || r.CanaryPercent > 100:
		return fmt.Errorf("the canary's share is %g%%", r.CanaryPercent)
	}
	if r.Phase == PhasePreflight || r.Phase == PhaseStarting || r.Phase == PhaseBaking {
		// Steps still to bake: taking the release over bakes them.
		return ValidateSteps(r.Steps)
	}
	return nil
}

// recordKeeper is what a Journal may also do: say where it keeps service's record and how an operator
// clears one that cannot be read.
type recordKeeper interface {
	RecordHint(service string) string
}

// parseStored is ParseRecord for service's record as read from j, with an error that says where the
// record is kept and how to clear it.
func parseStored(j Journal, service string, raw []byte) (*Record, error) {
	rec, err := ParseRecord(raw)
	if err == nil {
		return rec, nil
	}
	hint := "once no release of " + service + " runs, clear it"
	if k, ok := j.(recordKeeper); ok {
		hint = k.RecordHint(service)
	}
	return nil, fmt.Errorf("%w: it is service %s's: %s", err, service, hint)
}

// Summary is one line about the release for messages: "r… (phase baking, step 2/3, started by … at …)".
func (r *Record) Summary() string {
	parts := []string{"phase " + string(r.Phase)}
	if r.Phase == PhaseBaking && r.Step > 0 {
		parts = append(parts, fmt.Sprintf("step %d/%d", r.Step, len(r.Steps)))
	}
	parts = append(parts, fmt.Sprintf("started by %s at %s", r.StartedBy, r.StartedAt.UTC().Format(time.RFC3339)))
	return fmt.Sprintf("%s of %s (%s)", r.ID, r.Image, strings.Join(parts, ", "))
}

// ErrNoRelease is returned when a service has no release in progress to act on.
var ErrNoRelease = errors.New("no release in progress")

// casRecord applies change to service's record until the write lands (Swarm's version moves with every
// write, ours or anyone's). change sees the current record and request and returns the new ones, or an
// error to stop.
func casRecord(ctx context.Context, j Journal, service string, change func(cur *Record, request string) (*Record, string, error)) (*Record, error) {
	for attempt := 0; ; attempt++ {
		raw, req, version, err := j.ReadState(ctx, service)
		if err != nil {
			return nil, err
		}
		cur, err := parseStored(j, service, raw)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			if cur, err = mirrored(ctx, j, service); err != nil {
				return nil, err
			}
		}
		next, nextReq, err := change(cur, req)
		if err != nil {
			return cur, err
		}
		out, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		ok, err := j.WriteState(ctx, service, version, out, nextReq)
		if err != nil {
			return nil, err
		}
		if ok {
			return next, nil
		}
		if attempt >= 50 {
			return nil, fmt.Errorf("release: the release record of %s keeps changing under us", service)
		}
		if !sleepCtx(ctx, time.Duration(10+attempt*10)*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// mirrored is the copy of service's record kept on its canary, marked Recovered; nil if j keeps none.
func mirrored(ctx context.Context, j Journal, service string) (*Record, error) {
	m, ok := j.(Mirror)
	if !ok {
		return nil, nil
	}
	raw, err := m.MirroredState(ctx, service)
	if err != nil {
		return nil, err
	}
	rec, err := ParseRecord(raw)
	if err != nil || rec == nil || rec.Service != service {
		return nil, err
	}
	rec.Recovered = true
	return rec, nil
}

// Request asks the process driving service's release to carry out cmd. It returns the record as it
// stood, or ErrNoRelease. A pending abort is never replaced by another request: an abort always wins.
func Request(ctx context.Context, j Journal, service string, cmd Command) (*Record, error) {
	return casRecord(ctx, j, service, func(cur *Record, req string) (*Record, string, error) {
		if !cur.Active() {
			return nil, "", fmt.Errorf("release: service %s: %w", service, ErrNoRelease)
		}
		if Command(req) == CommandAbort {
			return cur, req, nil
		}
		return cur, string(cmd), nil
	})
}

// Load returns service's release record, nil if it never had one. When the stable service has none but
// its canary keeps a copy (a Mirror), that copy is returned, marked Recovered.
func Load(ctx context.Context, j Journal, service string) (*Record, error) {
	raw, _, _, err := j.ReadState(ctx, service)
	if err != nil {
		return nil, err
	}
	rec, err := parseStored(j, service, raw)
	if err != nil || rec != nil {
		return rec, err
	}
	return mirrored(ctx, j, service)
}

// RecordEvents turns the change of a release record from prev to cur into the events a display folds,
// for a front end that follows a release another process drives (fridaymorning watch).
func RecordEvents(prev, cur *Record, now time.Time) []Event {
	base := Event{Time: now, Phase: cur.Phase, ReleaseID: cur.ID, Service: cur.Service, Canary: cur.Canary,
		Image: cur.Image, StableImage: cur.StableImage, StartedBy: cur.StartedBy, StartedAt: cur.StartedAt,
		Steps: len(cur.Steps), Plan: cur.Steps, Step: cur.Step}
	with := func(f func(*Event)) Event { e := base; f(&e); return e }
	var out []Event
	if prev == nil || prev.ID != cur.ID {
		out = append(out, with(func(e *Event) {
			e.Kind, e.Message = KindStarted, fmt.Sprintf("watching %s (%s), started by %s", cur.ID, cur.Summary(), cur.StartedBy)
		}))
		prev = &Record{}
	}
	if prev.Phase != cur.Phase || prev.Step != cur.Step || prev.Message != cur.Message {
		out = append(out, with(func(e *Event) { e.Kind, e.Message = KindPhase, cur.Message }))
	}
	if prev.CanaryPercent != cur.CanaryPercent || fmt.Sprint(prev.Weights) != fmt.Sprint(cur.Weights) {
		out = append(out, with(func(e *Event) {
			e.Kind, e.CanaryPercent, e.AchievedPercent, e.Weights = KindTraffic, cur.CanaryPercent, cur.CanaryPercent, cur.Weights
			e.Message = fmt.Sprintf("canary gets %v%% of requests", cur.CanaryPercent)
		}))
	}
	untilChanged := (prev.BakeUntil == nil) != (cur.BakeUntil == nil) || prev.BakeUntil != nil && cur.BakeUntil != nil && !prev.BakeUntil.Equal(*cur.BakeUntil)
	if cur.BakeUntil != nil && (untilChanged || prev.Paused != cur.Paused) {
		until := *cur.BakeUntil
		if cur.Paused {
			out = append(out, with(func(e *Event) {
				e.Kind, e.Until, e.Message = KindBake, until, ""
			}), with(func(e *Event) {
				e.Kind, e.Command, e.Message = KindControl, CommandPause, "paused by an operator"
			}))
		} else {
			out = append(out, with(func(e *Event) { e.Kind, e.Until, e.Message = KindBake, until, "" }))
		}
	}
	if cur.Verdict != nil && (prev.Verdict == nil || prev.Verdict.Reason != cur.Verdict.Reason || prev.LastVerdict != nil && cur.LastVerdict != nil && *prev.LastVerdict != *cur.LastVerdict) {
		v := *cur.Verdict
		out = append(out, with(func(e *Event) {
			e.Kind, e.Verdict, e.Message = KindAnalysis, &v, string(v.Result)+": "+v.Reason
			if cur.LastVerdict != nil {
				e.Step = cur.LastVerdict.Step
			}
		}))
	}
	if !cur.Active() && (prev.Active() || prev.Phase == "") {
		out = append(out, with(func(e *Event) { e.Kind, e.Outcome, e.Message = KindFinished, cur.Outcome, cur.Message }))
	}
	return out
}
