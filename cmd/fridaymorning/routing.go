package main

import (
	"context"
	"sort"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// checkServers is the preflight check of the backend's servers, from one reading of where they point:
// those that take traffic are service's own (swarm.CheckServers), so that a release never judges or
// moves another service's traffic; and every one reaches the stable service, or will reach its canary,
// where Swarm publishes them (swarm.CheckServed), so that a configuration that cannot serve the canary
// is refused before anything changes, rather than aborting the release as a canary that never became
// healthy.
func checkServers(ctx context.Context, sw *swarm.Client, hp *haproxy.Client, service string) error {
	stable, err := hp.Addresses(ctx, haproxy.GroupStable)
	if err != nil {
		return err
	}
	canary, err := hp.Addresses(ctx, haproxy.GroupCanary)
	if err != nil {
		return err
	}
	if err := sw.CheckServers(ctx, service, serving(stable), serving(canary)); err != nil {
		return err
	}
	return sw.CheckServed(ctx, service, endpoints(stable), endpoints(canary))
}

// serving is addrs by server name, "" for a server that takes no traffic: there is nothing of it to
// judge.
func serving(addrs map[string]haproxy.Address) map[string]string {
	out := make(map[string]string, len(addrs))
	for n, a := range addrs {
		if a.Serving {
			out[n] = a.Addr
		} else {
			out[n] = ""
		}
	}
	return out
}

// endpoints are the servers of addrs that have an address, in name order, whether they take traffic
// or not: a server at a port nothing publishes is down.
func endpoints(addrs map[string]haproxy.Address) []swarm.Endpoint {
	var out []swarm.Endpoint
	for n, a := range addrs {
		if host, port, ok := a.HostPort(); ok {
			out = append(out, swarm.Endpoint{Server: n, Host: host, Port: port})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}
