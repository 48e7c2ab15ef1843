package swarm

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// Server is one of the load balancer's servers of a group, as a readiness check sees it.
type Server struct {
	Endpoint
	// Up says it passes its health checks, whatever its weight.
	Up bool
}

// runningTask is a task of a service that runs, with its addresses on every network.
type runningTask struct {
	id  string
	ips []string
}

// NotServing says what keeps the servers (of one group of the load balancer) from being exactly
// service's running tasks; nothing when they are. Servers addressed at a task, by IP (server-template
// slots over Docker's DNS, or listed addresses), are held to the tasks: a server that is up at an
// address no running task has (a task that ended, which DNS and the health checks drop only seconds
// later, or another service's task under the same DNS name) is named, and so is a running task that no
// server that is up points at while a slot is free for it. Servers at a port published on a node or on
// this host, or at one of the service's virtual IPs, are Swarm's routing to the tasks and are left to
// the health checks. A service that does not exist has no running task.
func (c *Client) NotServing(ctx context.Context, service string, servers []Server) ([]string, error) {
	var vips []string
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("swarm: inspecting service %q: %w", service, err)
	default:
		for _, v := range svc.Endpoint.VirtualIPs {
			ip, _, _ := strings.Cut(v.Addr, "/")
			vips = append(vips, ip)
		}
	}
	var tasks []runningTask
	if err == nil {
		list, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", service), filters.Arg("desired-state", "running"))})
		if err != nil {
			return nil, fmt.Errorf("swarm: listing the tasks of %q: %w", service, err)
		}
		for _, t := range list {
			if t.Status.State == swarm.TaskStateRunning {
				tasks = append(tasks, runningTask{id: t.ID, ips: taskAddrs(t)})
			}
		}
	}
	local, err := c.nodeAddrs(ctx)
	if err != nil {
		return nil, err
	}
	return notServing(service, servers, tasks, vips, local), nil
}

// notServing is NotServing's judgement, given the service's running tasks, its virtual IPs and the
// swarm's node addresses.
func notServing(service string, servers []Server, tasks []runningTask, vips []string, local map[string]bool) []string {
	running := map[string]bool{}
	for _, t := range tasks {
		for _, ip := range t.ips {
			running[ip] = true
		}
	}
	byTask := false // some server is addressed at a task (or is a slot waiting for one)
	free := false   // a server could still take a task: a slot without an address, or one not up
	upAt := map[string]bool{}
	var out []string
	sorted := append([]Server(nil), servers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Server < sorted[j].Server })
	for _, s := range sorted {
		ip := net.ParseIP(s.Host)
		switch {
		case s.Host == "":
			byTask, free = true, true
			continue
		case ip == nil:
			continue // a name HAProxy has not resolved: nothing to hold it to
		case ip.IsLoopback() || local[ip.String()] || slices.Contains(vips, ip.String()):
			continue // Swarm's routing: a published port, or the service's virtual IP
		}
		byTask = true
		if !s.Up {
			free = true
			continue
		}
		upAt[ip.String()] = true
		if !running[ip.String()] {
			out = append(out, fmt.Sprintf("%s is up at %s, which is no running task of %s (a task that ended, until DNS and the health checks drop it, or another service's under the same name)", s.Server, s, service))
		}
	}
	if !byTask || !free {
		return out
	}
	for _, t := range tasks {
		served := false
		for _, ip := range t.ips {
			served = served || upAt[ip]
		}
		if !served {
			out = append(out, fmt.Sprintf("task %s of %s (at %s) has no server up yet", shortID(t.id), service, strings.Join(t.ips, ", ")))
		}
	}
	return out
}
