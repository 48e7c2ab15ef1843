package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

func reportEvents() []release.Event {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	base := release.Event{ReleaseID: "r1", Service: "shop", Steps: 2, Plan: []float64{10, 50}, Image: "shop:v2"}
	e := func(d time.Duration, f func(*release.Event)) release.Event {
		ev := base
		ev.Time = at.Add(d)
		f(&ev)
		return ev
	}
	fail := &verdict.Verdict{Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%", Queries: []string{"SELECT 1"},
		Checks: []verdict.Check{{Name: "error_rate", Result: verdict.ResultFail, Test: "exact binomial", Statistic: "P = 1e-9", PValue: 1e-9, Alpha: 0.02, Detail: "canary error rate 50% > 1%"}}}
	return []release.Event{
		e(0, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Message = release.KindStarted, release.PhasePreflight, "releasing"
		}),
		e(time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Message = release.KindPhase, release.PhaseStarting, "creating"
		}),
		e(5*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Step, ev.CanaryPercent, ev.AchievedPercent, ev.Message = release.KindTraffic, release.PhaseBaking, 1, 10, 10, "10%"
		}),
		e(6*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Step, ev.Verdict = release.KindLook, release.PhaseBaking, 1, &verdict.Verdict{Result: verdict.ResultInconclusive, Early: true}
		}),
		e(65*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Step, ev.CanaryPercent, ev.Verdict, ev.Message = release.KindAnalysis, release.PhaseBaking, 1, 10, &verdict.Verdict{Result: verdict.ResultPass, Reason: "ok"}, "pass"
		}),
		e(66*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Step, ev.CanaryPercent, ev.Verdict, ev.Message = release.KindAnalysis, release.PhaseBaking, 2, 50, fail, "fail"
		}),
		e(66*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Message = release.KindPhase, release.PhaseAborting, "aborting"
		}),
		e(70*time.Second, func(ev *release.Event) {
			ev.Kind, ev.Phase, ev.Outcome, ev.Message = release.KindFinished, release.PhaseAborted, release.OutcomeAbortedAnalysis, "step 2 failed"
		}),
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	outputFlag = "json"
	defer func() { outputFlag = "text" }()
	out, err := newLines(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range reportEvents() {
		out.Event(ev)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 7 { // every event but the early look
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	var last, failed map[string]any
	if err := json.Unmarshal([]byte(lines[6]), &last); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[4]), &failed); err != nil {
		t.Fatal(err)
	}
	if last["event"] != "finished" || last["outcome"] != "aborted-analysis" || last["release"] != "r1" {
		t.Errorf("last line %v", last)
	}
	v, _ := failed["verdict"].(map[string]any)
	if v == nil || v["Result"] != "fail" || failed["canary_percent"] != 50.0 {
		t.Errorf("analysis line %v", failed)
	}
}

func TestGitLabSections(t *testing.T) {
	var buf bytes.Buffer
	t.Setenv("GITLAB_CI", "true")
	out, err := newLines(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range reportEvents() {
		out.Event(ev)
	}
	got := buf.String()
	var names []string
	for _, l := range strings.Split(got, "\n") {
		if i := strings.Index(l, "section_start:"); i >= 0 {
			f := strings.SplitN(l[i:], ":", 3)
			names = append(names, strings.SplitN(f[2], "[", 2)[0])
		}
	}
	if strings.Join(names, " ") != "fridaymorning_start fridaymorning_step_1 fridaymorning_step_2 fridaymorning_abort" {
		t.Errorf("sections %v:\n%s", names, got)
	}
	if strings.Count(got, "section_start:") != strings.Count(got, "section_end:") {
		t.Errorf("unbalanced sections:\n%s", got)
	}
	if !strings.Contains(got, "fridaymorning: step 2 of 2 (50%)") {
		t.Errorf("no step header:\n%s", got)
	}
}

func TestJUnitReport(t *testing.T) {
	j := &junit{}
	for _, ev := range reportEvents() {
		j.Event(ev)
	}
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := j.write(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var rep junitSuites
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if rep.Tests != 3 || rep.Failures != 2 || len(rep.Suites) != 1 {
		t.Fatalf("report %+v", rep)
	}
	c := rep.Suites[0].Cases[1]
	if c.Failure == nil || c.Failure.Message != "canary error rate 50% > 1%" || !strings.Contains(c.Failure.Text, "exact binomial: P = 1e-9") || !strings.Contains(c.Failure.Text, "SELECT 1") {
		t.Errorf("failing case %+v", c)
	}
	if rep.Suites[0].Cases[0].Name != "step 1 of 2: 10% to the canary" {
		t.Errorf("case name %q", rep.Suites[0].Cases[0].Name)
	}
}

func TestDotenv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.env")
	if err := writeDotenv(path, map[string]string{"B": "two\nlines", "A": "1"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if string(raw) != "A=1\nB=two lines\n" {
		t.Errorf("dotenv %q", raw)
	}
}
