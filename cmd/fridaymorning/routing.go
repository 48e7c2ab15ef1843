package main

import (
	"context"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// checkRouting is the preflight check that HAProxy's servers reach the stable service, and will reach
// its canary, where Swarm publishes them: a configuration that cannot serve the canary is refused before
// anything changes, rather than aborting the release as a canary that never became healthy.
func checkRouting(ctx context.Context, sw *swarm.Client, hp *haproxy.Client, service string) error {
	addrs, err := hp.Addresses(ctx)
	if err != nil {
		return err
	}
	endpoints := func(as []haproxy.Address) []swarm.Endpoint {
		out := make([]swarm.Endpoint, len(as))
		for i, a := range as {
			out[i] = swarm.Endpoint{Server: a.Server, Host: a.Host, Port: a.Port}
		}
		return out
	}
	return sw.CheckServed(ctx, service, endpoints(addrs[haproxy.GroupStable]), endpoints(addrs[haproxy.GroupCanary]))
}
