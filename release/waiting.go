package release

import (
	"fmt"
	"time"
)

// defaultWaitNotice is how often a call that has not returned is said, unless Config.WaitNotice says.
const defaultWaitNotice = 5 * time.Second

// await runs call, a call to an adapter that may block (a metrics store that does not answer, a load
// balancer that is down), and until it returns sends a KindProgress event every WaitNotice saying what
// the release waits for and since when: the output never goes silent. The events go out from the
// engine's goroutine, as all others; call runs on a goroutine of its own, touches no engine state, and
// returns once its context ends.
func await[T any](e *Engine, st *state, what string, call func() (T, error)) (T, error) {
	return awaitWhy(e, st, what, nil, call)
}

// awaitWhy is await whose progress events also say why, as why tells it at the time ("" for nothing
// to add): what the adapter found still wrong at its last look.
func awaitWhy[T any](e *Engine, st *state, what string, why func() string, call func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	every := e.cfg.WaitNotice
	if every <= 0 {
		every = defaultWaitNotice
	}
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			return r.v, r.err
		case now := <-tick.C:
			msg := fmt.Sprintf("waiting for %s since %s", what, now.Sub(start).Round(time.Second))
			if why != nil {
				if w := why(); w != "" {
					msg += ": " + w
				}
			}
			e.send(st, Event{Kind: KindProgress, CanaryPercent: st.canaryPercent, Message: msg})
		}
	}
}

// awaitErr is await for a call that returns only an error.
func awaitErr(e *Engine, st *state, what string, call func() error) error {
	_, err := await(e, st, what, func() (struct{}, error) { return struct{}{}, call() })
	return err
}

// metricsStore names the Analyzer's far end in messages.
func (e *Engine) metricsStore(doing string) string {
	return orDefault(e.cfg.MetricsStore, "the metrics store") + " (" + doing + ")"
}

// loadBalancer names the Router's far end in messages.
func (e *Engine) loadBalancer(doing string) string {
	return orDefault(e.cfg.LoadBalancer, "the load balancer") + " (" + doing + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
