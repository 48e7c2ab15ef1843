package swarm

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// LabelPinned, on a canary and on a stable service fridaymorning promoted, is the reference the service
// was given: the image released (LabelImage) resolved once, when the canary was created, to its digest
// or image ID. The canary's later tasks and the promotion run it, so a tag pushed again during the bake
// cannot promote other bits than those judged.
const LabelPinned = "fridaymorning.pinned"

// pinned reports whether image names one image for good: by digest, or by image ID.
func pinned(image string) bool {
	return strings.Contains(image, "@sha256:") || strings.HasPrefix(image, "sha256:")
}

// pin resolves image to the reference every node runs the same bits from: REPOSITORY:TAG@sha256:… with
// the registry digest of an image the engine has pulled or pushed; the image ID of one it only has
// locally (built or loaded: the ID names the same bits on every node that has them); for one it does not
// have, the digest its registry answers with auth. An image already pinned is taken as it is.
func (c *Client) pin(ctx context.Context, image, auth string) (string, error) {
	if strings.TrimSpace(image) == "" || strings.ContainsAny(image, " \t\n") {
		return "", fmt.Errorf("swarm: image %q is not a valid reference: pass --image REPOSITORY:TAG", image)
	}
	if pinned(image) {
		return image, nil
	}
	img, err := c.api.ImageInspect(ctx, image)
	switch {
	case err == nil:
		if named, err := reference.ParseNormalizedNamed(image); err == nil {
			for _, rd := range img.RepoDigests {
				if d, err := reference.ParseNormalizedNamed(rd); err == nil && d.Name() == named.Name() {
					if dg, ok := d.(reference.Digested); ok {
						return image + "@" + dg.Digest().String(), nil
					}
				}
			}
		}
		return img.ID, nil
	case !errdefs.IsNotFound(err):
		return "", fmt.Errorf("swarm: inspecting image %s: %w", image, err)
	}
	dist, err := c.api.DistributionInspect(ctx, image, auth)
	if err != nil {
		return "", fmt.Errorf("swarm: image %s is neither on this Docker Engine nor in its registry (%v): build or push it, check --image, or docker login to its registry as the user running fridaymorning", image, err)
	}
	return image + "@" + dist.Descriptor.Digest.String(), nil
}

// ReleasedImage is the image a spec runs as it was released: the reference given to fridaymorning when
// the spec still runs what that was pinned to, else the spec's image.
func ReleasedImage(spec swarm.ServiceSpec) string {
	img := specImage(spec)
	if p, ok := spec.Labels[LabelPinned]; ok && p == img && spec.Labels[LabelImage] != "" {
		return spec.Labels[LabelImage]
	}
	return img
}

// Released returns the image service runs as it was released ("shop:v2" for a service promoted to
// shop:v2, which runs shop:v2@sha256:… or the image ID); for a display, or to compare with what was
// released. Image returns what the spec runs.
func (c *Client) Released(ctx context.Context, service string) (string, error) {
	svc, err := c.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	return ReleasedImage(svc.Spec), nil
}

// checkImage finds image on the engine or, with the registry credentials of the user running
// fridaymorning, in its registry.
func (c *Client) checkImage(ctx context.Context, image string) error {
	auth, err := registryAuth(ctx, image)
	if err != nil {
		return err
	}
	_, err = c.pin(ctx, image, auth)
	return err
}

// pinFor returns the reference fridaymorning pinned image to for svc, where it did: on the service's
// canary (a promotion runs the bits that were judged), on the service itself or on its spec before the
// last update (putting it back, or a rollback), and for a canary on its stable service's (a warm standby
// of the previous version). It returns image itself where none was.
func (c *Client) pinFor(ctx context.Context, svc swarm.Service, image string) string {
	specs := []*swarm.ServiceSpec{}
	if cn, _, err := c.api.ServiceInspectWithRaw(ctx, CanaryName(svc.Spec.Name), swarm.ServiceInspectOptions{}); err == nil {
		specs = append(specs, &cn.Spec)
	}
	specs = append(specs, &svc.Spec, svc.PreviousSpec)
	if stable := svc.Spec.Labels[LabelStable]; svc.Spec.Labels[LabelRole] == RoleCanary && stable != "" {
		if st, _, err := c.api.ServiceInspectWithRaw(ctx, stable, swarm.ServiceInspectOptions{}); err == nil {
			specs = append(specs, &st.Spec, st.PreviousSpec)
		}
	}
	for _, s := range specs {
		if s != nil && s.Labels[LabelImage] == image && s.Labels[LabelPinned] != "" {
			return s.Labels[LabelPinned]
		}
	}
	return image
}
