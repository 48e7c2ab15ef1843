// Package crashpoint is a fault injector for the end-to-end tests of what a crash leaves behind: with
// FRIDAYMORNING_TEST_CRASH_AFTER set, the process kills itself with SIGKILL right after the first event
// whose "KIND MESSAGE" contains its value, before the engine does anything more. It is for tests only
// (placing a kill -9 at an exact point of a release); unset, it costs nothing. No front end decides
// anything from an event's text: this is the one place that reads it, and only to die.
package crashpoint

import (
	"os"
	"strings"
	"syscall"

	"github.com/fridaymorning/fridaymorning/release"
)

// Env names the point at which the process kills itself.
const Env = "FRIDAYMORNING_TEST_CRASH_AFTER"

// Hook returns what to call with every event: nothing unless Env is set.
func Hook() func(release.Event) {
	at := os.Getenv(Env)
	if at == "" {
		return func(release.Event) {}
	}
	return func(ev release.Event) {
		if strings.Contains(string(ev.Kind)+" "+ev.Message, at) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way: nothing else runs
		}
	}
}
