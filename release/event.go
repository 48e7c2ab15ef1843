package release

import (
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Phase is where a release stands. A release moves forward through the phases
// preflight → starting → baking (once per step) → promoting, and from any of the middle ones to aborting;
// it ends in promoted, aborted or failed. With a warm standby, promoting leads to standby (the previous
// version kept running at weight 0), which ends in promoted when its time is up, or in rolled-back
// through rolling-back.
type Phase string

// The phases of a release.
const (
	PhasePreflight   Phase = "preflight"
	PhaseStarting    Phase = "starting"
	PhaseBaking      Phase = "baking"
	PhasePromoting   Phase = "promoting"
	PhaseAborting    Phase = "aborting"
	PhaseStandby     Phase = "standby"
	PhaseRollingBack Phase = "rolling-back"
	PhasePromoted    Phase = "promoted"
	PhaseAborted     Phase = "aborted"
	PhaseRolledBack  Phase = "rolled-back"
	PhaseFailed      Phase = "failed"
)

// Done reports whether the phase is a final one.
func (p Phase) Done() bool {
	return p == PhasePromoted || p == PhaseAborted || p == PhaseRolledBack || p == PhaseFailed
}

// Kind says what an Event reports.
type Kind string

// The kinds of events the engine emits.
const (
	// KindStarted: the release begins; Message names service and images.
	KindStarted Kind = "started"
	// KindPreflight: a preflight check passed (Message names it).
	KindPreflight Kind = "preflight"
	// KindCanaryCreated: the canary service exists (Canary names it).
	KindCanaryCreated Kind = "canary-created"
	// KindProgress: a long wait made progress (Message says what it waits for and where it stands).
	KindProgress Kind = "progress"
	// KindCanaryReady: the canary's tasks run, are healthy and pass the load balancer's checks.
	KindCanaryReady Kind = "canary-ready"
	// KindTraffic: weights changed (CanaryPercent requested, AchievedPercent read back, Weights).
	KindTraffic Kind = "traffic"
	// KindBake: a step's bake started or was extended (Until says when it ends).
	KindBake Kind = "bake"
	// KindLook: an early look during a bake found nothing to abort for (Verdict, Early): live numbers
	// for a display; a failing look is a KindAnalysis.
	KindLook Kind = "look"
	// KindAnalysis: a step was judged (Verdict).
	KindAnalysis Kind = "analysis"
	// KindPhase: the release entered a new phase (Message says why).
	KindPhase Kind = "phase"
	// KindControl: an operator steered a bake (Command says how: paused, continued, skipped; Message
	// says it in words).
	KindControl Kind = "control"
	// KindWarning: something went wrong that the engine worked around (Message).
	KindWarning Kind = "warning"
	// KindFinished: the release ended (Outcome, Message).
	KindFinished Kind = "finished"
)

// Outcome is how a release ended.
type Outcome string

// The outcomes of a release.
const (
	// OutcomePromoted: the stable service runs the new image and carries all traffic.
	OutcomePromoted Outcome = "promoted"
	// OutcomeAbortedAnalysis: the canary was judged bad (failed analysis, or it never became healthy);
	// traffic is back on the untouched stable service and the canary is gone.
	OutcomeAbortedAnalysis Outcome = "aborted-analysis"
	// OutcomeAbortedInconclusive: the analysis could not decide within the allowed extensions (too
	// little traffic, no data, metrics store unreachable); aborted, since no data never counts as healthy.
	OutcomeAbortedInconclusive Outcome = "aborted-inconclusive"
	// OutcomePaused: the analysis stayed inconclusive and the policy is to wait for a human: the
	// release stays where it stands (canary serving its share) until `fridaymorning promote`, `abort` or
	// `resume`.
	OutcomePaused Outcome = "paused"
	// OutcomeAbortedOperator: someone stopped the release (signal, key); aborted safely.
	OutcomeAbortedOperator Outcome = "aborted-operator"
	// OutcomeRolledBack: the release was promoted, then rolled back to the warm standby of the previous
	// version: the stable service runs its previous image again.
	OutcomeRolledBack Outcome = "rolled-back"
	// OutcomeAbortedError: the release could not go on for an error (an API that failed, a record that
	// was removed) and was aborted: traffic is back on the untouched stable service and the canary is
	// gone; Message says what failed.
	OutcomeAbortedError Outcome = "aborted-error"
	// OutcomeUnlocked: an operator cleared a release that could not be carried on with `fridaymorning
	// unlock`; traffic is on what was healthy and Message says what runs.
	OutcomeUnlocked Outcome = "unlocked"
	// OutcomeFailed: the release could not be carried out (bad input, unreachable API, stable update
	// failure); Message says what state it left behind and what to do.
	OutcomeFailed Outcome = "failed"
)

// Aborted reports whether o is an abort carried out to its end: traffic back on stable, canary removed.
func (o Outcome) Aborted() bool {
	switch o {
	case OutcomeAbortedAnalysis, OutcomeAbortedInconclusive, OutcomeAbortedOperator, OutcomeAbortedError:
		return true
	}
	return false
}

// Observed is a step's split as the load balancer counted it: responses by group during the step.
type Observed struct {
	Canary, Stable int64
}

// Percent is the canary's observed share, in percent; 0 when nothing was counted.
func (o Observed) Percent() float64 {
	if o.Canary+o.Stable == 0 {
		return 0
	}
	return 100 * float64(o.Canary) / float64(o.Canary+o.Stable)
}

// Event is one thing that happened in a release. Fields that do not apply to its Kind are zero.
type Event struct {
	Time      time.Time
	Kind      Kind
	Phase     Phase
	ReleaseID string
	Service   string
	Canary    string
	// Image is the image being released, StableImage what stable ran when the release began ("" until
	// known); StartedBy and StartedAt say who started the release and when (zero until the lock is taken).
	Image, StableImage string
	StartedBy          string
	StartedAt          time.Time
	// Step is the 1-based step being worked on, 0 outside the steps; Steps is their number, Plan their
	// shares, Bake each step's bake.
	Step, Steps     int
	Plan            []float64
	Bake            time.Duration
	CanaryPercent   float64
	AchievedPercent float64
	Weights         map[string]int
	Until           time.Time
	Verdict         *verdict.Verdict
	// Observed is a step's split counted by the load balancer, on analysis events.
	Observed *Observed
	Outcome  Outcome
	// Command is, on a KindControl event, the operator's command the bake carried out.
	Command Command
	// Changes are, on a KindPreflight event, the differences between the stable service's spec and
	// the one released (a release from a stack file), for people to review.
	Changes []Change
	Message string
}

// Change is one difference between the stable service's spec and the spec released: Field names what
// changes ("image", "env DATABASE_POOL", "config /etc/app.yml"), From and To the values before and
// after ("" when the field is added or removed).
type Change struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// String says the change in one line: "env DATABASE_POOL: 10 → 20", "+ env DEBUG: 1", "- secret db: …".
func (c Change) String() string {
	switch {
	case c.From == "":
		return "+ " + c.Field + ": " + c.To
	case c.To == "":
		return "- " + c.Field + ": " + c.From
	}
	return c.Field + ": " + c.From + " → " + c.To
}
