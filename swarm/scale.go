package swarm

import "math"

// forShare is how many tasks a canary needs to carry share percent of the requests of a stable service
// running stable tasks: ceil(share × stable), at least the canary's configured replicas (canary.replicas)
// and at most stable's own count. Argo Rollouts' setCanaryScale with matchTrafficWeight is the model: a
// canary whose single task takes half of production's traffic is judged overloaded, not on its merits.
func (c *Client) forShare(stable uint64, share float64) uint64 {
	if share >= 100 || math.IsNaN(share) {
		return stable
	}
	need := uint64(math.Ceil(max(share, 0) / 100 * float64(stable)))
	return min(max(need, c.cfg.CanaryReplicas), max(stable, c.cfg.CanaryReplicas))
}
