// Command fridaymorning releases a Docker Swarm service behind HAProxy through a canary: it shifts a
// share of live traffic to the new image step by step, judges it against stable from InfluxDB, and
// promotes or aborts. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/internal/buildinfo"
	"github.com/fridaymorning/fridaymorning/release"
)

// Exit codes. They are part of fridaymorning's interface: CI pipelines branch on them.
const (
	exitPromoted            = 0
	exitError               = 1 // the release could not be carried out; the message says what was left behind
	exitUsage               = 2 // bad flags or arguments
	exitAbortedAnalysis     = 3 // the canary was judged bad and aborted; stable untouched
	exitAbortedOperator     = 4 // interrupted and aborted safely
	exitAbortedInconclusive = 5 // too little data to judge: aborted (no data never counts as healthy), or paused for a human
	exitRolledBack          = 6 // promoted, then rolled back to the warm standby while this process kept it
	exitAbortedError        = 7 // an error stopped the release and it was aborted: stable untouched, canary removed
)

// exitCodeFor maps a release outcome to the process's exit code.
func exitCodeFor(o release.Outcome) int {
	switch o {
	case release.OutcomePromoted:
		return exitPromoted
	case release.OutcomeAbortedAnalysis:
		return exitAbortedAnalysis
	case release.OutcomeAbortedOperator:
		return exitAbortedOperator
	case release.OutcomeAbortedInconclusive, release.OutcomePaused:
		return exitAbortedInconclusive
	case release.OutcomeRolledBack:
		return exitRolledBack
	case release.OutcomeAbortedError:
		return exitAbortedError
	}
	return exitError
}

// exitErr carries an exit code out of a command.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

// rootOptions are the flags every command has.
type rootOptions struct {
	// headless is --headless: line output even in a terminal.
	headless bool
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var opts rootOptions
	root := &cobra.Command{
		Use:   "fridaymorning",
		Short: "Canary releases for Docker Swarm services behind HAProxy",
		Long: `fridaymorning releases a new image of a Docker Swarm service through a canary: it starts the canary
next to the stable service, shifts a share of live traffic to it through HAProxy's Data Plane API step by
step, judges it against stable from InfluxDB, and promotes it or aborts back to stable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVar(&opts.headless, "headless", false, "line output even in a terminal (the default in CI and without a terminal)")
	root.AddCommand(
		newReleaseCmd(&opts, stdout, stderr),
		newStatusCmd(stdout),
		newResumeCmd(&opts, stdout, stderr),
		newAbortCmd(&opts, stdout, stderr),
		newPromoteCmd(&opts, stdout, stderr),
		newRollbackCmd(&opts, stdout, stderr),
		newWatchCmd(&opts, stdout),
		newDrillCmd(stdout),
		newPauseCmd(stdout),
		newContinueCmd(stdout),
		newVersionCmd(stdout),
		newUnlockCmd(&opts, stdout, stderr),
		newSuperviseCmd(stdout),
	)
	root.Version = buildinfo.Get().Version
	root.SetVersionTemplate(buildinfo.Get().String() + "\n")
	return root
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitPromoted
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "fridaymorning:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: an unknown flag or command, a flag's value that does not parse, a missing
	// required flag, too many arguments.
	fmt.Fprintf(stderr, "fridaymorning: %s: see `%s --help`\n", strings.TrimSpace(err.Error()), cmd.CommandPath())
	return exitUsage
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
