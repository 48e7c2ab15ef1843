package main

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// Keys of the headless output. They are part of fridaymorning's interface: CI jobs grep for them.
const (
	keyEvent    = "event"
	keyRelease  = "release"
	keyPhase    = "phase"
	keyStep     = "step"
	keyCanary   = "canary"
	keyAchieved = "achieved"
	keyWeights  = "weights"
	keyUntil    = "until"
	keyResult   = "result"
	keyOutcome  = "outcome"
	keyCheck    = "check"
	keyObserved = "observed"
)

// headless renders release events as one logfmt line each, for CI logs and other terminals without a
// UI: "time=… event=traffic release=r… phase=baking step=1/3 canary=10% achieved=10% weights=… msg=…".
// Analysis events are followed by one "event=check" line per criterion, with its numbers.
type headless struct {
	log *slog.Logger
}

func newHeadless(w io.Writer) *headless {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch a.Key {
		case slog.LevelKey:
			return slog.Attr{}
		case slog.TimeKey:
			return slog.String(slog.TimeKey, a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		return a
	}})
	return &headless{log: slog.New(h)}
}

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// Event prints ev.
func (h *headless) Event(ev release.Event) {
	if ev.Kind == release.KindLook {
		// Early looks that find nothing come every few seconds: progress lines already say the bake goes on.
		return
	}
	attrs := []any{keyEvent, string(ev.Kind), keyRelease, ev.ReleaseID, keyPhase, string(ev.Phase)}
	if ev.Step > 0 {
		attrs = append(attrs, keyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps))
	}
	switch ev.Kind {
	case release.KindTraffic:
		attrs = append(attrs, keyCanary, pct(ev.CanaryPercent), keyAchieved, pct(roundTo(ev.AchievedPercent, 2)),
			keyWeights, release.FormatWeights(ev.Weights))
	case release.KindBake:
		attrs = append(attrs, keyCanary, pct(ev.CanaryPercent), keyUntil, ev.Until.UTC().Format(time.RFC3339))
	case release.KindAnalysis:
		v := ev.Verdict
		attrs = append(attrs, keyCanary, pct(ev.CanaryPercent))
		if o := ev.Observed; o != nil {
			attrs = append(attrs, keyObserved, pct(roundTo(o.Percent(), 2)), "observed.canary", o.Canary, "observed.stable", o.Stable)
		}
		attrs = append(attrs, keyResult, string(v.Result))
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
		attrs = append(attrs, keyOutcome, string(ev.Outcome))
	}
	h.log.Info(ev.Message, attrs...)
	if ev.Kind == release.KindAnalysis {
		for _, c := range ev.Verdict.Checks {
			h.log.Info(c.Detail, keyEvent, "check", keyRelease, ev.ReleaseID, keyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps),
				keyCheck, c.Name, keyResult, string(c.Result), "canary", roundTo(c.Canary, 3), "stable", roundTo(c.Stable, 3),
				"limit", roundTo(c.Limit, 3), "unit", c.Unit)
			if c.Test != "" && c.Test != "threshold" {
				h.log.Info(c.Statistic, keyEvent, "evidence", keyRelease, ev.ReleaseID, keyStep, fmt.Sprintf("%d/%d", ev.Step, ev.Steps),
					keyCheck, c.Name, "test", c.Test, "p", sig(c.PValue), "alpha", sig(c.Alpha), "canary_n", c.CanaryN, "stable_n", c.StableN)
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
