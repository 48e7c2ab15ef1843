package haproxy

import (
	"context"
	"fmt"
)

// Addresses returns where each server of group (GroupStable or GroupCanary) sends its requests, by
// server name, as HAProxy runs them: "host:port", or "" for a server that takes no traffic (a template
// slot without an address; one down, in maintenance or at weight 0). A release checks with them that the
// servers it moves traffic between are its services' own.
func (c *Client) Addresses(ctx context.Context, group string) (map[string]string, error) {
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, err
	}
	names, err := c.group(states, group)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		st := states[n]
		addr := st.Addr
		// A server that takes no traffic (down, in maintenance, or at weight 0) has nothing to judge: no
		// address. A template slot whose task has gone (a canary removed, a node lost) keeps the old
		// address until Docker's DNS drops it seconds later; a removed canary's slots are at weight 0.
		if addr == "-" || !st.Usable() || st.Weight == 0 {
			addr = ""
		}
		out[n] = addr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("haproxy: backend %q has no %s servers: check haproxy.%s_servers", c.cfg.Backend, group, group)
	}
	return out, nil
}
