package swarm

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// CheckServers checks, without changing anything, that the load balancer's servers a release of stable
// moves traffic between are stable's own: each stable server's address (from stableAddrs, server name to
// "host:port") is a port stable publishes or the address of one of its tasks, and each canary server's is
// a port its canary will publish (canary.ports) or the address of a task of its canary. Servers without
// an address (template slots not filled) are left out. A release of another service with the same
// backend in its config would otherwise judge and move this one's traffic.
func (c *Client) CheckServers(ctx context.Context, stable string, stableAddrs, canaryAddrs map[string]string) error {
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return err
	}
	var stablePorts, canaryPorts []string
	if svc.Spec.EndpointSpec != nil {
		for _, p := range svc.Spec.EndpointSpec.Ports {
			if p.PublishedPort == 0 {
				continue
			}
			stablePorts = append(stablePorts, strconv.Itoa(int(p.PublishedPort)))
			if to, ok := c.cfg.CanaryPorts[p.PublishedPort]; ok {
				canaryPorts = append(canaryPorts, strconv.Itoa(int(to)))
			}
		}
	}
	stableIPs, err := c.taskIPs(ctx, stable)
	if err != nil {
		return err
	}
	canaryIPs, err := c.taskIPs(ctx, CanaryName(stable))
	if err != nil {
		return err
	}
	if err := ownServers("stable", stable, stableAddrs, stablePorts, stableIPs); err != nil {
		return err
	}
	return ownServers("canary", CanaryName(stable), canaryAddrs, canaryPorts, canaryIPs)
}

// ownServers checks that every server of group with an address points at ports or ips of service.
func ownServers(group, service string, addrs map[string]string, ports, ips []string) error {
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		addr := addrs[n]
		if addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			host, port = addr, ""
		}
		if slices.Contains(ports, port) || slices.Contains(ips, host) {
			continue
		}
		return fmt.Errorf("swarm: the %s server %s sends requests to %s, which is not service %s's (it publishes ports [%s] and its tasks have addresses [%s]): "+
			"a release would judge and move another service's traffic; check haproxy.backend and haproxy.%s_servers in fridaymorning.yaml (and canary.ports)",
			group, n, addr, service, strings.Join(ports, " "), strings.Join(ips, " "), group)
	}
	return nil
}

// taskIPs are the addresses, on every network, of service's tasks, those that ended lately included (a
// task replaced a moment ago may still be in a server-template slot until DNS drops it); none for a
// service that does not exist.
func (c *Client) taskIPs(ctx context.Context, service string) ([]string, error) {
	if _, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{}); errdefs.IsNotFound(err) {
		return nil, nil
	}
	tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		return nil, fmt.Errorf("swarm: listing the tasks of %q: %w", service, err)
	}
	var ips []string
	for _, t := range tasks {
		ips = append(ips, taskAddrs(t)...)
	}
	return ips, nil
}

// taskAddrs are the task's IP addresses, on every network it is attached to.
func taskAddrs(t swarm.Task) []string {
	var ips []string
	for _, na := range t.NetworksAttachments {
		for _, a := range na.Addresses {
			ip, _, _ := strings.Cut(a, "/")
			ips = append(ips, ip)
		}
	}
	return ips
}
