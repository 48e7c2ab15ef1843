// Package release is fridaymorning's release engine: a state machine that takes one Swarm service from its
// stable image to a new one through a canary, shifting traffic step by step and judging each step, and that
// either promotes the new image or aborts back to stable. It owns the flow and emits an Event at every
// transition; front ends (the headless printer, the terminal UI) only render events.
//
// The engine talks to the world through the small interfaces declared here (Canaries, Rollout, Router,
// Analyzer); the swarm, haproxy and analysis packages implement them and cmd/fridaymorning wires them in.
// This package imports none of them.
package release

import (
	"context"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// Group names a set of HAProxy servers: the stable service's or the canary's.
const (
	GroupStable = "stable"
	GroupCanary = "canary"
)

// Canaries creates and removes canary services next to a stable one.
type Canaries interface {
	// CreateCanary starts a canary of the stable service running target (an image, or a spec
	// reference: see Rollout), marked with releaseID, and returns the canary service's name.
	CreateCanary(ctx context.Context, stable, target, releaseID string) (string, error)
	// RemoveService removes a service and waits until its tasks are gone; a service that does not
	// exist is not an error.
	RemoveService(ctx context.Context, name string) error
	// ScaleCanary gives canary the tasks to carry share percent (0–100) of stable's traffic, as far as
	// it can: at 100 as many as stable has (a promotion), below it that share of stable's tasks, at least
	// the canary's configured count. It never removes tasks, reports whether it added some, and does not
	// wait for them.
	ScaleCanary(ctx context.Context, canary, stable string, share float64) (bool, error)
}

// Rollout changes what a service runs and waits for services to converge. What a service runs is a
// target: an image reference for a release of an image alone (--image), or an opaque reference to a
// whole service spec (a release from a stack file) that the adapter resolves. The engine only passes
// targets on and compares them.
type Rollout interface {
	// Image returns the image the service's spec runs.
	Image(ctx context.Context, service string) (string, error)
	// Current returns the target service runs now, such that Update with it puts the service back as
	// it is, and that equals the target an Update gave it.
	Current(ctx context.Context, service string) (string, error)
	// Update starts a rolling update of service to target; it does not wait for it to finish.
	Update(ctx context.Context, service, target string) error
	// WaitReady blocks until every desired task of service runs the service's image and is healthy,
	// calling progress with a short human-readable status whenever it changes. It fails early, naming
	// the task error, when tasks crash, cannot be scheduled or their image cannot be found.
	WaitReady(ctx context.Context, service string, progress func(string)) error
}

// Router moves traffic between the stable and canary servers of the load balancer.
type Router interface {
	// Shift sends canaryPercent (0–100) of new requests to the canary group. It returns the weights
	// read back from the load balancer, by server name, and the canary share they achieve.
	Shift(ctx context.Context, canaryPercent float64) (weights map[string]int, achievedPercent float64, err error)
	// WaitUp blocks until every server of group (GroupStable or GroupCanary) passes its health check.
	WaitUp(ctx context.Context, group string) error
	// Drain blocks until the servers of group have no open sessions left.
	Drain(ctx context.Context, group string) error
}

// UpExplainer is what a Router may also do: say, while its WaitUp waits for group, what it found still
// wrong at its last look ("" when it knows nothing to add), for the release's progress lines.
type UpExplainer interface {
	WaitingOn(group string) string
}

// Counter reads the load balancer's own request counters, by group (GroupStable, GroupCanary), counted
// since it started: the difference of two readings is a step's observed split.
type Counter interface {
	// Counts returns, by group (GroupCanary, GroupStable), the responses the group's servers have
	// sent since the load balancer started.
	Counts(ctx context.Context) (map[string]verdict.Tally, error)
}

// Analyzer judges the canary against stable over a window of time.
type Analyzer interface {
	// Analyze judges the requests served in w. An error means the judgement could not be made; the
	// returned Verdict then says why and is never a pass.
	Analyze(ctx context.Context, w verdict.Window) (verdict.Verdict, error)
}

// Notice is what a Preflight check returns, as its error, for something worth saying that the release
// works around: it is reported as a warning and the release goes on.
type Notice string

// Error returns the notice's text.
func (n Notice) Error() string { return string(n) }

// Preflight is one check that must hold before a release changes anything, such as an API being
// reachable or a backend existing.
type Preflight struct {
	// Name says what is checked, e.g. "haproxy".
	Name string
	// Run performs the check; its error should say what is wrong and what to do.
	Run func(ctx context.Context) error
	// Review, if set, is run once Run passed: the changes the release makes, for people to review
	// before anything changes; they go out on the check's KindPreflight event (Event.Changes). Its
	// error fails the preflight like Run's.
	Review func(ctx context.Context) ([]Change, error)
}

// PolicyRestorer is a Rollout whose UpdateImage gives the service an update policy fit for a promotion
// (see swarm.PromotionSpec) and that can put the service's own policy back once it converged, so that a
// release leaves the service's update policy as it found it.
type PolicyRestorer interface {
	// RestoreUpdatePolicy puts back the update policy service had before UpdateImage changed it; a
	// service whose policy UpdateImage did not change is left alone.
	RestoreUpdatePolicy(ctx context.Context, service string) error
}

// Stacks is a Rollout that knows which `docker stack` deployed a service: a `docker stack deploy` of
// that stack during a release replaces the release record, and after a promotion puts the stack file's
// image back, which the engine warns about.
type Stacks interface {
	// Stack returns the name of the stack service was deployed with; "" if none.
	Stack(ctx context.Context, service string) (string, error)
}

// BackendLock locks a load balancer backend for one release at a time, atomically across processes: two
// releases of different services configured with the same backend would judge and move each other's
// traffic. (The service's own lock is its release record.)
type BackendLock interface {
	// LockBackend takes backend's lock for release id of service. If another release holds it, it
	// returns that release's service and ID, and takes nothing.
	LockBackend(ctx context.Context, backend, service, id string) (heldByService, heldByRelease string, err error)
	// UnlockBackend releases backend's lock if release id holds it.
	UnlockBackend(ctx context.Context, backend, id string) error
}
