package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/fridaymorning/fridaymorning/release"
)

func newResumeCmd(root *rootOptions, stdout, stderr io.Writer) *cobra.Command {
	opts := &controlOptions{mode: release.ResumeContinue, exitCode: exitCodeFor}
	short := "Continue a release whose process died, from where it stood"
	long := short + `.

The release is found in Swarm, where every fridaymorning keeps its state: a step being baked is baked
again, a promotion or an abort is carried through. It refuses a release whose process is still alive
(its heartbeat is fresh) unless --force.`
	return newControlCmd(opts, root, short, long, stdout, stderr)
}
