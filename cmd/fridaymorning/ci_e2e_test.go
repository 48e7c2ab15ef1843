//go:build integration

package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/swarm"
)

// TestGitLabCIJob runs the binary as a GitLab CI job would (no terminal, CI=true, GITLAB_CI=true) for a
// promoted, an aborted and a failed release, and checks the exit codes, the collapsible sections around
// the steps, the JUnit report (parsed and counted) and the dotenv file.
func TestGitLabCIJob(t *testing.T) {
	s := newStack(t)
	s.env = []string{"CI=true", "GITLAB_CI=true"}
	stop := s.startLoad(100)
	defer stop()
	time.Sleep(time.Second)
	dir := t.TempDir()

	type suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	read := func(name string) (suites, map[string]string) {
		t.Helper()
		var rep suites
		raw, err := os.ReadFile(filepath.Join(dir, name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(raw, &rep); err != nil {
			t.Fatalf("the JUnit report does not parse: %v\n%s", err, raw)
		}
		env := map[string]string{}
		rawEnv, err := os.ReadFile(filepath.Join(dir, name+".env"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(rawEnv)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		return rep, env
	}
	run := func(name, image string) (int, string) {
		return s.release("--image", image, "--report", filepath.Join(dir, name+".xml"), "--dotenv", filepath.Join(dir, name+".env"))
	}

	code, out := run("promoted", s.image+":v2")
	if code != exitPromoted {
		t.Fatalf("promoted: exit %d", code)
	}
	for _, want := range []string{"section_start:", ":fridaymorning_step_1[collapsed=false]\r\x1b[0Kfridaymorning: step 1 of 2 (10%)", "section_end:", ":fridaymorning_promote"} {
		if !strings.Contains(out, want) {
			t.Errorf("the job log lacks %q", want)
		}
	}
	if strings.Count(out, "section_start:") != strings.Count(out, "section_end:") {
		t.Errorf("sections not balanced: %d starts, %d ends", strings.Count(out, "section_start:"), strings.Count(out, "section_end:"))
	}
	rep, env := read("promoted")
	// Two steps judged and the outcome; a judgement that extended a step (an inconclusive look on a
	// loaded machine) is a skipped case of its own.
	if len(rep.Suites) != 1 || rep.Failures != 0 || rep.Tests != len(rep.Suites[0].Cases) || rep.Tests-rep.Skipped != 3 {
		t.Errorf("report of the promoted release: %+v", rep)
	} else {
		var judged []string
		for _, c := range rep.Suites[0].Cases {
			if c.Skipped == nil {
				judged = append(judged, c.Name)
			}
		}
		if want := []string{"step 1 of 2: 10% to the canary", "step 2 of 2: 50% to the canary", "outcome: promoted"}; !slices.Equal(judged, want) {
			t.Errorf("the promoted release's judged cases are %q, want %q", judged, want)
		}
	}
	if env["FRIDAYMORNING_OUTCOME"] != "promoted" || env["FRIDAYMORNING_EXIT_CODE"] != "0" || !strings.HasPrefix(env["FRIDAYMORNING_RELEASE"], "r") {
		t.Errorf("dotenv %v", env)
	}

	code, _ = run("aborted", s.image+":v2-errors")
	if code != exitAbortedAnalysis {
		t.Fatalf("aborted: exit %d", code)
	}
	rep, env = read("aborted")
	if rep.Failures != 2 || env["FRIDAYMORNING_OUTCOME"] != "aborted-analysis" || env["FRIDAYMORNING_EXIT_CODE"] != "3" {
		t.Errorf("report of the aborted release: %+v, dotenv %v", rep, env)
	}
	failed := rep.Suites[0].Cases[0]
	if failed.Failure == nil || !strings.Contains(failed.Failure.Message, "error rate") || !strings.Contains(failed.Failure.Text, "sequential binomial") || !strings.Contains(failed.Failure.Text, "query:") {
		t.Errorf("the failing step's case lacks the evidence: %+v", failed)
	}

	code, _ = run("error", s.image+":no-such-tag")
	if code != exitError {
		t.Fatalf("bad image: exit %d, want %d", code, exitError)
	}
	rep, env = read("error")
	if rep.Failures != 1 || env["FRIDAYMORNING_OUTCOME"] != "failed" || env["FRIDAYMORNING_EXIT_CODE"] != "1" {
		t.Errorf("report of the failed release: %+v, dotenv %v", rep, env)
	}
}

// TestManualGateAcrossJobs: one CI job runs the steps and stops at the promotion gate; a later manual
// job promotes (or, in the second release, aborts) from the state kept in Swarm.
func TestManualGateAcrossJobs(t *testing.T) {
	s := newStack(t)
	s.env = []string{"CI=true", "GITLAB_CI=true"}
	stop := s.startLoad(100)
	time.Sleep(time.Second)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "canary.env")

	code, out := s.release("--image", s.image+":v2", "--pause-before-promote", "--dotenv", envFile)
	if code != exitAbortedInconclusive {
		t.Fatalf("canary job: exit %d, want %d (paused at the gate)", code, exitAbortedInconclusive)
	}
	if !strings.Contains(out, "outcome=paused") || !strings.Contains(out, "promotion gate") {
		t.Errorf("the canary job does not say it waits at the gate")
	}
	if raw, _ := os.ReadFile(envFile); !strings.Contains(string(raw), "FRIDAYMORNING_OUTCOME=paused") {
		t.Errorf("dotenv %q", raw)
	}
	if !s.canaryExists() || s.weights()["canary1"] == 0 {
		t.Fatalf("at the gate the canary should keep its share: exists %v, weights %v", s.canaryExists(), s.weights())
	}
	id := readDotenv(t, envFile)["FRIDAYMORNING_RELEASE"]
	// The verdict's age shows, and a promote job of another pipeline (another release ID) is refused.
	if _, out := s.run("status", s.service, "--config", s.configPath); !strings.Contains(out, "ago): pass") || !strings.Contains(out, "waiting at the promotion gate") {
		t.Errorf("status at the gate does not show the verdict's age and the gate")
	}
	code, out = s.run("promote", s.service, "--config", s.configPath, "--release", "r-another-pipeline")
	if code != exitError || !strings.Contains(out, "not r-another-pipeline") {
		t.Fatalf("a promote of another release: exit %d, want %d and a refusal", code, exitError)
	}
	if v := s.status(); v.Record == nil || v.Record.Outcome != "paused" || v.Record.ID != id {
		t.Fatalf("the refused promote changed the release: %+v", v.Record)
	}
	// Promoting the gated release judges a fresh window first.
	code, out = s.run("promote", s.service, "--config", s.configPath, "--release", id)
	if code != 0 {
		t.Fatalf("manual promote job: exit %d", code)
	}
	if !strings.Contains(out, "judging a fresh window") || strings.Count(out, "event=analysis") != 1 {
		t.Errorf("the promote job did not judge a fresh window before promoting")
	}
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" || s.canaryExists() {
		t.Fatalf("after the promote job stable runs %s, canary exists %v", img, s.canaryExists())
	}

	code, _ = s.release("--image", s.image+":v3", "--pause-before-promote")
	if code != exitAbortedInconclusive {
		t.Fatalf("second canary job: exit %d", code)
	}
	code, _ = s.run("abort", s.service, "--config", s.configPath)
	if code != 0 {
		t.Fatalf("manual abort job: exit %d", code)
	}
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" || s.canaryExists() {
		t.Fatalf("after the abort job stable runs %s (want v2), canary exists %v", img, s.canaryExists())
	}
	if w := s.weights(); w["canary1"] != 0 || w["stable1"] == 0 {
		t.Errorf("weights after the abort job %v", w)
	}
	if load := stop(); load.Failed != 0 {
		t.Errorf("%d of %d requests failed across the jobs (%v)", load.Failed, load.Sent, load.Errors)
	}
}
