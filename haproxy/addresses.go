package haproxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Address is where one server of the backend sends requests, as HAProxy runs it.
type Address struct {
	// Server is the server's name; Host its IP address (or name), "" when it has none (a
	// server-template slot waiting for DNS); Port 0 when it has none.
	Server, Host string
	Port         int
}

// Addresses returns, by group (GroupStable, GroupCanary), where the group's servers send requests, as
// HAProxy runs them now: from the Data Plane API's runtime servers, or from `show servers state` on the
// admin socket.
func (c *Client) Addresses(ctx context.Context) (map[string][]Address, error) {
	var all []Address
	var err error
	switch be := c.be.(type) {
	case *dataplane:
		all, err = be.addresses(ctx)
	case *runtimeSocket:
		all, err = be.addresses(ctx)
	default:
		return nil, fmt.Errorf("haproxy: %s cannot tell the servers' addresses", c.be)
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]Address{GroupStable: nil, GroupCanary: nil}
	for _, a := range all {
		s, k := member(c.cfg.StableServers, a.Server), member(c.cfg.CanaryServers, a.Server)
		switch {
		case s && k:
			return nil, fmt.Errorf("haproxy: server %q of backend %q matches both haproxy.stable_servers and haproxy.canary_servers", a.Server, c.cfg.Backend)
		case s:
			out[GroupStable] = append(out[GroupStable], a)
		case k:
			out[GroupCanary] = append(out[GroupCanary], a)
		}
	}
	for _, g := range out {
		sort.Slice(g, func(i, j int) bool { return g[i].Server < g[j].Server })
	}
	return out, nil
}

// runtimeServer is what the Data Plane API's runtime servers say of one server (v2 and v3 alike).
type runtimeServer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    *int64 `json:"port"`
}

// addresses reads the backend's runtime servers: GET /services/haproxy/runtime/servers?backend= in v2,
// …/runtime/backends/{backend}/servers in v3.
func (d *dataplane) addresses(ctx context.Context) ([]Address, error) {
	root, major, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	rq := request{method: http.MethodGet, path: "/services/haproxy/runtime/servers", query: url.Values{"backend": {d.cfg.Backend}}}
	if major != 2 {
		rq = request{method: http.MethodGet, path: "/services/haproxy/runtime/backends/" + url.PathEscape(d.cfg.Backend) + "/servers"}
	}
	var list []runtimeServer
	if _, err := d.send(ctx, root, rq, &list); err != nil {
		return nil, d.explain(err, fmt.Sprintf("runtime servers of backend %q", d.cfg.Backend))
	}
	out := make([]Address, 0, len(list))
	for _, s := range list {
		a := Address{Server: s.Name, Host: hostOf(s.Address)}
		if s.Port != nil && *s.Port > 0 && *s.Port < 1<<16 {
			a.Port = int(*s.Port)
		}
		out = append(out, a)
	}
	return out, nil
}

// addresses reads `show servers state BACKEND`.
func (r *runtimeSocket) addresses(ctx context.Context) ([]Address, error) {
	a, err := r.run(ctx, "show servers state "+r.cfg.Backend)
	if err != nil {
		return nil, err
	}
	return parseServersState(r.cfg.Backend, a[0])
}

// parseServersState reads the answer to `show servers state BACKEND`: a format version line, a header
// of column names after "# ", and one line of space-separated fields per server. Columns are found by
// name, so versions that add columns are read alike.
func parseServersState(backend, answer string) ([]Address, error) {
	lines := strings.Split(strings.TrimSpace(answer), "\n")
	if strings.HasPrefix(lines[0], "Can't find backend") || strings.Contains(lines[0], "No such backend") {
		return nil, fmt.Errorf("haproxy: backend %q not found (%w): check haproxy.backend in fridaymorning.yaml", backend, ErrNotFound)
	}
	col := map[string]int{}
	var out []Address
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			for i, name := range strings.Fields(rest) {
				col[name] = i
			}
			continue
		}
		f := strings.Fields(line)
		if len(col) == 0 || len(f) < 2 {
			continue // the format version, or an empty line
		}
		get := func(name string) (string, bool) {
			i, ok := col[name]
			if !ok || i >= len(f) {
				return "", false
			}
			return f[i], true
		}
		be, _ := get("be_name")
		name, ok := get("srv_name")
		if !ok || be != backend {
			continue
		}
		addr, _ := get("srv_addr")
		a := Address{Server: name, Host: hostOf(addr)}
		if p, _ := get("srv_port"); p != "" {
			if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 1<<16 {
				a.Port = n
			}
		}
		out = append(out, a)
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("haproxy: servers of backend %q: HAProxy answered %q, not show servers state's table", backend, truncate(answer))
	}
	for _, need := range []string{"be_name", "srv_name", "srv_addr", "srv_port"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("haproxy: servers of backend %q: show servers state has no %s column", backend, need)
		}
	}
	return out, nil
}

// hostOf is a server's address, "" for the placeholders of a server without one.
func hostOf(addr string) string {
	switch addr {
	case "", "-", "0.0.0.0", "::", "<unknown>":
		return ""
	}
	return addr
}
