package release

import (
	"context"
	"fmt"
	"time"
)

// Ask requests cmd of the process driving service's release and follows the release until it ends,
// until its driver stops showing signs of life, or until ctx ends. follow is called with the record each
// time its phase, step or message changes. stale true means the driver is gone (it died, halted or let
// go): the caller takes the release over, and finds the request still pending, which the take-over
// carries out. Nobody waits on a dead process.
func Ask(ctx context.Context, j Journal, p Pulse, service string, cmd Command, staleAfter, poll time.Duration, follow func(*Record)) (rec *Record, stale bool, err error) {
	asked, err := Request(ctx, j, service, cmd)
	if err != nil {
		return nil, false, err
	}
	last := ""
	for {
		cur, err := Load(ctx, j, service)
		if err == nil && cur != nil {
			if pos := fmt.Sprintf("%s/%d/%s", cur.Phase, cur.Step, cur.Message); pos != last {
				last = pos
				if follow != nil {
					follow(cur)
				}
			}
			if cur.ID != asked.ID || !cur.Active() {
				return cur, false, nil
			}
			if _, alive, err := Liveness(ctx, p, cur, staleAfter, time.Now()); err == nil && !alive {
				return cur, true, nil
			}
		}
		if !sleepCtx(ctx, poll) {
			return cur, false, fmt.Errorf("release %s did not end after asking it to %s: %w: see fridaymorning status %s", asked.ID, cmd, ctx.Err(), service)
		}
	}
}
