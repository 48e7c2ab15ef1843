package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newAbortCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	// Any abort carried out to its end succeeds, whatever made the release abort; so does the rollback
	// that an abort of a release rolling back finishes.
	opts := &controlOptions{mode: release.ResumeAbort, exitCode: func(o release.Outcome) int {
		if o.Aborted() || o == release.OutcomeRolledBack {
			return 0
		}
		return exitError
	}}
	short := "Abort the release of SERVICE, wherever it was started: traffic back to stable, canary removed"
	return newControlCmd(opts, root, short, short+takeOverLong, stdout, stderr)
}
