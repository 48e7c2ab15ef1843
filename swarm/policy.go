package swarm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/docker/docker/api/types/swarm"
)

// LabelUpdateConfig, on a stable service that UpdateImage is moving to a new image, holds the service's
// own update policy (JSON; "null" for none) while the promotion's replaces it.
const LabelUpdateConfig = "fridaymorning.update-config"

// savedUpdateConfig returns spec's labels with its own update policy saved in LabelUpdateConfig, unless
// one is saved already (an update resumed after a crash must not save the promotion's policy as the
// service's own).
func savedUpdateConfig(spec swarm.ServiceSpec) map[string]string {
	l := cloneLabels(spec.Labels)
	if _, ok := l[LabelUpdateConfig]; ok {
		return l
	}
	raw, err := json.Marshal(spec.UpdateConfig)
	if err == nil {
		l[LabelUpdateConfig] = string(raw)
	}
	return l
}

// RestoreUpdatePolicy puts back the update policy service had before UpdateImage gave it a promotion's
// (see PromotionSpec), and removes the label that kept it. A service without that label is left alone.
// Only the update policy and labels change: no task is restarted.
func (c *Client) RestoreUpdatePolicy(ctx context.Context, service string) error {
	for attempt := 0; ; attempt++ {
		svc, err := c.inspect(ctx, service)
		if err != nil {
			return err
		}
		saved, ok := svc.Spec.Labels[LabelUpdateConfig]
		if !ok {
			return nil
		}
		var uc *swarm.UpdateConfig
		if err := json.Unmarshal([]byte(saved), &uc); err != nil {
			return fmt.Errorf("swarm: the update policy kept in label %s of %q is unreadable (%v): set it again with docker service update, then remove the label", LabelUpdateConfig, service, err)
		}
		spec := svc.Spec
		spec.Labels = cloneLabels(spec.Labels)
		delete(spec.Labels, LabelUpdateConfig)
		spec.UpdateConfig = uc
		_, err = c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return nil
		}
		if !isOutOfSequence(err) || attempt >= 10 {
			return fmt.Errorf("swarm: putting back the update policy of %q: %w", service, err)
		}
	}
}

// Stack returns the name of the `docker stack` service was deployed with; "" if none.
func (c *Client) Stack(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	return svc.Spec.Labels[stackNamespaceLabel], nil
}
