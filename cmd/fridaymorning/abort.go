package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newAbortCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	opts := &controlOptions{mode: release.ResumeAbort,
		exitCode: exitZeroOn(release.OutcomeAbortedOperator, release.OutcomeAbortedAnalysis, release.OutcomeAbortedInconclusive)}
	short := "Abort the release of SERVICE, wherever it was started: traffic back to stable, canary removed"
	return newControlCmd(opts, root, short, short+takeOverLong, stdout, stderr)
}
