package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
	"github.com/fridaymorning/fridaymorning/tui"
)

// headlessFlag is --headless: line output even in a terminal.
var headlessFlag bool

// wantCockpit says whether to open the terminal UI: stdout is a terminal, --headless is not given and
// this is no CI job (CI=true, which GitLab and others set).
func wantCockpit(stdout io.Writer) bool {
	if headlessFlag || outputFlag == "json" || os.Getenv("CI") == "true" || os.Getenv("CI") == "1" {
		return false
	}
	f, ok := stdout.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// sink sends release events to the cockpit while it is open, and to line output after it was left.
type sink struct {
	mu      sync.Mutex
	program *tea.Program
	lines   lines
}

func (s *sink) event(ev release.Event) {
	s.mu.Lock()
	p, lines := s.program, s.lines
	s.mu.Unlock()
	if p != nil {
		p.Send(tui.EventMsg(ev))
		return
	}
	lines.Event(ev)
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

// watchOptions are the watch command's flags.
type watchOptions struct {
	configPath string
	interval   time.Duration
}

func newWatchCmd(stdout, stderr io.Writer) *cobra.Command {
	var opts watchOptions
	cmd := &cobra.Command{
		Use:   "watch [SERVICE]",
		Short: "Open the cockpit on the release of SERVICE, wherever it runs (another terminal, a CI job)",
		Long: `Open the cockpit on the release of SERVICE, read from Swarm, where every fridaymorning keeps its
state: the split, the steps, the last verdict with its evidence, the tasks. Its keys steer the release
through the same requests as fridaymorning abort and promote: the process driving it acts on them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("config") {
				opts.configPath = ""
			}
			return runWatch(cmd.Context(), opts, args, stdout)
		},
	}
	cmd.Flags().StringVarP(&opts.configPath, "config", "c", "fridaymorning.yaml", "config file")
	cmd.Flags().DurationVar(&opts.interval, "interval", time.Second, "how often to read the release from Swarm")
	return cmd
}

// journalController asks the process driving a release to act, through the release record in Swarm.
type journalController struct {
	sw      *swarm.Client
	service string
	errs    chan<- error
}

func (j journalController) Request(ctx context.Context, cmd release.Command) error {
	_, err := release.Request(ctx, j.sw, j.service, cmd)
	return err
}

// engineController hands the cockpit's commands to the engine this process drives; it never blocks.
type engineController struct{ e *release.Engine }

func (c engineController) Request(_ context.Context, cmd release.Command) error {
	c.e.Request(cmd)
	return nil
}

func runWatch(ctx context.Context, opts watchOptions, args []string, stdout io.Writer) error {
	fc, err := serviceConfig(opts.configPath, args, "watch")
	if err != nil {
		return err
	}
	if !wantCockpit(stdout) {
		return &exitErr{exitUsage, fmt.Errorf("watch needs a terminal: use fridaymorning status %s (--output json) in scripts", fc.Service)}
	}
	sw, err := swarm.New(swarm.Config{Host: fc.Docker.Host})
	if err != nil {
		return &exitErr{exitError, err}
	}
	defer sw.Close()
	errs := make(chan error, 4)
	th := tui.NewTheme(stdout)
	w := &wired{sw: sw, service: fc.Service}
	m := tui.New(tui.Options{
		Controller: journalController{sw: sw, service: fc.Service, errs: errs},
		Probes:     []tui.Probe{{Name: "docker", Run: sw.Ping}},
		Tasks:      w.tasks,
		Watching:   true,
		Theme:      &th,
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(stdout), tea.WithContext(ctx))
	go follow(ctx, sw, fc.Service, opts.interval, p, errs)
	_, err = p.Run()
	if err != nil && ctx.Err() == nil {
		return &exitErr{exitError, err}
	}
	return nil
}

// follow reads the release record every interval and sends what changed to the cockpit as events.
func follow(ctx context.Context, sw *swarm.Client, service string, interval time.Duration, p *tea.Program, errs <-chan error) {
	var last *release.Record
	for {
		rec, err := release.Load(ctx, sw, service)
		switch {
		case err != nil:
			p.Send(tui.ErrMsg{Err: fmt.Errorf("reading the release of %s from Swarm: %w", service, err)})
		case rec == nil:
			p.Send(tui.ErrMsg{Err: fmt.Errorf("service %s has no release yet", service)})
		default:
			for _, ev := range release.RecordEvents(last, rec, time.Now()) {
				p.Send(tui.EventMsg(ev))
			}
			last = rec
		}
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			p.Send(tui.ErrMsg{Err: err})
		case <-time.After(interval):
		}
	}
}
