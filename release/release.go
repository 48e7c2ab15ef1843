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
	"time"
)

// Group names a set of HAProxy servers: the stable service's or the canary's.
const (
	GroupStable = "stable"
	GroupCanary = "canary"
)

// Canaries creates and removes canary services next to a stable one.
type Canaries interface {
	// CreateCanary starts a canary of the stable service running image, marked with releaseID, and
	// returns the canary service's name.
	CreateCanary(ctx context.Context, stable, image, releaseID string) (string, error)
	// RemoveService removes a service and waits until its tasks are gone; a service that does not
	// exist is not an error.
	RemoveService(ctx context.Context, name string) error
	// ScaleCanary gives canary as many tasks as stable has, as far as it can, so that it can carry all
	// of stable's traffic during a promotion. It does not wait for the new tasks.
	ScaleCanary(ctx context.Context, canary, stable string) error
}

// Rollout changes a service's image and waits for services to converge.
type Rollout interface {
	// Image returns the image the service's spec runs.
	Image(ctx context.Context, service string) (string, error)
	// UpdateImage starts a rolling update of service to image; it does not wait for it to finish.
	UpdateImage(ctx context.Context, service, image string) error
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

// Counter reads the load balancer's own request counters, by group (GroupStable, GroupCanary), counted
// since it started: the difference of two readings is a step's observed split.
type Counter interface {
	// Counts returns, by group (GroupCanary, GroupStable), the responses the group's servers have
	// sent since the load balancer started.
	Counts(ctx context.Context) (map[string]Tally, error)
}

// Tally is what the load balancer's counters say of one group.
type Tally struct {
	// Requests answered and, of those, answered with a 5xx status.
	Requests, Errors5xx int64
}

// Window is a span of time to judge.
type Window struct {
	From, To time.Time
	// Share is the canary's share of requests in the window, in percent.
	Share float64
	// Early marks a look during a bake: it only ever fails a canary (or finds nothing), holding its
	// tests to a stricter level since the bake takes Looks of them.
	Early bool
	Looks int
	// Canary and Stable are the load balancer's own counts of the window, a second signal to check
	// the metrics store against; nil when unknown.
	Canary, Stable *Tally
}

// Analyzer judges the canary against stable over a window of time.
type Analyzer interface {
	// Analyze judges the requests served in w. An error means the judgement could not be made; the
	// returned Verdict then says why and is never a pass.
	Analyze(ctx context.Context, w Window) (Verdict, error)
}

// Preflight is one check that must hold before a release changes anything, such as an API being
// reachable or a backend existing.
type Preflight struct {
	// Name says what is checked, e.g. "haproxy".
	Name string
	// Run performs the check; its error should say what is wrong and what to do.
	Run func(ctx context.Context) error
}

// Result is the outcome of a judgement.
type Result string

// The results of a check or a step's analysis. Only ResultPass lets a release go on.
const (
	ResultPass         Result = "pass"
	ResultFail         Result = "fail"
	ResultInconclusive Result = "inconclusive"
)

// Metrics are one group's request statistics over an analysis window.
type Metrics struct {
	Requests, Errors int64
	// ErrorRate is the share of requests that failed, in percent.
	ErrorRate          float64
	P50, P90, P95, P99 time.Duration
}

// Check is one criterion of a verdict with the evidence behind it.
type Check struct {
	Name                  string
	Result                Result
	Canary, Stable, Limit float64
	Unit                  string
	// CanaryN and StableN are the sample sizes looked at.
	CanaryN, StableN int64
	// Test names the statistical test that ran ("" if none), Statistic its numbers, PValue its
	// one-sided p-value, Alpha the level it was held to.
	Test, Statistic string
	PValue, Alpha   float64
	// More is, for an inconclusive check, about how many more canary requests would settle it (-1:
	// more of the same would not).
	More   int64
	Detail string
}

// Verdict is the judgement of one analysis window, with its evidence.
type Verdict struct {
	Result Result
	// Reason is one line saying why, with the numbers that decided it.
	Reason         string
	Canary, Stable Metrics
	Checks         []Check
	// Queries are the queries that produced the numbers.
	Queries []string
	// More is, for an inconclusive verdict, about how many more canary requests would settle it (-1:
	// more of the same would not); Wait about how long they take at the current rate.
	More int64
	Wait time.Duration
	// Early marks the verdict of a look during a bake.
	Early bool
}
