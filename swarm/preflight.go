package swarm

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// checkServable refuses services a canary cannot stand next to: one without tasks (nothing to compare
// the canary with, nothing to send stable's share to), a global one (one task per node: the canary
// would need the same placement, which fridaymorning does not do yet) and jobs (they end, and serve
// nothing).
func checkServable(svc swarm.Service) error {
	name, m := svc.Spec.Name, svc.Spec.Mode
	switch {
	case m.Global != nil:
		return fmt.Errorf("swarm: service %q runs in global mode (one task per node): fridaymorning releases replicated services only; switch it to replicated mode (docker service create --mode replicated, or mode: replicated in the stack file), or release it with docker service update --image", name)
	case m.ReplicatedJob != nil || m.GlobalJob != nil:
		return fmt.Errorf("swarm: service %q is a job: its tasks run to completion and serve no traffic, so there is nothing to release through a canary: run it with docker service update --image", name)
	case m.Replicated != nil && m.Replicated.Replicas != nil && *m.Replicated.Replicas == 0:
		return fmt.Errorf("swarm: service %q has 0 replicas: no stable task serves traffic for the canary to be judged against: scale it first (docker service scale %s=1)", name, name)
	}
	return nil
}

// Endpoint is where a load balancer's server sends requests.
type Endpoint struct {
	// Server is the load balancer's name for it; Host an IP address or a name, "" when it has none yet
	// (a server-template slot waiting for DNS); Port 0 when it has none.
	Server, Host string
	Port         int
}

func (e Endpoint) String() string { return net.JoinHostPort(e.Host, fmt.Sprint(e.Port)) }

// CheckServed checks, without changing anything, that the load balancer's servers reach the service
// where it can be reached: a stable server that points at this host or a node of the swarm needs the
// port to be one the stable service publishes, and a canary server there needs it to be one its canary
// will publish (canary.ports maps stable's ports to the canary's). Servers addressed by name, or at
// another address (a task's, a virtual IP, a load balancer's), are Swarm's networking to route and are
// not judged.
func (c *Client) CheckServed(ctx context.Context, stable string, stableServers, canaryServers []Endpoint) error {
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return err
	}
	local, err := c.nodeAddrs(ctx)
	if err != nil {
		return err
	}
	onHost := func(e Endpoint) bool {
		ip := net.ParseIP(e.Host)
		return ip != nil && e.Port != 0 && (ip.IsLoopback() || local[ip.String()])
	}
	published := map[int]bool{}
	var publishes []string
	add := func(p swarm.PortConfig) {
		if p.PublishedPort != 0 && !published[int(p.PublishedPort)] {
			published[int(p.PublishedPort)] = true
			publishes = append(publishes, fmt.Sprintf("%d→%d (%s mode)", p.PublishedPort, p.TargetPort, p.PublishMode))
		}
	}
	if svc.Spec.EndpointSpec != nil {
		for _, p := range svc.Spec.EndpointSpec.Ports {
			add(p)
		}
	}
	for _, p := range svc.Endpoint.Ports { // ports Swarm assigned itself
		add(p)
	}
	sort.Strings(publishes)
	what := "no port"
	if len(publishes) > 0 {
		what = strings.Join(publishes, ", ")
	}
	for _, e := range stableServers {
		if onHost(e) && !published[e.Port] {
			return fmt.Errorf("swarm: HAProxy's stable server %s sends requests to %s, but service %q does not publish port %d (it publishes %s), nor would its canary: publish the port (docker service update --publish-add mode=host,published=%d,target=PORT %s), or point the server at the service",
				e.Server, e, stable, e.Port, what, e.Port, stable)
		}
	}
	canaryPorts := map[int]bool{}
	var mapped []string
	if svc.Spec.EndpointSpec != nil {
		for _, p := range svc.Spec.EndpointSpec.Ports {
			if to, ok := c.cfg.CanaryPorts[p.PublishedPort]; ok && p.PublishedPort != 0 {
				canaryPorts[int(to)] = true
				mapped = append(mapped, fmt.Sprintf("%d:%d", p.PublishedPort, to))
			}
		}
	}
	sort.Strings(mapped)
	for _, e := range canaryServers {
		if !onHost(e) || canaryPorts[e.Port] {
			continue
		}
		if len(mapped) == 0 {
			return fmt.Errorf("swarm: HAProxy's canary server %s sends requests to %s, but the canary of %q will publish no port there (stable publishes %s, and canary.ports maps none of it): publish the port on %s and map it in canary.ports in fridaymorning.yaml, e.g. \"STABLE_PORT:%d\"",
				e.Server, e, stable, what, stable, e.Port)
		}
		return fmt.Errorf("swarm: HAProxy's canary server %s sends requests to %s, but the canary of %q will publish %s (canary.ports maps %s): map stable's port to %d in canary.ports in fridaymorning.yaml, or point the server at the canary's port",
			e.Server, e, stable, joinPorts(canaryPorts), strings.Join(mapped, ", "), e.Port)
	}
	return nil
}

func joinPorts(ports map[int]bool) string {
	var out []int
	for p := range ports {
		out = append(out, p)
	}
	sort.Ints(out)
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = fmt.Sprint(p)
	}
	return "port " + strings.Join(s, ", ")
}

// nodeAddrs are the addresses of the swarm's nodes, as the nodes report them.
func (c *Client) nodeAddrs(ctx context.Context) (map[string]bool, error) {
	nodes, err := c.api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("swarm: listing nodes: %w", err)
	}
	out := map[string]bool{}
	for _, n := range nodes {
		if ip := net.ParseIP(n.Status.Addr); ip != nil {
			out[ip.String()] = true
		}
	}
	return out, nil
}
