package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newPromoteCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	opts := &controlOptions{mode: release.ResumePromote, exitCode: exitZeroOn(release.OutcomePromoted)}
	short := "Promote the release of SERVICE now, skipping its remaining steps, wherever it was started"
	return newControlCmd(opts, root, short, short+takeOverLong, stdout, stderr)
}
