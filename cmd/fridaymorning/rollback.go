package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newRollbackCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	opts := &controlOptions{mode: release.ResumeRollback, exitCode: exitZeroOn(release.OutcomeRolledBack)}
	short := "Roll a promoted release of SERVICE back to the warm standby of its previous version"
	return newControlCmd(opts, root, short, short+takeOverLong, stdout, stderr)
}
