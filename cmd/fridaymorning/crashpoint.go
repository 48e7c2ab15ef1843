package main

import (
	"os"
	"strings"
	"syscall"

	"github.com/fridaymorning/fridaymorning/release"
)

// envCrashAfter names a point at which the process kills itself with SIGKILL, for tests of what a crash
// leaves behind at an exact point: right after the first event whose "KIND MESSAGE" contains its value
// is shown, before the engine does anything more. It is for tests only; unset, it costs nothing.
const envCrashAfter = "FRIDAYMORNING_TEST_CRASH_AFTER"

// crashPoint returns what to call with every event: nothing unless envCrashAfter is set.
func crashPoint() func(release.Event) {
	at := os.Getenv(envCrashAfter)
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
