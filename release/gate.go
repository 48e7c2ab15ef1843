package release

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GatePoint is where in a release a gate is asked (Flagger's webhook names).
type GatePoint string

// The points a release asks its gates at.
const (
	// GatePreRollout: the canary runs and is healthy but has no traffic yet: the place for a smoke test
	// or a short load test against it. A gate that stays shut aborts the release.
	GatePreRollout GatePoint = "pre_rollout"
	// GateConfirmPromotion: every step passed; the automatic promotion waits until the gate opens, and
	// aborts when it stays shut past its timeout. An operator's explicit promote is its own confirmation.
	GateConfirmPromotion GatePoint = "confirm_promotion"
	// GatePostRollout: the release ended (GateRequest.Outcome says how); what the gate answers is only
	// reported.
	GatePostRollout GatePoint = "post_rollout"
)

// GateRequest is what a gate is told of the release.
type GateRequest struct {
	Point       GatePoint `json:"point"`
	ReleaseID   string    `json:"release"`
	Service     string    `json:"service"`
	Canary      string    `json:"canary"`
	Image       string    `json:"image"`
	StableImage string    `json:"stable_image"`
	// Step is the step being worked on (1-based, 0 before the first); Steps their number.
	Step, Steps   int
	CanaryPercent float64 `json:"canary_percent"`
	// Outcome is set for GatePostRollout.
	Outcome Outcome `json:"outcome,omitempty"`
}

// Gate is an outside check a release waits on: an HTTP endpoint or a command.
type Gate interface {
	// Open asks whether the release may go on. A nil error opens the gate; any other error is the
	// gate's answer (what it said, or why it could not be asked) and keeps it shut.
	Open(ctx context.Context, r GateRequest) error
}

// GateConfig places a gate in a release.
type GateConfig struct {
	// Name names the gate in events and reasons.
	Name  string
	Point GatePoint
	Gate  Gate
	// Timeout bounds how long the release waits for the gate to open (default 1m); Interval is the pause
	// between two asks (default 5s). Each ask is bounded by what is left of Timeout.
	Timeout, Interval time.Duration
}

// ErrGateShut is returned (wrapped, with the gate's last answer) when a gate stayed shut past its timeout.
var ErrGateShut = errors.New("gate stayed shut")

// gates asks every gate at point in turn, each until it opens, its timeout passes or ctx ends; it
// reports each gate's answer as events. The error names the gate that stayed shut and its last answer.
func (e *Engine) gates(ctx context.Context, st *state, point GatePoint, outcome Outcome) error {
	for _, g := range e.deps.Gates {
		if g.Point != point {
			continue
		}
		timeout, interval := g.Timeout, g.Interval
		if timeout <= 0 {
			timeout = time.Minute
		}
		if interval <= 0 {
			interval = 5 * time.Second
		}
		req := GateRequest{Point: point, ReleaseID: e.cfg.ReleaseID, Service: e.cfg.Service, Canary: st.canary, Image: e.cfg.Image,
			StableImage: e.stableImage, Steps: len(e.cfg.Steps), CanaryPercent: st.canaryPercent, Outcome: outcome}
		if st.phase == PhaseBaking {
			req.Step = st.step + 1
		}
		gctx, cancel := context.WithTimeout(ctx, timeout)
		err := e.askGate(gctx, st, g, req, interval)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s gate %s: %w after %s: %v", point, g.Name, ErrGateShut, timeout, err)
		}
	}
	return nil
}

func (e *Engine) askGate(ctx context.Context, st *state, g GateConfig, req GateRequest, interval time.Duration) error {
	e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("asking the %s gate %s", g.Point, g.Name)})
	for {
		err := g.Gate.Open(ctx, req)
		if err == nil {
			e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("%s gate %s is open", g.Point, g.Name)})
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		e.send(st, Event{Kind: KindProgress, Message: fmt.Sprintf("%s gate %s is shut (%v): asking again in %s", g.Point, g.Name, err, interval)})
		if !sleepCtx(ctx, interval) {
			return err
		}
	}
}
