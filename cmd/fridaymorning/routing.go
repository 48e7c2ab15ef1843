package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

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

// taskRouter is HAProxy's router with readiness held to Swarm's tasks: a group is up when HAProxy says
// so (haproxy.Client.WaitUp: a server up, every other one up or in maintenance) and the servers that
// pass their health checks are the group's service's running tasks, each of them in a server
// (swarm.NotServing). HAProxy alone would call a canary ready on a server-template slot that still
// holds a task that ended (a canary removed a moment before, kept by DNS and the health checks for
// seconds) or another service's task under the canary's DNS name, and the first step would send users
// there.
type taskRouter struct {
	*haproxy.Client
	sw      *swarm.Client
	service string // the stable service; the canary group is its canary's
	poll    time.Duration

	mu      sync.Mutex
	waiting map[string]string // by group, what the last look found wrong
}

// WaitingOn says what the last look of a WaitUp of group still waiting found wrong.
func (r *taskRouter) WaitingOn(group string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting[group]
}

func (r *taskRouter) note(group string, reasons []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = map[string]string{}
	}
	r.waiting[group] = strings.Join(reasons, "; ")
}

// WaitUp blocks until group's servers are up and are its service's running tasks; ctx bounds the wait,
// and its error says what was still wrong.
func (r *taskRouter) WaitUp(ctx context.Context, group string) error {
	service := r.service
	if group == haproxy.GroupCanary {
		service = swarm.CanaryName(r.service)
	}
	var last []string
	var lastErr error
	for {
		if err := r.Client.WaitUp(ctx, group); err != nil {
			if len(last) > 0 {
				return fmt.Errorf("%w (earlier: %s)", err, strings.Join(last, "; "))
			}
			return err
		}
		addrs, err := r.Client.Addresses(ctx, group)
		if err == nil {
			last, err = r.sw.NotServing(ctx, service, servers(addrs))
			r.note(group, last)
			if err == nil && len(last) == 0 {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if len(last) > 0 {
				return fmt.Errorf("haproxy: the %s servers are not service %s's running tasks: %s: %w", group, service, strings.Join(last, "; "), ctx.Err())
			}
			return fmt.Errorf("haproxy: holding the %s servers to service %s's tasks: %w (last error: %v)", group, service, ctx.Err(), lastErr)
		case <-time.After(r.poll):
		}
	}
}

// servers are addrs as swarm.NotServing reads them, template slots without an address included.
func servers(addrs map[string]haproxy.Address) []swarm.Server {
	out := make([]swarm.Server, 0, len(addrs))
	for n, a := range addrs {
		s := swarm.Server{Endpoint: swarm.Endpoint{Server: n}, Up: a.Up}
		if host, port, ok := a.HostPort(); ok {
			s.Host, s.Port = host, port
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}
