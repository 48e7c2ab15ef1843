package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// Flags shared by the commands that carry a release out (release, resume, abort, promote, rollback).
var (
	outputFlag = "text"
	reportFlag string
	dotenvFlag string
)

// lines is where headless output goes: logfmt text or JSON lines.
type lines interface {
	Event(ev release.Event)
}

// newLines returns the headless output --output asks for, with GitLab's collapsible sections around
// each step when running in GitLab CI (text only: JSON lines stay one object per line).
func newLines(w io.Writer) (lines, error) {
	switch outputFlag {
	case "", "text":
		h := newHeadless(w)
		if os.Getenv("GITLAB_CI") == "true" {
			return &sections{w: w, next: h}, nil
		}
		return h, nil
	case "json":
		return &jsonLines{enc: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("--output %q: want text or json", outputFlag)
}

// jsonLines writes one JSON object per event.
type jsonLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

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
	Message     string            `json:"message,omitempty"`
}

func (j *jsonLines) Event(ev release.Event) {
	if ev.Kind == release.KindLook {
		return
	}
	out := jsonEvent{Time: ev.Time.UTC(), Event: ev.Kind, Release: ev.ReleaseID, Service: ev.Service, Phase: ev.Phase,
		Step: ev.Step, Steps: ev.Steps, Image: ev.Image, StableImage: ev.StableImage, Weights: ev.Weights,
		Observed: ev.Observed, Verdict: ev.Verdict, Outcome: ev.Outcome, Message: ev.Message}
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

// sections wraps text output in GitLab CI's collapsible sections: one per step, and one each for
// starting, promoting and aborting.
// https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections
type sections struct {
	mu   sync.Mutex
	w    io.Writer
	next lines
	open string
}

// sectionFor names the section an event belongs to and gives its header.
func sectionFor(ev release.Event) (name, header string) {
	switch ev.Phase {
	case release.PhasePreflight, release.PhaseStarting:
		return "fridaymorning_start", "fridaymorning: preflight and canary start"
	case release.PhaseBaking:
		if ev.Step > 0 {
			share := ""
			if ev.Step <= len(ev.Plan) {
				share = fmt.Sprintf(" (%s%%)", strings.TrimSuffix(pct(ev.Plan[ev.Step-1]), "%"))
			}
			return fmt.Sprintf("fridaymorning_step_%d", ev.Step), fmt.Sprintf("fridaymorning: step %d of %d%s", ev.Step, ev.Steps, share)
		}
	case release.PhasePromoting, release.PhaseStandby:
		return "fridaymorning_promote", "fridaymorning: promotion"
	case release.PhaseAborting, release.PhaseRollingBack:
		return "fridaymorning_abort", "fridaymorning: " + strings.TrimSuffix(string(ev.Phase), "ing") + "ing back to stable"
	}
	return "", ""
}

func (s *sections) Event(ev release.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, header := sectionFor(ev)
	if ev.Kind == release.KindFinished {
		name = ""
	}
	if name != s.open {
		now := time.Now().Unix()
		if s.open != "" {
			fmt.Fprintf(s.w, "\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", now, s.open)
		}
		if name != "" {
			fmt.Fprintf(s.w, "\x1b[0Ksection_start:%d:%s[collapsed=false]\r\x1b[0K%s\n", now, name, header)
		}
		s.open = name
	}
	s.next.Event(ev)
}

// junit collects each step's analyses and writes them as a JUnit XML report: one test case per
// analysis (a failed one carries the evidence), and one for the release's outcome.
type junit struct {
	mu       sync.Mutex
	release  string
	service  string
	started  time.Time
	cases    []junitCase
	outcome  release.Outcome
	message  string
	lastTime time.Time
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func (j *junit) Event(ev release.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.release == "" {
		j.release, j.service = ev.ReleaseID, ev.Service
	}
	if j.started.IsZero() {
		j.started = ev.Time
	}
	if j.lastTime.IsZero() {
		j.lastTime = ev.Time
	}
	switch ev.Kind {
	case release.KindAnalysis:
		v := ev.Verdict
		if v == nil {
			return
		}
		name := fmt.Sprintf("step %d of %d: %s%% to the canary", ev.Step, ev.Steps, strings.TrimSuffix(pct(ev.CanaryPercent), "%"))
		if v.Early {
			name += " (early look)"
		}
		c := junitCase{Name: name, Classname: "fridaymorning." + j.service, Time: secs(ev.Time.Sub(j.lastTime)), SystemOut: evidence(v)}
		switch v.Result {
		case verdict.ResultFail:
			c.Failure = &junitMessage{Message: v.Reason, Type: "fail", Text: evidence(v)}
		case verdict.ResultInconclusive:
			c.Skipped = &junitMessage{Message: "inconclusive: " + v.Reason}
		}
		j.cases = append(j.cases, c)
		j.lastTime = ev.Time
	case release.KindFinished:
		j.outcome, j.message = ev.Outcome, ev.Message
		c := junitCase{Name: "outcome: " + string(ev.Outcome), Classname: "fridaymorning." + j.service, Time: secs(ev.Time.Sub(j.started)), SystemOut: ev.Message}
		switch ev.Outcome {
		case release.OutcomePromoted:
		case release.OutcomePaused:
			c.Skipped = &junitMessage{Message: ev.Message}
		default:
			c.Failure = &junitMessage{Message: ev.Message, Type: string(ev.Outcome), Text: ev.Message}
		}
		j.cases = append(j.cases, c)
	}
}

// evidence is a verdict's checks as text: one line each, with the test behind it.
func evidence(v *verdict.Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", v.Result, v.Reason)
	fmt.Fprintf(&b, "canary: %d requests, %.2f%% errors, p50 %s p95 %s p99 %s\n", v.Canary.Requests, v.Canary.ErrorRate, v.Canary.P50, v.Canary.P95, v.Canary.P99)
	fmt.Fprintf(&b, "stable: %d requests, %.2f%% errors, p50 %s p95 %s p99 %s\n", v.Stable.Requests, v.Stable.ErrorRate, v.Stable.P50, v.Stable.P95, v.Stable.P99)
	for _, c := range v.Checks {
		fmt.Fprintf(&b, "  %-22s %-12s %s\n", c.Name, c.Result, c.Detail)
		if c.Test != "" {
			fmt.Fprintf(&b, "  %-22s %-12s %s: %s (p = %.2g, alpha = %.2g, n = %d / %d)\n", "", "", c.Test, c.Statistic, c.PValue, c.Alpha, c.CanaryN, c.StableN)
		}
	}
	for _, q := range v.Queries {
		fmt.Fprintf(&b, "query:\n%s\n", q)
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", max(d, 0).Seconds()) }

// write writes the report to path.
func (j *junit) write(path string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := junitSuite{Name: fmt.Sprintf("fridaymorning release %s of %s", j.release, j.service), Cases: j.cases, Tests: len(j.cases)}
	if !j.started.IsZero() {
		s.Timestamp = j.started.UTC().Format(time.RFC3339)
		s.Time = secs(j.lastTime.Sub(j.started))
	}
	for _, c := range j.cases {
		if c.Failure != nil {
			s.Failures++
		}
		if c.Skipped != nil {
			s.Skipped++
		}
	}
	out := junitSuites{Name: "fridaymorning", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// writeDotenv writes the outcome for later CI jobs (GitLab's artifacts:reports:dotenv).
func writeDotenv(path string, vars map[string]string) error {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		// dotenv values are single-line; GitLab reads them unquoted.
		fmt.Fprintf(&b, "%s=%s\n", k, strings.Join(strings.Fields(vars[k]), " "))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
