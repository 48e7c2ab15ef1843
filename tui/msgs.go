package tui

import (
	"time"

	"github.com/fridaymorning/fridaymorning/release"
)

// EventMsg carries one release event into the cockpit.
type EventMsg release.Event

// ErrMsg reports that the event source failed (watch mode: Swarm unreachable); the screen says so.
type ErrMsg struct{ Err error }

// tickMsg is the clock's beat: once a second the screen is drawn again (bake countdowns move).
type tickMsg time.Time

// probeTick says it is time to check the dependencies again.
type probeTick struct{}

// probeMsg is how one dependency answered the check of generation gen.
type probeMsg struct {
	name string
	gen  uint64
	took time.Duration
	err  error
}

// tasksTick says it is time to poll the task states again.
type tasksTick struct{}

// tasksMsg is the answer of the tasks poll of generation gen.
type tasksMsg struct {
	gen            uint64
	canary, stable string
	err            error
}

// sentMsg reports how the delivery of an operator's command to the release went.
type sentMsg struct {
	cmd release.Command
	err error
}
