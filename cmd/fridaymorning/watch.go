package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
	"github.com/fridaymorning/fridaymorning/tui"
)

// watchOptions are the watch command's flags.
type watchOptions struct {
	root     *rootOptions
	config   configOptions
	interval time.Duration
}

func newWatchCmd(root *rootOptions, stdout io.Writer) *cobra.Command {
	opts := watchOptions{root: root}
	cmd := &cobra.Command{
		Use:   "watch [SERVICE]",
		Short: "Open the cockpit on the release of SERVICE, wherever it runs (another terminal, a CI job)",
		Long: `Open the cockpit on the release of SERVICE, read from Swarm, where every fridaymorning keeps its
state: the split, the steps, the last verdict with its evidence, the tasks. Its keys steer the release
through the same requests as fridaymorning abort and promote: the process driving it acts on them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd.Flags(), "interval", opts.interval, "1s"); err != nil {
				return err
			}
			return runWatch(cmd.Context(), opts, args, stdout)
		},
	}
	opts.config.addFlag(cmd, "config file")
	cmd.Flags().DurationVar(&opts.interval, "interval", time.Second, "how often to read the release from Swarm")
	return cmd
}

// journalController asks the process driving a release to act, through the release record in Swarm.
type journalController struct {
	sw      *swarm.Client
	service string
}

func (j journalController) Request(ctx context.Context, cmd release.Command) error {
	_, err := release.Request(ctx, j.sw, j.service, cmd)
	return err
}

// runWatch opens the cockpit on the release of the service args names, as kept in Swarm.
func runWatch(ctx context.Context, opts watchOptions, args []string, stdout io.Writer) error {
	fc, err := opts.config.loadService(args, "watch")
	if err != nil {
		return err
	}
	sw, err := fc.swarmClient()
	if err != nil {
		return err
	}
	defer sw.Close()
	// A service that is not there is said at once, in full, rather than as an error line in a cockpit
	// that waits for ever.
	if _, err := release.Load(ctx, sw, fc.Service); err != nil {
		return &exitErr{exitError, err}
	}
	if !wantCockpit(stdout, opts.root.headless) {
		return &exitErr{exitUsage, fmt.Errorf("watch needs a terminal: use fridaymorning status %s (--output json) in scripts", fc.Service)}
	}
	th := tui.NewTheme(stdout)
	w := &wired{sw: sw, service: fc.Service}
	m := tui.New(tui.Options{
		Controller: journalController{sw: sw, service: fc.Service},
		Probes:     []tui.Probe{{Name: "docker", Run: sw.Ping}},
		Tasks:      w.tasks,
		Watching:   true,
		Theme:      &th,
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(stdout), tea.WithContext(ctx))
	gone := make(chan error, 1)
	go follow(ctx, sw, fc.Service, opts.interval, p, gone)
	_, err = p.Run()
	select {
	case err := <-gone:
		return &exitErr{exitError, err}
	default:
	}
	if err != nil && ctx.Err() == nil {
		return &exitErr{exitError, err}
	}
	return nil
}

// follow reads the release record every interval and sends what changed to the cockpit as events. If
// the service goes away, it quits the cockpit and hands the error to gone: there is nothing left to watch.
func follow(ctx context.Context, sw *swarm.Client, service string, interval time.Duration, p *tea.Program, gone chan<- error) {
	var last *release.Record
	for {
		rec, err := release.Load(ctx, sw, service)
		switch {
		case errors.Is(err, swarm.ErrNotFound):
			gone <- err
			p.Quit()
			return
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
		case <-time.After(interval):
		}
	}
}
