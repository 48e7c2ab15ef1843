package headless

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// Keys of the text output. They are part of fridaymorning's interface: CI jobs grep for them.
const (
	KeyEvent    = "event"
	KeyRelease  = "release"
	KeyPhase    = "phase"
	KeyStep     = "step"
	KeyCanary   = "canary"
	KeyAchieved = "achieved"
	KeyWeights  = "weights"
	KeyUntil    = "until"
	KeyResult   = "result"
	KeyOutcome  = "outcome"
	KeyCheck    = "check"
	KeyObserved = "observed"
)

// NewLogger returns a logger that writes the text output's logfmt lines to w: a UTC time with
// milliseconds, no level. The commands that print lines of their own (a request sent to the process
// driving a release, the drill's scorecard) use it, so that all the lines read alike.
func NewLogger(w io.Writer) *slog.Logger {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch a.Key {
		case slog.LevelKey:
			return slog.Attr{}
		case slog.TimeKey:
			return slog.String(slog.TimeKey, a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		return a
	}})
	return slog.New(h)
}

// text renders release events as one logfmt line each, for CI logs and other terminals without a UI:
// "time=… event=traffic release=r… phase=baking step=1/3 canary=10% achieved=10% weights=… msg=…".
// Analysis events are followed by one "event=check" line per criterion, with its numbers.
type text struct {
	log *slog.Logger
}

func newText(w io.Writer) *text { return &text{log: NewLogger(w)} }

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// Event prints ev.
func (h *text) Event(ev release.Event) {
	if ev.Kind == release.KindLook {
		// Early looks that find nothing come every few seconds: progress lines already say the bake goes on.
		return
	}
	attrs := []any{KeyEvent, string(ev.Kind), KeyRelease, ev.ReleaseID, KeyPhase, string(ev.Phase)}
	if ev.Step > 0 {
		attrs = append(attrs, KeyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps))
	}
	switch ev.Kind {
	case release.KindTraffic:
		attrs = append(attrs, KeyCanary, pct(ev.CanaryPercent), KeyAchieved, pct(roundTo(ev.AchievedPercent, 2)),
			KeyWeights, release.FormatWeights(ev.Weights))
	case release.KindBake:
		attrs = append(attrs, KeyCanary, pct(ev.CanaryPercent), KeyUntil, ev.Until.UTC().Format(time.RFC3339))
	case release.KindAnalysis:
		v := ev.Verdict
		attrs = append(attrs, KeyCanary, pct(ev.CanaryPercent))
		if o := ev.Observed; o != nil {
			attrs = append(attrs, KeyObserved, pct(roundTo(o.Percent(), 2)), "observed.canary", o.Canary, "observed.stable", o.Stable)
		}
		attrs = append(attrs, KeyResult, string(v.Result))
		if v.Early {
			attrs = append(attrs, "early", true)
		}
		if v.Result == verdict.ResultInconclusive && v.More != 0 {
			attrs = append(attrs, "more_requests", v.More)
			if v.Wait > 0 {
				attrs = append(attrs, "more_time", v.Wait.String())
			}
		}
		attrs = append(attrs,
			"canary.requests", v.Canary.Requests, "canary.error_rate", pct(roundTo(v.Canary.ErrorRate, 2)),
			"canary.p50", ms(v.Canary.P50), "canary.p95", ms(v.Canary.P95), "canary.p99", ms(v.Canary.P99),
			"stable.requests", v.Stable.Requests, "stable.error_rate", pct(roundTo(v.Stable.ErrorRate, 2)),
			"stable.p50", ms(v.Stable.P50), "stable.p95", ms(v.Stable.P95), "stable.p99", ms(v.Stable.P99))
	case release.KindFinished:
		attrs = append(attrs, KeyOutcome, string(ev.Outcome))
	}
	h.log.Info(ev.Message, attrs...)
	for _, c := range ev.Changes {
		h.log.Info(c.String(), KeyEvent, "change", KeyRelease, ev.ReleaseID, "field", c.Field, "from", c.From, "to", c.To)
	}
	if ev.Kind == release.KindAnalysis {
		for _, c := range ev.Verdict.Checks {
			h.log.Info(c.Detail, KeyEvent, "check", KeyRelease, ev.ReleaseID, KeyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps),
				KeyCheck, c.Name, KeyResult, string(c.Result), "canary", roundTo(c.Canary, 3), "stable", roundTo(c.Stable, 3),
				"limit", roundTo(c.Limit, 3), "unit", c.Unit)
			if c.Test != "" && c.Test != "threshold" {
				h.log.Info(c.Statistic, KeyEvent, "evidence", KeyRelease, ev.ReleaseID, KeyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps),
					KeyCheck, c.Name, "test", c.Test, "p", sig(c.PValue), "alpha", sig(c.Alpha), "canary_n", c.CanaryN, "stable_n", c.StableN)
			}
		}
	}
}

// sig renders a probability with three significant digits: 0.0219, 4.4e-15.
func sig(p float64) string { return strconv.FormatFloat(p, 'g', 3, 64) }

func roundTo(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

// jsonLines writes one JSON object per event.
type jsonLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newJSONLines(w io.Writer) *jsonLines { return &jsonLines{enc: json.NewEncoder(w)} }

// jsonEvent is the JSON form of an event. Its field names are part of fridaymorning's interface.
type jsonEvent struct {
	Time        time.Time         `json:"time"`
	Event       release.Kind      `json:"event"`
	Release     string            `json:"release"`
	Service     string            `json:"service"`
	Phase       release.Phase     `json:"phase"`
	Step        int               `json:"step,omitempty"`
	Steps       int               `json:"steps,omitempty"`
	Image       string            `json:"image,omitempty"`
	StableImage string            `json:"stable_image,omitempty"`
	Canary      *float64          `json:"canary_percent,omitempty"`
	Achieved    *float64          `json:"achieved_percent,omitempty"`
	Weights     map[string]int    `json:"weights,omitempty"`
	Until       *time.Time        `json:"until,omitempty"`
	Observed    *release.Observed `json:"observed,omitempty"`
	Verdict     *verdict.Verdict  `json:"verdict,omitempty"`
	Outcome     release.Outcome   `json:"outcome,omitempty"`
	Changes     []release.Change  `json:"changes,omitempty"`
	Message     string            `json:"message,omitempty"`
}

// Event prints ev as one JSON object; early looks are left out, as in the text output.
func (j *jsonLines) Event(ev release.Event) {
	if ev.Kind == release.KindLook {
		return
	}
	out := jsonEvent{Time: ev.Time.UTC(), Event: ev.Kind, Release: ev.ReleaseID, Service: ev.Service, Phase: ev.Phase,
		Step: ev.Step, Steps: ev.Steps, Image: ev.Image, StableImage: ev.StableImage, Weights: ev.Weights,
		Observed: ev.Observed, Verdict: ev.Verdict, Outcome: ev.Outcome, Changes: ev.Changes, Message: ev.Message}
	switch ev.Kind {
	case release.KindTraffic, release.KindAnalysis, release.KindBake:
		c, a := ev.CanaryPercent, ev.AchievedPercent
		out.Canary = &c
		if ev.Kind == release.KindTraffic {
			out.Achieved = &a
		}
	}
	if !ev.Until.IsZero() {
		u := ev.Until.UTC()
		out.Until = &u
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(out)
}
