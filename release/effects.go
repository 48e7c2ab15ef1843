package release

import (
	"context"
	"fmt"
)

// removeCanary drains the canary servers (a slow drain is only a warning) and removes the service.
func (e *Engine) removeCanary(ctx context.Context, st *state) error {
	if st.canary == "" {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
	err := e.deps.Router.Drain(dctx, GroupCanary)
	cancel()
	if err != nil {
		e.send(st, Event{Kind: KindWarning, Message: fmt.Sprintf("draining the canary: %v; removing it anyway", err)})
	}
	if err := e.deps.Canaries.RemoveService(ctx, st.canary); err != nil {
		return fmt.Errorf("canary service %s: %w: remove it with docker service rm %s", st.canary, err, st.canary)
	}
	e.send(st, Event{Kind: KindProgress, Message: "canary service " + st.canary + " removed"})
	return nil
}
