package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/release"
)

// steerOptions are the flags of pause and continue, the bake commands for the process driving a
// release.
type steerOptions struct {
	config configOptions
	cmd    release.Command
}

func newPauseCmd(stdout io.Writer) *cobra.Command {
	return newSteerCmd(&steerOptions{cmd: release.CommandPause},
		"Pause the bake of SERVICE's release: its clock stops, traffic stays, early looks go on", stdout)
}

func newContinueCmd(stdout io.Writer) *cobra.Command {
	return newSteerCmd(&steerOptions{cmd: release.CommandContinue}, "Continue a paused bake of SERVICE's release", stdout)
}

func newSteerCmd(opts *steerOptions, short string, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   string(opts.cmd) + " [SERVICE]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSteer(cmd.Context(), *opts, args, stdout)
		},
	}
	opts.config.addFlag(cmd, "config file")
	return cmd
}

// runSteer hands opts.cmd to the live process baking a step of the release of the service args names.
func runSteer(ctx context.Context, opts steerOptions, args []string, stdout io.Writer) error {
	fc, err := opts.config.loadService(args, string(opts.cmd))
	if err != nil {
		return err
	}
	sw, rec, err := fc.loadRecord(ctx)
	if err != nil {
		return err
	}
	defer sw.Close()
	if !rec.Active() || rec.Phase != release.PhaseBaking {
		return &exitErr{exitError, fmt.Errorf("service %s has no release baking a step%s", fc.Service, lastRelease(rec))}
	}
	if _, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now()); err != nil || !alive {
		return &exitErr{exitError, fmt.Errorf("no live process drives %s: `fridaymorning resume %s` takes it up", rec.ID, fc.Service)}
	}
	if _, err := release.Request(ctx, sw, fc.Service, opts.cmd); err != nil {
		return &exitErr{exitError, err}
	}
	logRequested(headless.NewLogger(stdout), rec, opts.cmd)
	return nil
}

// logRequested says that the process driving rec was asked to do cmd.
func logRequested(log *slog.Logger, rec *release.Record, cmd release.Command) {
	log.Info(fmt.Sprintf("asked %s, which drives %s, to %s", rec.Owner, rec.ID, cmd), headless.KeyEvent, "requested", headless.KeyRelease, rec.ID)
}
