package headless

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// reportEvents are the events of a release whose second step fails, early look included.
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

func TestPrinterFinish(t *testing.T) {
	dir := t.TempDir()
	report, dotenv := filepath.Join(dir, "report.xml"), filepath.Join(dir, "out.env")
	var buf bytes.Buffer
	p, err := New(&buf, Options{Report: report, Dotenv: dotenv})
	if err != nil {
		t.Fatal(err)
	}
	evs := reportEvents()
	p.Event(evs[0])
	for _, ev := range evs[1:] {
		p.Record(ev) // as while the cockpit shows them
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("Record printed: %d lines\n%s", n, buf.String())
	}
	if err := p.Finish(Result{Service: "shop", Release: "r1", Outcome: release.OutcomeAbortedAnalysis, ExitCode: 3, Message: "step 2 failed"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(dotenv)
	for _, want := range []string{"FRIDAYMORNING_EXIT_CODE=3\n", "FRIDAYMORNING_IMAGE=shop:v2\n", "FRIDAYMORNING_OUTCOME=aborted-analysis\n", "FRIDAYMORNING_RELEASE=r1\n"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("dotenv lacks %q:\n%s", want, raw)
		}
	}
	var rep junitSuites
	raw, _ = os.ReadFile(report)
	if err := xml.Unmarshal(raw, &rep); err != nil || rep.Tests != 3 {
		t.Errorf("report of the recorded events: %v %+v", err, rep)
	}
}

// TestPrinterFinishWithoutEvents: a release that could not even start still gets a report with its
// outcome, and the files say what went wrong when they cannot be written.
func TestPrinterFinishWithoutEvents(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.xml")
	p, err := New(io.Discard, Options{Report: report, Dotenv: filepath.Join(t.TempDir(), "no-such-dir", "out.env")})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Finish(Result{Service: "shop", Outcome: release.OutcomeFailed, ExitCode: 1, Message: "config: missing haproxy.backend"})
	if err == nil || !strings.Contains(err.Error(), "writing the dotenv file") || !strings.Contains(err.Error(), "no-such-dir") {
		t.Errorf("err = %v, want it to name the dotenv file", err)
	}
	var rep junitSuites
	raw, _ := os.ReadFile(report)
	if err := xml.Unmarshal(raw, &rep); err != nil || rep.Tests != 1 || rep.Failures != 1 ||
		rep.Suites[0].Cases[0].Failure.Message != "config: missing haproxy.backend" {
		t.Errorf("report: %v %+v", err, rep)
	}
}

func TestNewRefusesUnknownOutput(t *testing.T) {
	if _, err := New(io.Discard, Options{Output: "yaml"}); err == nil || !strings.Contains(err.Error(), `"yaml"`) {
		t.Errorf("err = %v", err)
	}
}
