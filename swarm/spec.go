package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/fridaymorning/fridaymorning/stackfile"
)

// A release of a whole spec (from a stack file) names what a service runs by a spec reference,
// "spec:" and the spec's stackfile.Fingerprint: Current returns one, Update and CreateCanary take one.
// References resolve to the spec released (Config.Spec), to a spec Current read, or, in another
// process, to the specs the canary carries in its labels.
const (
	specPrefix = "spec:"
	// LabelTarget and LabelPrevious, on a canary of a spec release, hold the spec released and the one
	// stable ran before (JSON), so that any process can promote, abort or roll back the release.
	LabelTarget   = "fridaymorning.target"
	LabelPrevious = "fridaymorning.previous"
)

// IsSpec reports whether target is a spec reference rather than an image.
func IsSpec(target string) bool { return strings.HasPrefix(target, specPrefix) }

// specRef is the reference of spec (network references by name).
func specRef(spec swarm.ServiceSpec) string { return specPrefix + stackfile.Fingerprint(spec) }

// SpecTarget returns the reference of the spec this client releases (Config.Spec), "" without one.
func (c *Client) SpecTarget() string {
	if c.cfg.Spec == nil {
		return ""
	}
	return specRef(c.cfg.Spec.Spec)
}

// Current returns what service runs: its image as released (ReleasedImage), or, for a release of a
// whole spec (Config.Spec, or a canary of service that carries one), the reference of its spec, which
// Update accepts to put it back as it is.
func (c *Client) Current(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	if c.cfg.Spec == nil && !c.specCanary(ctx, service) {
		return ReleasedImage(svc.Spec), nil // the image Update was given, though it runs it pinned
	}
	spec, err := c.byName(ctx, svc.Spec)
	if err != nil {
		return "", err
	}
	ref := specRef(spec)
	c.remember(ref, spec)
	return ref, nil
}

// specCanary reports whether service's canary is one of a spec release (a process taking a release
// over names what services run as the process that started it did).
func (c *Client) specCanary(ctx context.Context, service string) bool {
	cn, _, err := c.api.ServiceInspectWithRaw(ctx, CanaryName(service), swarm.ServiceInspectOptions{})
	return err == nil && cn.Spec.Labels[LabelTarget] != ""
}

// Update starts a rolling update of service to target: an image, or a spec reference. A stable
// service gets the spec as docker stack deploy would apply it (its own update policy, the registry
// asked for the image's digest, its ForceUpdate kept), keeping fridaymorning's labels; a canary gets
// the canary of that spec (a warm standby of the previous version). It does not wait; use WaitReady.
func (c *Client) Update(ctx context.Context, service, target string) error {
	if !IsSpec(target) {
		return c.UpdateImage(ctx, service, target)
	}
	spec, err := c.resolve(ctx, service, target)
	if err != nil {
		return err
	}
	auth, err := registryAuth(ctx, specImage(spec))
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		svc, err := c.inspect(ctx, service)
		if err != nil {
			return err
		}
		next, err := c.withIDs(ctx, spec)
		if err != nil {
			return err
		}
		if svc.Spec.Labels[LabelRole] == RoleCanary {
			labels := svc.Spec.Labels
			mode := svc.Spec.Mode
			if next, err = CanarySpec(swarm.Service{Spec: next}, specImage(next), labels[LabelRelease], c.cfg); err != nil {
				return err
			}
			for k, v := range labels {
				if strings.HasPrefix(k, stackfile.OwnLabelPrefix) {
					next.Labels[k] = v
				}
			}
			next.Mode = mode
		} else {
			next.Name = svc.Spec.Name
			next.Labels = maps.Clone(next.Labels)
			for k, v := range svc.Spec.Labels {
				if strings.HasPrefix(k, stackfile.OwnLabelPrefix) {
					next.Labels[k] = v
				}
			}
		}
		next.TaskTemplate.ForceUpdate = svc.Spec.TaskTemplate.ForceUpdate
		_, err = c.api.ServiceUpdate(ctx, svc.ID, svc.Version, next, swarm.ServiceUpdateOptions{QueryRegistry: true, EncodedRegistryAuth: auth})
		if err == nil {
			return nil
		}
		if !isOutOfSequence(err) || attempt >= 10 {
			return fmt.Errorf("swarm: updating %q to the stack file's spec: %w", service, err)
		}
	}
}

// CheckSpec checks, without changing anything, that stable can be released to the stack file's spec
// (Config.Spec), and returns what changes: stable exists, is no canary and runs another spec, no canary
// of it exists, the change is one a canary can carry (stackfile.Refuse), the canary's ports are mapped,
// configs the stack file defines either do not exist yet or have the same content (they are immutable:
// new content needs a new name), external configs and secrets exist, and the image can be found.
func (c *Client) CheckSpec(ctx context.Context, stable string) ([]stackfile.Change, error) {
	t := c.cfg.Spec
	if t == nil {
		return nil, fmt.Errorf("swarm: no stack file loaded")
	}
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return nil, err
	}
	if svc.Spec.Labels[LabelRole] == RoleCanary {
		return nil, fmt.Errorf("swarm: service %q is a canary of %q: release the stable service instead", stable, svc.Spec.Labels[LabelStable])
	}
	cur, err := c.byName(ctx, svc.Spec)
	if err != nil {
		return nil, err
	}
	if err := stackfile.Refuse(cur, t.Spec); err != nil {
		return nil, err
	}
	changes := stackfile.Diff(cur, t.Spec)
	if len(changes) == 0 {
		return nil, fmt.Errorf("swarm: service %q already runs what the stack file says: nothing to release", stable)
	}
	if _, err := CanarySpec(swarm.Service{Spec: t.Spec}, specImage(t.Spec), "check", c.cfg); err != nil {
		return nil, err
	}
	if existing, _, err := c.api.ServiceInspectWithRaw(ctx, CanaryName(stable), swarm.ServiceInspectOptions{}); err == nil {
		return nil, fmt.Errorf("swarm: a canary %q already exists (release %s): abort that release with `fridaymorning abort %s`, or remove the canary with docker service rm %s",
			CanaryName(stable), existing.Spec.Labels[LabelRelease], stable, CanaryName(stable))
	} else if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("swarm: looking for an existing canary %q: %w", CanaryName(stable), err)
	}
	for _, cfg := range t.Configs {
		existing, _, err := c.api.ConfigInspectWithRaw(ctx, cfg.Name)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("swarm: inspecting config %s: %w", cfg.Name, err)
		case !bytes.Equal(existing.Spec.Data, cfg.Data):
			return nil, fmt.Errorf("swarm: config %s exists with other content, and configs cannot change: give the new content a new name in the stack file (e.g. name: %s_v2, or a ${VERSION} in it)", cfg.Name, cfg.Name)
		}
	}
	if _, err := c.withIDs(ctx, c.withoutOwn(t.Spec)); err != nil {
		return nil, err
	}
	return changes, c.checkImage(ctx, specImage(t.Spec))
}

// withoutOwn is spec with the references to the configs and secrets the stack file defines left out:
// those are created by CreateCanary, so only external ones must exist beforehand.
func (c *Client) withoutOwn(spec swarm.ServiceSpec) swarm.ServiceSpec {
	own := map[string]bool{}
	for _, cfg := range c.cfg.Spec.Configs {
		own["config "+cfg.Name] = true
	}
	for _, s := range c.cfg.Spec.Secrets {
		own["secret "+s.Name] = true
	}
	spec = deepCopy(spec)
	cs := spec.TaskTemplate.ContainerSpec
	var configs []*swarm.ConfigReference
	for _, r := range cs.Configs {
		if !own["config "+r.ConfigName] {
			configs = append(configs, r)
		}
	}
	var secrets []*swarm.SecretReference
	for _, r := range cs.Secrets {
		if !own["secret "+r.SecretName] {
			secrets = append(secrets, r)
		}
	}
	cs.Configs, cs.Secrets = configs, secrets
	return spec
}

// createSpecCanary creates the configs and secrets of the stack file that do not exist yet (marked
// with releaseID, so that an abort removes them), then the canary of stable running the spec target.
func (c *Client) createSpecCanary(ctx context.Context, stable, target, releaseID string) (string, error) {
	svc, err := c.inspect(ctx, stable)
	if err != nil {
		return "", err
	}
	spec, err := c.resolve(ctx, stable, target)
	if err != nil {
		return "", err
	}
	if err := c.createObjects(ctx, releaseID); err != nil {
		return "", err
	}
	withIDs, err := c.withIDs(ctx, spec)
	if err != nil {
		return "", err
	}
	canary, err := CanarySpec(swarm.Service{Spec: withIDs}, specImage(spec), releaseID, c.cfg)
	if err != nil {
		return "", err
	}
	prev, err := c.byName(ctx, svc.Spec)
	if err != nil {
		return "", err
	}
	for label, s := range map[string]swarm.ServiceSpec{LabelTarget: spec, LabelPrevious: prev} {
		raw, err := json.Marshal(s)
		if err != nil {
			return "", fmt.Errorf("swarm: keeping the specs on the canary: %w", err)
		}
		canary.Labels[label] = string(raw)
	}
	return c.create(ctx, canary, releaseID, specImage(spec))
}

// createObjects creates the stack file's configs and secrets that do not exist yet, labelled with the
// release.
func (c *Client) createObjects(ctx context.Context, releaseID string) error {
	for _, cfg := range c.cfg.Spec.Configs {
		if _, _, err := c.api.ConfigInspectWithRaw(ctx, cfg.Name); err == nil {
			continue
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("swarm: inspecting config %s: %w", cfg.Name, err)
		}
		cfg.Labels = maps.Clone(cfg.Labels)
		cfg.Labels[LabelRelease] = releaseID
		if _, err := c.api.ConfigCreate(ctx, cfg); err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("swarm: creating config %s: %w", cfg.Name, err)
		}
	}
	for _, s := range c.cfg.Spec.Secrets {
		if _, _, err := c.api.SecretInspectWithRaw(ctx, s.Name); err == nil {
			continue // its content cannot be read back; docker stack deploy would refuse a change too
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("swarm: inspecting secret %s: %w", s.Name, err)
		}
		s.Labels = maps.Clone(s.Labels)
		s.Labels[LabelRelease] = releaseID
		if _, err := c.api.SecretCreate(ctx, s); err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("swarm: creating secret %s: %w", s.Name, err)
		}
	}
	return nil
}

// removeObjects removes the configs and secrets release created that no service references any more.
func (c *Client) removeObjects(ctx context.Context, releaseID string) error {
	if releaseID == "" {
		return nil
	}
	svcs, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return fmt.Errorf("swarm: listing services: %w", err)
	}
	used := map[string]bool{}
	for _, s := range svcs {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, r := range cs.Configs {
				used[r.ConfigID] = true
			}
			for _, r := range cs.Secrets {
				used[r.SecretID] = true
			}
		}
	}
	mine := filters.NewArgs(filters.Arg("label", LabelRelease+"="+releaseID))
	configs, err := c.api.ConfigList(ctx, swarm.ConfigListOptions{Filters: mine})
	if err != nil {
		return fmt.Errorf("swarm: listing the release's configs: %w", err)
	}
	for _, cfg := range configs {
		if !used[cfg.ID] {
			if err := c.api.ConfigRemove(ctx, cfg.ID); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("swarm: removing config %s: %w: remove it with docker config rm %s", cfg.Spec.Name, err, cfg.Spec.Name)
			}
		}
	}
	secrets, err := c.api.SecretList(ctx, swarm.SecretListOptions{Filters: mine})
	if err != nil {
		return fmt.Errorf("swarm: listing the release's secrets: %w", err)
	}
	for _, s := range secrets {
		if !used[s.ID] {
			if err := c.api.SecretRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("swarm: removing secret %s: %w: remove it with docker secret rm %s", s.Spec.Name, err, s.Spec.Name)
			}
		}
	}
	return nil
}

// remember keeps spec under ref, for Update.
func (c *Client) remember(ref string, spec swarm.ServiceSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.specs == nil {
		c.specs = map[string]swarm.ServiceSpec{}
	}
	c.specs[ref] = deepCopy(spec)
}

// resolve finds the spec of ref: the one released, one Current read, or one a canary of service
// carries (a release another process started).
func (c *Client) resolve(ctx context.Context, service, ref string) (swarm.ServiceSpec, error) {
	if c.cfg.Spec != nil && ref == specRef(c.cfg.Spec.Spec) {
		return deepCopy(c.cfg.Spec.Spec), nil
	}
	c.mu.Lock()
	spec, ok := c.specs[ref]
	c.mu.Unlock()
	if ok {
		return deepCopy(spec), nil
	}
	canary := service
	if !strings.HasSuffix(service, CanarySuffix) {
		canary = CanaryName(service)
	}
	if cn, _, err := c.api.ServiceInspectWithRaw(ctx, canary, swarm.ServiceInspectOptions{}); err == nil {
		for _, label := range []string{LabelTarget, LabelPrevious} {
			var s swarm.ServiceSpec
			if json.Unmarshal([]byte(cn.Spec.Labels[label]), &s) == nil && specRef(s) == ref {
				c.remember(ref, s)
				return s, nil
			}
		}
	}
	return swarm.ServiceSpec{}, fmt.Errorf("swarm: the spec %s of %s's release is not known here and its canary %s does not carry it: run the command with the release's --stack-file", ref, service, canary)
}

// byName returns spec with its networks named rather than by ID, as a stack file names them.
func (c *Client) byName(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceSpec, error) {
	spec = deepCopy(spec)
	for i, n := range spec.TaskTemplate.Networks {
		nw, err := c.api.NetworkInspect(ctx, n.Target, network.InspectOptions{})
		if err != nil {
			return spec, fmt.Errorf("swarm: inspecting network %s of %s: %w", n.Target, spec.Name, err)
		}
		spec.TaskTemplate.Networks[i].Target = nw.Name
	}
	return spec, nil
}

// withIDs returns spec with the IDs of the configs and secrets it references by name, which must exist.
func (c *Client) withIDs(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceSpec, error) {
	spec = deepCopy(spec)
	cs := spec.TaskTemplate.ContainerSpec
	for _, r := range cs.Configs {
		cfg, _, err := c.api.ConfigInspectWithRaw(ctx, r.ConfigName)
		if err != nil {
			return spec, fmt.Errorf("swarm: config %s, which %s references: %w: create it (it is external in the stack file) or check its name", r.ConfigName, spec.Name, err)
		}
		r.ConfigID = cfg.ID
	}
	for _, r := range cs.Secrets {
		s, _, err := c.api.SecretInspectWithRaw(ctx, r.SecretName)
		if err != nil {
			return spec, fmt.Errorf("swarm: secret %s, which %s references: %w: create it (it is external in the stack file) or check its name", r.SecretName, spec.Name, err)
		}
		r.SecretID = s.ID
	}
	return spec, nil
}

// deepCopy copies spec through JSON, so that no slice, map or pointer is shared.
func deepCopy(spec swarm.ServiceSpec) swarm.ServiceSpec {
	var out swarm.ServiceSpec
	raw, err := json.Marshal(spec)
	if err != nil || json.Unmarshal(raw, &out) != nil {
		panic(fmt.Sprintf("swarm: copying a service spec: %v", err)) // a ServiceSpec always round-trips
	}
	return out
}
