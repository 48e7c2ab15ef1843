package main

import (
	"context"
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
	if !wantCockpit(stdout, opts.root.headless) {
		return &exitErr{exitUsage, fmt.Errorf("watch needs a terminal: use fridaymorning status %s (--output json) in scripts", fc.Service)}
	}
	sw, err := fc.swarmClient()
	if err != nil {
		return err
	}
	defer sw.Close()
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
	go follow(ctx, sw, fc.Service, opts.interval, p)
	_, err = p.Run()
	if err != nil && ctx.Err() == nil {
		return &exitErr{exitError, err}
	}
	return nil
}

// follow reads the release record every interval and sends what changed to the cockpit as events.
func follow(ctx context.Context, sw *swarm.Client, service string, interval time.Duration, p *tea.Program) {
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
		case <-time.After(interval):
		}
	}
}
