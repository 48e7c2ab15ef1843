package main

import (
	"context"
	"fmt"
	"io"
	"strings"
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
	// releaseID and image are --release and --image: the release the command is meant for; another one
	// is refused.
	releaseID, image string
	// skipAnalysis is promote's --skip-analysis: a paused release is promoted on its last verdict.
	skipAnalysis bool
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
			// An empty --release or --image ("$FRIDAYMORNING_RELEASE" unset in a CI job) would act on
			// whatever release runs: refused, not read as "any".
			for _, f := range []struct{ name, value, what string }{{"release", opts.releaseID, "the release ID"}, {"image", opts.image, "the image"}} {
				if cmd.Flags().Changed(f.name) && strings.TrimSpace(f.value) == "" {
					return &exitErr{exitUsage, fmt.Errorf("--%s %q: name %s to act on, or leave --%s out to act on the release in progress, whichever it is", f.name, f.value, f.what, f.name)}
				}
			}
			return runControl(cmd.Context(), *opts, args, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.force, "force", false, "take the release over even if its process seems alive")
	f.DurationVar(&opts.timeout, "timeout", 15*time.Minute, "how long to follow a release another process carries out")
	f.StringVar(&opts.releaseID, "release", "", "act only on this release ID (a CI job passes the one it gated, e.g. $FRIDAYMORNING_RELEASE): another release is refused")
	f.StringVar(&opts.image, "image", "", "act only on a release of this image: another one is refused")
	if opts.mode == release.ResumePromote {
		f.BoolVar(&opts.skipAnalysis, "skip-analysis", false, "promote a paused release on its last verdict instead of judging a fresh window first")
	}
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
// driving it and follows the release, or else (the process died, halted or let go, also while it is
// being asked) takes it over.
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
		if err := release.Expect(rec, opts.releaseID, opts.image); err != nil {
			return &exitErr{exitError, err}
		}
		if _, alive, err := release.Liveness(ctx, sw, rec, fc.staleAfter(), time.Now()); err == nil && alive {
			if done, err := ask(ctx, sw, fc, rec, opts, stdout); done {
				return err
			}
			// The driver went quiet while it was asked: take the release over; the request is still
			// pending, and the take-over carries it out.
		}
	}
	resume := release.ResumeOptions{Force: opts.force, SkipAnalysis: opts.skipAnalysis, ReleaseID: opts.releaseID, Image: opts.image}
	return drive(ctx, opts.runOptions, fc, "", stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
		return e.Resume(ctx, opts.mode, resume)
	}, opts.exitCode)
}

func lastRelease(rec *release.Record) string {
	if rec == nil {
		return ""
	}
	return fmt.Sprintf(" (the last one, %s, ended %s)", rec.ID, rec.Outcome)
}

// ask requests opts.mode of the live process driving rec and follows the record, printing each change,
// until the release ends (done, with the command's exit code) or its driver stops showing signs of life
// (not done: the caller takes it over).
func ask(ctx context.Context, sw *swarm.Client, fc *fileConfig, rec *release.Record, opts controlOptions, stdout io.Writer) (done bool, err error) {
	log := headless.NewLogger(stdout)
	cmd := release.Command(opts.mode)
	logRequested(log, rec, cmd)
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	cur, stale, err := release.Ask(ctx, sw, sw, fc.Service, cmd, fc.staleAfter(), 500*time.Millisecond, func(cur *release.Record) {
		attrs := []any{headless.KeyEvent, "followed", headless.KeyRelease, cur.ID, headless.KeyPhase, string(cur.Phase)}
		if cur.Outcome != "" {
			attrs = append(attrs, headless.KeyOutcome, string(cur.Outcome))
		}
		log.Info(cur.Message, attrs...)
	})
	switch {
	case err != nil:
		return true, &exitErr{exitError, fmt.Errorf("%w (asked to %s within --timeout %s)", err, cmd, opts.timeout)}
	case stale:
		log.Info(fmt.Sprintf("the process driving %s shows no sign of life any more: taking the release over to %s", cur.ID, cmd), headless.KeyEvent, "stale", headless.KeyRelease, cur.ID)
		return false, nil
	}
	if c := opts.exitCode(cur.Outcome); c != 0 {
		return true, &exitErr{c, fmt.Errorf("release %s ended %s: %s", cur.ID, cur.Outcome, cur.Message)}
	}
	return true, nil
}
