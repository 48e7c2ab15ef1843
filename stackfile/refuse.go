package stackfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// Refusal is a change in the stack file that a canary release cannot carry: What it is, and What to do
// instead.
type Refusal struct {
	What, Do string
}

// String says the refusal and the way out in one sentence.
func (r Refusal) String() string { return r.What + ": " + r.Do }

// RefusedError lists every refusal of a release, so that all of them can be fixed at once.
type RefusedError struct {
	Service  string
	Refusals []Refusal
}

// Error lists the refusals.
func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Refusals))
	for i, r := range e.Refusals {
		parts[i] = r.String()
	}
	return fmt.Sprintf("stackfile: the stack file changes %s in ways a canary cannot carry: %s", e.Service, strings.Join(parts, "; "))
}

// Refuse checks that stable (as it runs, network references by name) can be released to next through
// a canary, and returns a *RefusedError listing what cannot, or nil. A canary runs beside stable
// behind the same load balancer, so the release must keep: the service's name and stack, its published
// ports (the load balancer's servers point at them), its networks (the load balancer reaches both
// sides through them), its mode (replicated or global) and its endpoint mode (vip or dnsrr, which the
// load balancer's discovery depends on).
func Refuse(stable, next swarm.ServiceSpec) error {
	var rs []Refusal
	add := func(what, do string, args ...any) { rs = append(rs, Refusal{What: fmt.Sprintf(what, args...), Do: do}) }
	a, b := normalize(stable), normalize(next)
	name := stable.Name
	if stable.Name != next.Name {
		add("the stack file's service is %s, the stable service %s", "give the Swarm service of the stack (--service) and the stack it was deployed as (--stack)", next.Name, stable.Name)
	}
	switch ns, want := stable.Labels[LabelNamespace], next.Labels[LabelNamespace]; {
	case ns == "":
		add("%s was not deployed with docker stack deploy (it has no %s label)", "release it with --image, or deploy it once with docker stack deploy -c FILE "+want, name, LabelNamespace)
	case ns != want:
		add("%s belongs to stack %s, not %s", "pass --stack "+ns, name, ns, want)
	}
	if pa, pb := ports(a), ports(b); pa != pb {
		add("the published ports change (%s → %s)", "publish the new port with docker stack deploy outside a release (the load balancer's servers point at the old one), then release the rest", orNone(pa), orNone(pb))
	}
	if na, nb := networks(a), networks(b); na != nb {
		add("the networks change (%s → %s)", "change the networks with docker stack deploy outside a release (the load balancer reaches both sides through them), then release the rest", orNone(na), orNone(nb))
	}
	if ma, mb := View(a)["mode"], View(b)["mode"]; ma != mb {
		add("the mode changes (%s → %s)", "change the mode with docker stack deploy outside a release: a canary is always a replicated service beside stable", ma, mb)
	}
	if ea, eb := a.EndpointSpec.Mode, b.EndpointSpec.Mode; ea != eb {
		add("the endpoint mode changes (%s → %s)", "change it with docker stack deploy outside a release, and the load balancer's discovery with it", ea, eb)
	}
	if len(rs) == 0 {
		return nil
	}
	return &RefusedError{Service: name, Refusals: rs}
}

// ports lists the published ports with their protocol and mode, sorted; the target ports may change.
func ports(s swarm.ServiceSpec) string {
	var out []string
	for _, p := range s.EndpointSpec.Ports {
		if p.PublishedPort != 0 {
			out = append(out, fmt.Sprintf("%d/%s (%s)", p.PublishedPort, p.Protocol, p.PublishMode))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// networks lists the networks the service's tasks attach to, sorted.
func networks(s swarm.ServiceSpec) string {
	var out []string
	for _, n := range s.TaskTemplate.Networks {
		out = append(out, n.Target)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
