package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/headless"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// controlOptions are the flags of resume, abort, promote and rollback, the commands that act on a
// release wherever it was started.
type controlOptions struct {
	runOptions
	force   bool
	timeout time.Duration
	// mode is what the command does; exitCode maps the release's outcome to the exit code, as which
	// outcome counts as success depends on what was asked.
	mode     release.ResumeMode
	exitCode func(release.Outcome) int
}

// takeOverLong is the rest of the help of abort, promote and rollback.
const takeOverLong = `.

The release is found in Swarm, where every fridaymorning keeps its state. If the process driving it is
alive (another terminal, a CI job), it is asked to do it and this command follows the release until it
ends; if that process died, this one takes the release over and does it itself.`

// newControlCmd returns the command of opts.mode, described by short and long.
func newControlCmd(opts *controlOptions, root *rootOptions, short, long string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   string(opts.mode) + " [SERVICE]",
		Short: short,
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(cmd.Flags()); err != nil {
				return err
			}
			if err := checkPositive(cmd.Flags(), "timeout", opts.timeout, "15m"); err != nil {
				return err
			}
			return runControl(cmd.Context(), *opts, args, stdout, stderr)
		},
	}
	cmd.Flags().BoolVar(&opts.force, "force", false, "take the release over even if its process seems alive")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 15*time.Minute, "how long to follow a release another process carries out")
	opts.addFlags(cmd, root)
	return cmd
}

// exitZeroOn returns the exit code of a command that succeeds when the release ends in one of want.
func exitZeroOn(want ...release.Outcome) func(release.Outcome) int {
	return func(o release.Outcome) int {
		for _, w := range want {
			if o == w {
				return 0
			}
		}
		return exitError
	}
}

// runControl does opts.mode to the release of the service args names: it asks the live process
// driving it, or else takes it over.
func runControl(ctx context.Context, opts controlOptions, args []string, stdout, stderr io.Writer) error {
	fc, err := opts.config.loadService(args, string(opts.mode))
	if err != nil {
		return err
	}
	if opts.mode != release.ResumeContinue && !opts.force {
		sw, rec, err := fc.loadRecord(ctx)
		if err != nil {
			return err
		}
		defer sw.Close()
		if !rec.Active() {
			return &exitErr{exitError, fmt.Errorf("service %s has no release in progress%s: nothing to %s (fridaymorning status %s shows its record)", fc.Service, lastRelease(rec), opts.mode, fc.Service)}
		}
		if _, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now()); err == nil && alive {
			return ask(ctx, sw, fc.Service, rec, release.Command(opts.mode), opts.timeout, stdout, opts.exitCode)
		}
	}
	return drive(ctx, opts.runOptions, fc, "", stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Resume(ctx, opts.mode, opts.force)
	}, opts.exitCode)
}

func lastRelease(rec *release.Record) string {
	if rec == nil {
		return ""
	}
	return fmt.Sprintf(" (the last one, %s, ended %s)", rec.ID, rec.Outcome)
}

// ask requests cmd from the live process driving the release and follows the record until the release
// ends, printing each change of phase or step.
func ask(ctx context.Context, sw *swarm.Client, service string, rec *release.Record, cmd release.Command, timeout time.Duration,
	stdout io.Writer, code func(release.Outcome) int) error {
	if _, err := release.Request(ctx, sw, service, cmd); err != nil {
		return &exitErr{exitError, err}
	}
	log := headless.NewLogger(stdout)
	logRequested(log, rec, cmd)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		cur, err := release.Load(ctx, sw, service)
		if err == nil && cur != nil {
			if pos := fmt.Sprintf("%s/%d", cur.Phase, cur.Step); pos != last {
				last = pos
				attrs := []any{headless.KeyEvent, "followed", headless.KeyRelease, cur.ID, headless.KeyPhase, string(cur.Phase)}
				if cur.Outcome != "" {
					attrs = append(attrs, headless.KeyOutcome, string(cur.Outcome))
				}
				log.Info(cur.Message, attrs...)
			}
			if cur.ID != rec.ID || !cur.Active() {
				if c := code(cur.Outcome); c != 0 {
					return &exitErr{c, fmt.Errorf("release %s ended %s: %s", cur.ID, cur.Outcome, cur.Message)}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return &exitErr{exitError, fmt.Errorf("release %s did not end within %s after asking it to %s: see fridaymorning status %s", rec.ID, timeout, cmd, service)}
		case <-time.After(500 * time.Millisecond):
		}
	}
}
