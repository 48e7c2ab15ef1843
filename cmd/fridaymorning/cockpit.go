package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
	"github.com/fridaymorning/fridaymorning/tui"
)

// sink sends release events to the cockpit while it is open, and to line output after it was left;
// the headless printer records them all, for the report and the dotenv file.
type sink struct {
	mu      sync.Mutex
	program *tea.Program
	out     *headless.Printer
}

func (s *sink) event(ev release.Event) {
	s.mu.Lock()
	p := s.program
	s.mu.Unlock()
	if p != nil {
		s.out.Record(ev)
		p.Send(tui.EventMsg(ev))
		return
	}
	s.out.Event(ev)
}

// detach sends the events that follow to line output.
func (s *sink) detach() {
	s.mu.Lock()
	s.program = nil
	s.mu.Unlock()
}

// cockpit runs the terminal UI over an engine this process drives. run carries the release out; it
// starts before the UI and goes on when the operator leaves the UI before the release ends (leave,
// pause or abort), with line output from then on.
func cockpit(ctx context.Context, w *wired, s *sink, stdout io.Writer, run func(context.Context) (release.Outcome, error)) (release.Outcome, error) {
	th := tui.NewTheme(stdout)
	m := tui.New(tui.Options{
		Controller: engineController{w.engine},
		Probes:     w.probes(),
		Tasks:      w.tasks,
		Theme:      &th,
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(stdout), tea.WithContext(ctx))
	s.mu.Lock()
	s.program = p
	s.mu.Unlock()

	type result struct {
		outcome release.Outcome
		err     error
	}
	done := make(chan result, 1)
	go func() {
		o, err := run(ctx)
		done <- result{o, err}
	}()
	final, uiErr := p.Run()
	s.detach()
	if uiErr != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "fridaymorning: the terminal UI failed (%v); the release goes on with line output\n", uiErr)
	}
	if fm, ok := final.(tui.Model); ok {
		switch fm.QuitChoice() {
		case tui.QuitLeave:
			fmt.Fprintln(stdout, "fridaymorning: left the cockpit; the release goes on here with line output (Ctrl-C aborts it; `fridaymorning watch` shows it again)")
		case tui.QuitPause:
			fmt.Fprintln(stdout, "fridaymorning: left the cockpit; the release is paused (`fridaymorning continue` or `watch` to go on, Ctrl-C aborts)")
		case tui.QuitAbort:
			fmt.Fprintln(stdout, "fridaymorning: left the cockpit; the release is aborting")
		}
	}
	r := <-done
	return r.outcome, r.err
}

// probes are the dependencies the cockpit checks.
func (w *wired) probes() []tui.Probe {
	var out []tui.Probe
	if w.sw != nil {
		out = append(out, tui.Probe{Name: "docker", Run: w.sw.Ping})
	}
	if w.hp != nil {
		out = append(out, tui.Probe{Name: "haproxy", Run: w.hp.Check})
	}
	if w.store != nil {
		out = append(out, tui.Probe{Name: "influxdb", Run: w.store.Ping})
	}
	return out
}

// tasks reports the canary's and stable's tasks.
func (w *wired) tasks(ctx context.Context) (string, string, error) {
	stable, err := w.sw.Tasks(ctx, w.service)
	if err != nil {
		return "", "", err
	}
	canary, err := w.sw.Tasks(ctx, swarm.CanaryName(w.service))
	return canary, stable, err
}

// engineController hands the cockpit's commands to the engine this process drives; it never blocks.
type engineController struct{ e *release.Engine }

func (c engineController) Request(_ context.Context, cmd release.Command) error {
	c.e.Request(cmd)
	return nil
}
