package tui

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// recorder is a Controller that remembers what it was asked.
type recorder struct {
	mu   sync.Mutex
	cmds []release.Command
}

func (r *recorder) Request(_ context.Context, c release.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, c)
	return nil
}

func (r *recorder) got() []release.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]release.Command(nil), r.cmds...)
}

func ev(at time.Duration, e release.Event) release.Event {
	e.Time = t0.Add(at)
	e.ReleaseID, e.Service = "r20261120-090000-ab12", "shop"
	e.Image, e.StableImage = "registry.example.com/shop:v2", "registry.example.com/shop:v1"
	e.StartedBy, e.StartedAt = "alice@laptop", t0
	e.Steps, e.Plan, e.Bake = 3, []float64{10, 25, 50}, time.Minute
	return e
}

// look is an early look's verdict.
func look(canaryP95 time.Duration) *verdict.Verdict {
	v := mkVerdict(verdict.ResultInconclusive, 0, canaryP95)
	v.Early = true
	v.Reason = "canary has 40 requests (0 errors), needs at least 50 to pass"
	return v
}

func mkVerdict(result verdict.Result, canaryErr float64, canaryP95 time.Duration) *verdict.Verdict {
	v := &verdict.Verdict{
		Result:  result,
		Canary:  verdict.Metrics{Requests: 612, Errors: int64(canaryErr * 6.12), ErrorRate: canaryErr, P50: 4 * time.Millisecond, P90: 9 * time.Millisecond, P95: canaryP95, P99: 31 * time.Millisecond},
		Stable:  verdict.Metrics{Requests: 1836, Errors: 2, ErrorRate: 0.11, P50: 4 * time.Millisecond, P90: 8 * time.Millisecond, P95: 12 * time.Millisecond, P99: 29 * time.Millisecond},
		Queries: []string{`SELECT count("status") FROM "autogen"."haproxy_request" WHERE time >= 1763629200000000000 AND time < 1763629260000000000 AND "backend" = 'be_shop' AND ("server" = 'canary1')`},
	}
	pass := func(name string, metric verdict.Metric, detail string, c, s, l float64, unit string) verdict.Check {
		return verdict.Check{Name: name, Metric: metric, Result: verdict.ResultPass, Canary: c, Stable: s, Limit: l, Unit: unit, CanaryN: 612, StableN: 1836, Detail: detail}
	}
	v.Checks = []verdict.Check{
		pass("canary_requests", verdict.MetricRequests, "canary has 612 requests (at least 50)", 612, 1836, 50, "requests"),
		pass("stable_requests", verdict.MetricRequests, "stable has 1836 requests (at least 50)", 612, 1836, 50, "requests"),
		pass("telemetry", verdict.MetricRequests, "InfluxDB's counts agree with HAProxy's within 10%", 612, 615, 10, "requests"),
		pass("error_rate", verdict.MetricErrorRate, "canary error rate 0% ≤ 1% (0 of 612 requests)", canaryErr, 0.11, 1, "%"),
		pass("latency_p99", verdict.MetricP99, "canary p99 31ms ≤ 500ms", 31, 29, 500, "ms"),
		pass("error_rate_increase", verdict.MetricErrorRate, "canary error rate within 1 points of stable's", canaryErr, 0.11, 1.11, "%"),
		pass("latency_shift", verdict.MetricP50, "canary p50 4ms ≤ 15ms (1.25 × stable 4ms + 10ms)", 4, 4, 15, "ms"),
		pass("p95_vs_stable", verdict.MetricP95, "canary p95 14ms ≤ 25ms (1.25 × stable 12ms + 10ms)", float64(canaryP95/time.Millisecond), 12, 25, "ms"),
		pass("p99_vs_stable", verdict.MetricP99, "canary p99 31ms ≤ 46.25ms (1.25 × stable 29ms + 10ms)", 31, 29, 46.25, "ms"),
	}
	v.Reason = "all 9 checks pass (canary 612 requests, 0% errors, p95 14ms; stable 1836 requests, 0.11% errors, p95 12ms)"
	if result == verdict.ResultFail {
		c := &v.Checks[3]
		c.Result, c.Test, c.PValue, c.Alpha = verdict.ResultFail, "exact binomial", 4.4e-15, 0.02
		c.Statistic = fmt.Sprintf("P(≥%d errors of 612 | rate 1%%) = 4.4e-15", int(canaryErr*6.12))
		c.Detail = fmt.Sprintf("canary error rate %s%% > 1%% (%d of 612 requests); exact binomial p = 4.4e-15 < α 0.02", num(canaryErr), int(canaryErr*6.12))
		v.Reason = c.Detail
	}
	return v
}

// inProgress is a release baking its second step, 20s into a 1-minute bake, after looks every 2s.
func inProgress() []release.Event {
	evs := []release.Event{
		ev(0, release.Event{Kind: release.KindStarted, Phase: release.PhasePreflight, Message: "releasing registry.example.com/shop:v2 to service shop in 3 steps (10%, 25%, 50%), 1m0s bake each"}),
		ev(1*time.Second, release.Event{Kind: release.KindPhase, Phase: release.PhaseStarting, Message: "release lock taken on shop (stable runs registry.example.com/shop:v1); creating the canary service"}),
		ev(5*time.Second, release.Event{Kind: release.KindCanaryReady, Phase: release.PhaseStarting, Message: "canary tasks are running and pass HAProxy's health checks"}),
		ev(6*time.Second, release.Event{Kind: release.KindTraffic, Phase: release.PhaseBaking, Step: 1, CanaryPercent: 10, AchievedPercent: 10, Weights: map[string]int{"canary1": 28, "stable1": 252}, Message: "canary gets 10% of requests (requested 10%)"}),
		ev(6*time.Second, release.Event{Kind: release.KindBake, Phase: release.PhaseBaking, Step: 1, Until: t0.Add(66 * time.Second), Message: "baking for 1m0s"}),
	}
	for i := 1; i < 30; i++ {
		evs = append(evs, ev(time.Duration(6+2*i)*time.Second, release.Event{Kind: release.KindLook, Phase: release.PhaseBaking, Step: 1,
			Verdict: look(time.Duration(12+i%4) * time.Millisecond)}))
	}
	evs = append(evs,
		ev(67*time.Second, release.Event{Kind: release.KindAnalysis, Phase: release.PhaseBaking, Step: 1, CanaryPercent: 10, Verdict: mkVerdict(verdict.ResultPass, 0, 14*time.Millisecond),
			Observed: &release.Observed{Canary: 612, Stable: 5508}, Message: "pass: all 9 checks pass"}),
		ev(67*time.Second, release.Event{Kind: release.KindTraffic, Phase: release.PhaseBaking, Step: 2, CanaryPercent: 25, AchievedPercent: 25, Weights: map[string]int{"canary1": 85, "stable1": 255}, Message: "canary gets 25% of requests (requested 25%)"}),
		ev(67*time.Second, release.Event{Kind: release.KindBake, Phase: release.PhaseBaking, Step: 2, Until: t0.Add(127 * time.Second), Message: "baking for 1m0s"}),
	)
	for i := 1; i < 10; i++ {
		evs = append(evs, ev(time.Duration(67+2*i)*time.Second, release.Event{Kind: release.KindLook, Phase: release.PhaseBaking, Step: 2,
			Verdict: look(time.Duration(13+i%3) * time.Millisecond)}))
	}
	return evs
}

// atLastStep is inProgress at the last planned step, 50%.
func atLastStep() []release.Event {
	return append(inProgress(),
		ev(127*time.Second, release.Event{Kind: release.KindTraffic, Phase: release.PhaseBaking, Step: 3, CanaryPercent: 50, AchievedPercent: 50, Weights: map[string]int{"canary1": 100, "stable1": 100}, Message: "canary gets 50% of requests (requested 50%)"}),
		ev(127*time.Second, release.Event{Kind: release.KindBake, Phase: release.PhaseBaking, Step: 3, Until: t0.Add(187 * time.Second), Message: "baking for 1m0s"}))
}

// failing adds a failing early look of step 2 and the abort it starts.
func failing() []release.Event {
	evs := inProgress()
	v := mkVerdict(verdict.ResultFail, 12.5, 14*time.Millisecond)
	v.Early = true
	return append(evs,
		ev(86*time.Second, release.Event{Kind: release.KindAnalysis, Phase: release.PhaseBaking, Step: 2, CanaryPercent: 25, Verdict: v, Message: "fail (early look after 18s): " + v.Reason}),
		ev(86*time.Second, release.Event{Kind: release.KindPhase, Phase: release.PhaseAborting, Message: "step 2 failed an early look after 18s: " + v.Reason}),
		ev(86*time.Second, release.Event{Kind: release.KindTraffic, Phase: release.PhaseAborting, CanaryPercent: 0, AchievedPercent: 0, Weights: map[string]int{"canary1": 0, "stable1": 100}, Message: "all requests back on the stable service"}),
	)
}

func paused() []release.Event {
	return append(inProgress(), ev(86*time.Second, release.Event{Kind: release.KindControl, Command: release.CommandPause, Phase: release.PhaseBaking, Step: 2,
		Message: "paused by an operator: the bake's clock stops with 41s left; traffic stays at 25%, early looks go on"}))
}

func model(events []release.Event, w, h int, ctl Controller) Model {
	m := New(Options{Controller: ctl, Now: func() time.Time { return t0.Add(87 * time.Second) }})
	var tm tea.Model = m
	tm, _ = tm.Update(tea.WindowSizeMsg{Width: w, Height: h})
	for _, e := range events {
		tm, _ = tm.Update(EventMsg(e))
	}
	tm, _ = tm.Update(tasksMsg{canary: "1/1 running", stable: "3/3 running"})
	return tm.(Model)
}

func press(m Model, keys ...string) (Model, []tea.Cmd) {
	var tm tea.Model = m
	var cmds []tea.Cmd
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "space":
			msg = tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
		case "ctrl+c":
			msg = tea.KeyMsg{Type: tea.KeyCtrlC}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		var cmd tea.Cmd
		tm, cmd = tm.Update(msg)
		cmds = append(cmds, cmd)
	}
	return tm.(Model), cmds
}

// run executes commands as bubbletea would, one level deep, and reports whether one quits.
func run(cmds []tea.Cmd) (quit bool) {
	var do func(c tea.Cmd)
	do = func(c tea.Cmd) {
		if c == nil {
			return
		}
		switch msg := c().(type) {
		case tea.QuitMsg:
			quit = true
		case tea.BatchMsg:
			for _, c := range msg {
				do(c)
			}
		default:
			if s := fmt.Sprintf("%T", msg); strings.Contains(s, "sequenceMsg") {
				// tea.Sequence's message is a slice of commands.
				for _, c := range sequence(msg) {
					do(c)
				}
			}
		}
	}
	for _, c := range cmds {
		do(c)
	}
	return quit
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./tui -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	screens := map[string]func(w, h int) Model{
		"in-progress": func(w, h int) Model { return model(inProgress(), w, h, &recorder{}) },
		"failing":     func(w, h int) Model { return model(failing(), w, h, &recorder{}) },
		"paused":      func(w, h int) Model { return model(paused(), w, h, &recorder{}) },
		"confirm":     func(w, h int) Model { m, _ := press(model(inProgress(), w, h, &recorder{}), "a"); return m },
		"help":        func(w, h int) Model { m, _ := press(model(inProgress(), w, h, &recorder{}), "?"); return m },
		"explain": func(w, h int) Model {
			m, _ := press(model(failing(), w, h, &recorder{}), "down", "down", "enter")
			return m
		},
	}
	for name, build := range screens {
		for _, size := range [][2]int{{80, 24}, {120, 40}} {
			t.Run(fmt.Sprintf("%s-%dx%d", name, size[0], size[1]), func(t *testing.T) {
				out := build(size[0], size[1]).View()
				lines := strings.Split(out, "\n")
				if len(lines) != size[1] {
					t.Errorf("%d lines, want exactly %d", len(lines), size[1])
				}
				for i, l := range lines {
					if w := lipgloss.Width(l); w > size[0] {
						t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, w, size[0], l)
					}
				}
				golden(t, fmt.Sprintf("%s-%dx%d", name, size[0], size[1]), out)
			})
		}
	}
}

func TestViewSaysWhatMatters(t *testing.T) {
	out := model(failing(), 120, 40, nil).View()
	for _, want := range []string{"shop", "v1 → shop:v2", "✗ fail", "canary error rate 12.5% > 1%", "aborting", "3/3 running", "✓ 10%"} {
		if !strings.Contains(out, want) {
			t.Errorf("the screen lacks %q:\n%s", want, out)
		}
	}
	out = model(paused(), 80, 24, nil).View()
	if !strings.Contains(out, "paused, 0:41 left") || !strings.Contains(out, "space continue") {
		t.Errorf("paused screen:\n%s", out)
	}
}

func TestKeys(t *testing.T) {
	type tc struct {
		name   string
		events []release.Event
		keys   []string
		want   []release.Command
		quit   bool
		choice QuitChoice
		check  func(t *testing.T, m Model)
	}
	tests := []tc{
		{name: "p asks, y promotes", keys: []string{"p", "y"}, want: []release.Command{release.CommandPromote}},
		{name: "p asks, n cancels", keys: []string{"p", "n"}, want: nil, check: func(t *testing.T, m Model) {
			if m.dialog != dialogNone {
				t.Error("dialog still open")
			}
		}},
		{name: "a asks, y aborts", keys: []string{"a", "y"}, want: []release.Command{release.CommandAbort}},
		{name: "a asks, esc cancels", keys: []string{"a", "esc"}, want: nil},
		{name: "a then enter confirms", keys: []string{"a", "enter"}, want: []release.Command{release.CommandAbort}},
		{name: "space pauses", keys: []string{"space"}, want: []release.Command{release.CommandPause}},
		{name: "space continues a paused bake", events: paused(), keys: []string{"space"}, want: []release.Command{release.CommandContinue}},
		{name: "n skips to the verdict", keys: []string{"n"}, want: []release.Command{release.CommandSkip}},
		{name: "+ and - nudge", keys: []string{"+", "=", "-"}, want: []release.Command{release.CommandNudgeUp, release.CommandNudgeUp, release.CommandNudgeDown}},
		{name: "+ past the last planned step asks, y nudges", events: atLastStep(), keys: []string{"+", "y"}, want: []release.Command{release.CommandNudgeUpPastPlan}},
		{name: "+ past the last planned step asks, n does not nudge", events: atLastStep(), keys: []string{"+", "n", "-"}, want: []release.Command{release.CommandNudgeDown}, check: func(t *testing.T, m Model) {
			if m.dialog != dialogNone {
				t.Error("dialog still open")
			}
		}},
		{name: "? opens help, any key closes it", keys: []string{"?"}, check: func(t *testing.T, m Model) {
			if !m.help {
				t.Fatal("no help")
			}
			m, _ = press(m, "x")
			if m.help {
				t.Error("help still open")
			}
		}},
		{name: "arrows select, enter explains, esc closes", keys: []string{"down", "down", "down", "up", "enter"}, check: func(t *testing.T, m Model) {
			if m.selected != 2 || !m.explain {
				t.Fatalf("selected %d explain %v", m.selected, m.explain)
			}
			if !strings.Contains(m.View(), "Why error rate") {
				t.Errorf("explain view:\n%s", m.View())
			}
			m, _ = press(m, "esc")
			if m.explain {
				t.Error("explain still open")
			}
		}},
		{name: "q asks what to do with the release; l leaves it running", keys: []string{"q", "l"}, quit: true, choice: QuitLeave},
		{name: "q then p pauses and leaves", keys: []string{"q", "p"}, want: []release.Command{release.CommandPause}, quit: true, choice: QuitPause},
		{name: "q then a aborts and leaves", keys: []string{"q", "a"}, want: []release.Command{release.CommandAbort}, quit: true, choice: QuitAbort},
		{name: "q then esc stays", keys: []string{"q", "esc"}, check: func(t *testing.T, m Model) {
			if m.dialog != dialogNone || m.quit != QuitNone {
				t.Error("did not stay")
			}
		}},
		{name: "ctrl+c asks too", keys: []string{"ctrl+c"}, check: func(t *testing.T, m Model) {
			if m.dialog != dialogQuit {
				t.Error("ctrl+c did not ask")
			}
		}},
		{name: "ctrl+c twice leaves the release running", keys: []string{"ctrl+c", "ctrl+c"}, quit: true, choice: QuitLeave},
		{name: "a finished release quits at once", events: append(failing(), ev(90*time.Second, release.Event{Kind: release.KindFinished, Phase: release.PhaseAborted, Outcome: release.OutcomeAbortedAnalysis, Message: "aborted"})),
			keys: []string{"q"}, quit: true, choice: QuitNone},
		{name: "a finished release takes no commands", events: append(failing(), ev(90*time.Second, release.Event{Kind: release.KindFinished, Phase: release.PhaseAborted, Outcome: release.OutcomeAbortedAnalysis, Message: "aborted"})),
			keys: []string{"p", "y", "a", "y", "space", "n", "+"}, want: nil},
		{name: "steering outside a bake does nothing", events: failing(), keys: []string{"space", "n", "+"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := tt.events
			if events == nil {
				events = inProgress()
			}
			rec := &recorder{}
			m, cmds := press(model(events, 80, 24, rec), tt.keys...)
			quit := run(cmds)
			if got := rec.got(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("commands %v, want %v", got, tt.want)
			}
			if quit != tt.quit || m.QuitChoice() != tt.choice {
				t.Errorf("quit %v choice %v, want %v %v", quit, m.QuitChoice(), tt.quit, tt.choice)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestReadOnlyCockpitSaysSo(t *testing.T) {
	m, cmds := press(model(inProgress(), 80, 24, nil), "n")
	run(cmds)
	if !strings.Contains(m.View(), "read-only") {
		t.Errorf("no read-only notice:\n%s", m.View())
	}
}

func TestProbesShowSlowAndDownDependencies(t *testing.T) {
	m := New(Options{Probes: []Probe{{Name: "haproxy"}, {Name: "influxdb"}, {Name: "docker"}}, Now: func() time.Time { return t0 }})
	var tm tea.Model = m
	tm, _ = tm.Update(probeMsg{name: "haproxy", took: 3 * time.Millisecond})
	tm, _ = tm.Update(probeMsg{name: "influxdb", took: 3 * time.Second, err: fmt.Errorf("connection refused")})
	tm, _ = tm.Update(probeMsg{name: "docker", took: 2500 * time.Millisecond})
	out := tm.View()
	for _, want := range []string{"haproxy ✓", "influxdb ✗ down", "docker ? slow 2.5s"} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q:\n%s", want, out)
		}
	}
}

// BenchmarkView renders one frame at 120×40 after an hour of looks every 2 seconds.
func BenchmarkView(b *testing.B) {
	m := model(inProgress(), 120, 40, nil)
	var tm tea.Model = m
	for i := range 1800 {
		at := time.Duration(90+2*i) * time.Second
		tm, _ = tm.Update(EventMsg(ev(at, release.Event{Kind: release.KindLook, Phase: release.PhaseBaking, Step: 2, Verdict: mkVerdict(verdict.ResultInconclusive, 0, time.Duration(10+i%7)*time.Millisecond)})))
		tm, _ = tm.Update(EventMsg(ev(at, release.Event{Kind: release.KindProgress, Phase: release.PhaseBaking, Step: 2, Message: fmt.Sprintf("baking, %ds left", i%60)})))
	}
	for b.Loop() {
		_ = tm.View()
	}
}

// sequence unpacks tea.Sequence's message, a slice of commands of an unexported type.
func sequence(msg tea.Msg) []tea.Cmd {
	v := reflect.ValueOf(msg)
	if v.Kind() != reflect.Slice {
		return nil
	}
	var out []tea.Cmd
	for i := range v.Len() {
		if c, ok := v.Index(i).Interface().(tea.Cmd); ok {
			out = append(out, c)
		}
	}
	return out
}

// blocking is a Controller whose requests never return: a hung Docker or HAProxy.
type blocking struct{ called chan struct{} }

func (b blocking) Request(context.Context, release.Command) error { close(b.called); select {} }

// TestNeverBlocks: keys, probes and polls return at once whatever the release's adapters do; the work
// runs in commands, off the UI's goroutine.
func TestNeverBlocks(t *testing.T) {
	b := blocking{called: make(chan struct{})}
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	m := New(Options{Controller: b, Probes: []Probe{{Name: "influxdb", Run: hang}}, Tasks: func(ctx context.Context) (string, string, error) {
		<-ctx.Done()
		return "", "", ctx.Err()
	}, Now: func() time.Time { return t0 }})
	var tm tea.Model = m
	for _, e := range inProgress() {
		tm, _ = tm.Update(EventMsg(e))
	}
	done := make(chan tea.Cmd)
	go func() {
		mm, cmds := press(tm.(Model), "a", "y")
		_, c1 := mm.Update(probeTick{})
		_, c2 := mm.Update(tasksTick{})
		done <- tea.Batch(append(cmds, c1, c2)...)
	}()
	select {
	case cmd := <-done:
		if cmd == nil {
			t.Fatal("no command for the abort, the probes or the polls")
		}
		go run([]tea.Cmd{cmd}) // the commands may hang: bubbletea runs them in goroutines of their own
		select {
		case <-b.called:
		case <-time.After(5 * time.Second):
			t.Error("the abort command never reached the controller")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Update blocked")
	}
}

func TestAbortConfirmationSaysWhatAbortDoesInThePhase(t *testing.T) {
	standby := append(inProgress(), ev(90*time.Second, release.Event{Kind: release.KindPhase, Phase: release.PhaseStandby,
		Message: "shop runs registry.example.com/shop:v2; registry.example.com/shop:v1 stands by on shop-canary"}))
	promoting := append(inProgress(), ev(90*time.Second, release.Event{Kind: release.KindPhase, Phase: release.PhasePromoting, Message: "every step passed"}))
	for _, tt := range []struct {
		name   string
		events []release.Event
		want   []string
	}{
		{"baking", inProgress(), []string{"Abort the release?", "goes back to stable"}},
		{"standby", standby, []string{"End the standby now?", "keeps running shop:v2", "standby of shop:v1 is removed", "no longer possible"}},
		{"promoting", promoting, []string{"the abort is not carried out", "The promotion finishes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := press(model(tt.events, 120, 40, &recorder{}), "a")
			if m.dialog != dialogAbort {
				t.Fatal("a did not ask for confirmation")
			}
			out := m.dialogBox(120)
			flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "║", " ")), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, w) {
					t.Errorf("the confirmation lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// A release from a stack file shows its spec difference in the log, from the preflight event's
// structured Changes (no text matching).
func TestCockpitShowsTheSpecDifference(t *testing.T) {
	ev := release.Event{Time: time.Now(), Kind: release.KindPreflight, Phase: release.PhasePreflight, ReleaseID: "r1", Service: "shop_app",
		Message: "stack file ok: 1 change(s) to shop_app", Changes: []release.Change{{Field: "env DATABASE_POOL", From: "10", To: "20"}}}
	m := model([]release.Event{ev}, 120, 40, nil)
	if out := m.View(); !strings.Contains(out, "env DATABASE_POOL: 10 → 20") {
		t.Errorf("the screen lacks the change:\n%s", out)
	}
}
