package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// issued runs the commands of one tasksTick or probeTick as bubbletea would and returns the replies of
// the polls or probes among them (the re-armed tick fires at once: its interval is a nanosecond).
func issued(cmd tea.Cmd) []tea.Msg {
	msgs := []tea.Msg{cmd()}
	if batch, ok := msgs[0].(tea.BatchMsg); ok {
		msgs = nil
		for _, c := range batch {
			msgs = append(msgs, c())
		}
	}
	var out []tea.Msg
	for _, msg := range msgs {
		switch msg.(type) {
		case tasksMsg, probeMsg:
			out = append(out, msg)
		}
	}
	return out
}

// TestOldTasksReplyDoesNotOverwriteANewerOne: a poll that answers late, after a later poll's answer is
// on screen, is dropped; the screen keeps the newer task states.
func TestOldTasksReplyDoesNotOverwriteANewerOne(t *testing.T) {
	var calls atomic.Int32
	tasks := func(context.Context) (string, string, error) {
		n := calls.Add(1)
		return fmt.Sprintf("%d/3 running", n), "3/3 running", nil
	}
	m := New(Options{Tasks: tasks, TaskInterval: time.Nanosecond, Now: func() time.Time { return t0 }})
	var tm tea.Model = m
	var first, second []tea.Msg
	tm, cmd := tm.Update(tasksTick{})
	first = issued(cmd)
	tm, cmd = tm.Update(tasksTick{})
	second = issued(cmd)
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("polls issued: %d and %d, want one each", len(first), len(second))
	}
	tm, _ = tm.Update(second[0])
	tm, _ = tm.Update(first[0])
	if got := tm.(Model).Status().CanaryTasks; got != "2/3 running" {
		t.Errorf("canary tasks %q after the older poll answered last, want the newer poll's %q", got, "2/3 running")
	}
	tm, _ = tm.Update(tasksMsg{gen: 1, err: errors.New("docker: connection refused")})
	if out := tm.View(); strings.Contains(out, "connection refused") {
		t.Errorf("an old poll's error shows over a newer answer:\n%s", out)
	}
}

// TestNewerTasksReplyIsShown: answers in order all show, the latest last.
func TestNewerTasksReplyIsShown(t *testing.T) {
	var tm tea.Model = New(Options{Now: func() time.Time { return t0 }})
	tm, _ = tm.Update(tasksMsg{gen: 1, canary: "1/1 running", stable: "3/3 running"})
	tm, _ = tm.Update(tasksMsg{gen: 2, err: errors.New("connection refused")})
	if out := tm.View(); !strings.Contains(out, "docker: connection refused") {
		t.Errorf("the newer poll's error is not shown:\n%s", out)
	}
	tm, _ = tm.Update(tasksMsg{gen: 3, canary: "0/1 running", stable: "3/3 running"})
	if got := tm.(Model).Status().CanaryTasks; got != "0/1 running" {
		t.Errorf("canary tasks %q, want the latest poll's", got)
	}
}

// TestOldProbeReplyDoesNotOverwriteANewerOne: a dependency's answer to an older check, arriving late,
// does not hide how it answered the newer one.
func TestOldProbeReplyDoesNotOverwriteANewerOne(t *testing.T) {
	var tm tea.Model = New(Options{Probes: []Probe{{Name: "influxdb"}}, Now: func() time.Time { return t0 }})
	tm, _ = tm.Update(probeMsg{name: "influxdb", gen: 2, took: 3 * time.Millisecond})
	tm, _ = tm.Update(probeMsg{name: "influxdb", gen: 1, took: 3 * time.Second, err: errors.New("connection refused")})
	if out := tm.View(); !strings.Contains(out, "influxdb ✓") {
		t.Errorf("the older probe's failure shows over the newer answer:\n%s", out)
	}
}

// TestProbesStampTheirRound: each round of probes carries a newer generation, and a probe still
// running is not started again.
func TestProbesStampTheirRound(t *testing.T) {
	ok := func(context.Context) error { return nil }
	m := New(Options{Probes: []Probe{{Name: "docker", Run: ok}, {Name: "haproxy", Run: ok}}, ProbeInterval: time.Nanosecond, Now: func() time.Time { return t0 }})
	var tm tea.Model = m
	tm, cmd := tm.Update(probeTick{})
	round1 := issued(cmd)
	tm, cmd = tm.Update(probeTick{})
	if again := issued(cmd); len(again) != 0 {
		t.Errorf("%d probes started again while still running", len(again))
	}
	for _, msg := range round1 {
		tm, _ = tm.Update(msg)
	}
	_, cmd = tm.Update(probeTick{})
	round3 := issued(cmd)
	if len(round1) != 2 || len(round3) != 2 {
		t.Fatalf("probes issued: %d, then %d; want 2 each", len(round1), len(round3))
	}
	for i := range round1 {
		if g1, g3 := round1[i].(probeMsg).gen, round3[i].(probeMsg).gen; g3 <= g1 {
			t.Errorf("probe %s: generation %d, then %d; want it to grow", round1[i].(probeMsg).name, g1, g3)
		}
	}
}
