package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

// unlockOptions are the unlock command's flags.
type unlockOptions struct {
	runOptions
	force bool
}

func newUnlockCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	opts := &unlockOptions{}
	cmd := &cobra.Command{
		Use:   "unlock [SERVICE]",
		Short: "Clear a release of SERVICE that no command can carry on: traffic on what is healthy, lock released",
		Long: `Clear the release of SERVICE when resume, abort and rollback cannot carry it on (they halt every
time, or refuse its phase), without docker.

unlock takes the release over (from a dead process only, unless --force), looks at what actually runs
rather than at what the record says, puts all traffic on what is healthy (stable if it is, else the
canary), removes the canary if stable carries the traffic, and ends the record as unlocked, which frees
the service for the next release. It reports what ran and what it did.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(cmd.Flags()); err != nil {
				return err
			}
			fc, err := opts.config.loadService(args, "unlock")
			if err != nil {
				return err
			}
			return drive(cmd.Context(), opts.runOptions, fc, "", stdout, stderr, func(ctx context.Context, e *release.Engine) (release.Outcome, error) {
				out, _, err := e.Unlock(ctx, opts.force)
				return out, err
			}, exitZeroOn(release.OutcomeUnlocked))
		},
	}
	cmd.Flags().BoolVar(&opts.force, "force", false, "unlock even if the release's process seems alive")
	opts.addFlags(cmd, root)
	return cmd
}
