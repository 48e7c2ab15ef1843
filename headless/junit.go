package headless

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// junit collects each step's analyses and writes them as a JUnit XML report: one test case per
// analysis (a failed one carries the evidence), and one for the release's outcome.
// It is not safe for concurrent use: Printer serializes its calls.
type junit struct {
	release  string
	service  string
	started  time.Time
	cases    []junitCase
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

// Event adds the test case of an analysis or of the release's end.
func (j *junit) Event(ev release.Event) {
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
	case release.KindPreflight:
		if len(ev.Changes) == 0 {
			return
		}
		// The spec difference of a release from a stack file: what the reviewers of the job approve.
		var b strings.Builder
		for _, c := range ev.Changes {
			b.WriteString(c.String() + "\n")
		}
		j.cases = append(j.cases, junitCase{Name: fmt.Sprintf("preflight: %d change(s) to the spec of %s", len(ev.Changes), ev.Service),
			Classname: "fridaymorning." + j.service, Time: secs(ev.Time.Sub(j.lastTime)), SystemOut: b.String()})
		j.lastTime = ev.Time
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
