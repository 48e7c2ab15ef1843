package swarm

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// eligibleNodes counts the nodes a task of spec can run on: ready, active (not drained or paused), and
// matching the spec's placement constraints and platforms. A global service runs one task on each.
func (c *Client) eligibleNodes(ctx context.Context, spec swarm.ServiceSpec) (int, error) {
	nodes, err := c.api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return 0, fmt.Errorf("swarm: listing the nodes: %w", err)
	}
	var p swarm.Placement
	if spec.TaskTemplate.Placement != nil {
		p = *spec.TaskTemplate.Placement
	}
	n := 0
	for _, node := range nodes {
		if node.Status.State == swarm.NodeStateReady && node.Spec.Availability == swarm.NodeAvailabilityActive && placeable(node, p) {
			n++
		}
	}
	return n, nil
}

// placeable reports whether Swarm's scheduler may put a task with placement p on node: every
// constraint holds and, if platforms are given, the node's is one of them.
func placeable(node swarm.Node, p swarm.Placement) bool {
	for _, c := range p.Constraints {
		if !constraintHolds(node, c) {
			return false
		}
	}
	if len(p.Platforms) == 0 {
		return true
	}
	for _, pl := range p.Platforms {
		if (pl.OS == "" || strings.EqualFold(pl.OS, node.Description.Platform.OS)) &&
			(pl.Architecture == "" || strings.EqualFold(pl.Architecture, node.Description.Platform.Architecture)) {
			return true
		}
	}
	return false
}

// constraintHolds evaluates one placement constraint ("node.role==worker", "node.labels.zone!=b") as
// swarmkit does: keys and values compare without case, except label names; a constraint it cannot read
// holds for no node.
func constraintHolds(node swarm.Node, constraint string) bool {
	op, eq := "==", true
	i := strings.Index(constraint, "==")
	if j := strings.Index(constraint, "!="); j >= 0 && (i < 0 || j < i) {
		i, op, eq = j, "!=", false
	}
	if i < 0 {
		return false
	}
	key := strings.TrimSpace(constraint[:i])
	want := strings.TrimSpace(constraint[i+len(op):])
	var got string
	switch lower := strings.ToLower(key); {
	case lower == "node.id":
		got = node.ID
	case lower == "node.hostname":
		got = node.Description.Hostname
	case lower == "node.role":
		got = string(node.Spec.Role)
	case lower == "node.platform.os":
		got = node.Description.Platform.OS
	case lower == "node.platform.arch":
		got = node.Description.Platform.Architecture
	case strings.HasPrefix(lower, "node.labels."):
		got = node.Spec.Labels[key[len("node.labels."):]]
	case strings.HasPrefix(lower, "engine.labels."):
		got = node.Description.Engine.Labels[key[len("engine.labels."):]]
	default:
		return false
	}
	return strings.EqualFold(got, want) == eq
}
