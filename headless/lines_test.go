package headless

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

func TestHeadlessLines(t *testing.T) {
	var buf bytes.Buffer
	h, err := New(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	h.Event(release.Event{Time: at, Kind: release.KindTraffic, Phase: release.PhaseBaking, ReleaseID: "r1", Step: 1, Steps: 3,
		CanaryPercent: 10, AchievedPercent: 10.0390625, Weights: map[string]int{"stable1": 230, "canary1": 26}, Message: "canary gets 10% of requests"})
	h.Event(release.Event{Kind: release.KindAnalysis, Phase: release.PhaseBaking, ReleaseID: "r1", Step: 1, Steps: 3, CanaryPercent: 10,
		Verdict: &verdict.Verdict{Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%",
			Canary: verdict.Metrics{Requests: 212, ErrorRate: 50, P95: 12 * time.Millisecond},
			Checks: []verdict.Check{{Name: "error_rate", Result: verdict.ResultFail, Canary: 50, Limit: 1, Unit: "%", Detail: "canary error rate 50% > 1%"}}},
		Message: "fail: canary error rate 50% > 1%"})
	h.Event(release.Event{Kind: release.KindFinished, Phase: release.PhaseAborted, ReleaseID: "r1", Outcome: release.OutcomeAbortedAnalysis})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines (traffic, analysis, check, finished), got:\n%s", buf.String())
	}
	for i, want := range [][]string{
		{`msg="canary gets 10% of requests"`, "event=traffic", "release=r1", "phase=baking", "step=1/3", "canary=10%", "achieved=10.04%", "weights=canary1:26,stable1:230"},
		{"event=analysis", "result=fail", "canary.requests=212", "canary.error_rate=50%", "canary.p95=12.0ms"},
		{"event=check", "check=error_rate", "result=fail", "canary=50", "limit=1"},
		{"event=finished", "outcome=aborted-analysis"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i+1, lines[i], w)
			}
		}
		if strings.Contains(lines[i], "level=") {
			t.Errorf("line %d carries a log level: %s", i+1, lines[i])
		}
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	out, err := New(&buf, Options{Output: OutputJSON})
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
