package haproxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// Address is where one server sends its requests, as HAProxy runs it.
type Address struct {
	// Addr is "host:port"; "" for a template slot without an address.
	Addr string
	// Serving says the server takes traffic now: up (or not checked) with a weight above 0. A server
	// that is down, in maintenance or at weight 0 has nothing to judge; a template slot whose task has
	// gone (a canary removed, a node lost) keeps the old address until Docker's DNS drops it seconds
	// later, and a removed canary's slots are at weight 0.
	Serving bool
	// Up says the server passes its health checks (or is not checked), whatever its weight: a canary's
	// server at weight 0 before its first step is up but not serving.
	Up bool
}

// HostPort splits Addr; port 0 and ok false when it has none, or none that is a port.
func (a Address) HostPort() (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(a.Addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n >= 1<<16 || h == "" {
		return "", 0, false
	}
	return h, n, true
}

// Addresses returns where each server of group (GroupStable or GroupCanary) sends its requests, by
// server name, as HAProxy runs them, and whether it takes traffic now. A release checks with them that
// the servers it moves traffic between are its services' own (the serving ones), and that every server
// points at a port the service publishes (all of them: a server at a port nothing publishes is down).
func (c *Client) Addresses(ctx context.Context, group string) (map[string]Address, error) {
	states, err := c.be.servers(ctx)
	if err != nil {
		return nil, err
	}
	names, err := c.group(states, group)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Address, len(names))
	for _, n := range names {
		st := states[n]
		a := Address{Addr: st.Addr}
		if a.Addr == "-" {
			a.Addr = ""
		}
		a.Up = a.Addr != "" && st.Usable()
		a.Serving = a.Up && st.Weight != 0
		out[n] = a
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("haproxy: backend %q has no %s servers: check haproxy.%s_servers", c.cfg.Backend, group, group)
	}
	return out, nil
}
