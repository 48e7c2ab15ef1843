package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newPromoteCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	// A paused release whose fresh window is inconclusive stays paused: exit 5, as at the gate.
	opts := &controlOptions{mode: release.ResumePromote, exitCode: func(o release.Outcome) int {
		switch o {
		case release.OutcomePromoted:
			return 0
		case release.OutcomePaused:
			return exitAbortedInconclusive
		}
		return exitError
	}}
	short := "Promote the release of SERVICE now, skipping its remaining steps, wherever it was started"
	long := short + takeOverLong + `

A paused release (at the promotion gate, or paused as inconclusive) is judged again first, on a fresh
window a bake long: it is promoted if that passes, aborted if it fails, and stays paused (exit 5) if it
is inconclusive. --skip-analysis promotes it on its last verdict, however old.`
	return newControlCmd(opts, root, short, long, stdout, stderr)
}
