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
	if err := ParseImage(image); err != nil {
		return "", fmt.Errorf("swarm: image %w", err)
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

// validImage says what an image reference looks like, for messages about one that is not.
const validImage = "want [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST] in lower case, e.g. registry.example.com/shop:v2, or an image ID (sha256:…)"

// ParseImage checks that ref is an image reference Docker can run, or an image ID. Its error says what a
// valid one looks like, rather than Docker's "invalid reference format".
func ParseImage(ref string) error {
	if strings.TrimSpace(ref) == "" {
		return fmt.Errorf("no image: %s", validImage)
	}
	if _, err := reference.ParseAnyReference(ref); err != nil {
		why := strings.TrimPrefix(err.Error(), "invalid reference format: ")
		if why == "invalid reference format" {
			why = "not a reference"
		}
		return fmt.Errorf("%q is not a valid image reference (%s): %s", ref, why, validImage)
	}
	return nil
}

// normalImage is ref as Docker understands it: registry, repository and tag spelled out
// (docker.io/library/nginx:latest for nginx), without a digest; ref itself if it does not parse.
func normalImage(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	} else if _, ok := named.(reference.Digested); ok {
		return named.String() // a digest alone names the image: keep it
	}
	return reference.TrimNamed(named).String() + ":" + tag
}

// pinnedDigest is the digest ref names ("sha256:…" alone, or after @), "" if none.
func pinnedDigest(ref string) string {
	r, err := reference.ParseAnyReference(ref)
	if err != nil {
		return ""
	}
	if d, ok := r.(reference.Digested); ok {
		return d.Digest().String()
	}
	return ""
}

// sameImage reports whether image names the image that running (a service's spec) runs, however either
// is spelled: the same repository and tag once normalised (docker.io/x:v1 is x:v1; a digest pinned to
// the running tag does not count), the same digest, or the same image on this engine (its ID, short or
// long, another tag of it, one of its repository digests).
func (c *Client) sameImage(ctx context.Context, running, image string) bool {
	if normalImage(running) == normalImage(image) {
		return true
	}
	if d := pinnedDigest(image); d != "" && d == pinnedDigest(running) {
		return true
	}
	ids := func(ref string) map[string]bool {
		out := map[string]bool{}
		if d := pinnedDigest(ref); d != "" {
			out[d] = true
		}
		candidates := []string{ref}
		if named, err := reference.ParseNormalizedNamed(ref); err == nil {
			_, tagged := named.(reference.Tagged)
			if _, digested := named.(reference.Digested); tagged && digested {
				// A tag pinned to a digest this engine may not hold under that digest: the tag then.
				candidates = append(candidates, reference.FamiliarString(withoutDigest(named)))
			}
		}
		for _, cand := range candidates {
			img, err := c.api.ImageInspect(ctx, cand)
			if err != nil {
				continue
			}
			out[img.ID] = true
			for _, rd := range img.RepoDigests {
				if d := pinnedDigest(rd); d != "" {
					out[d] = true
				}
			}
			break
		}
		return out
	}
	theirs := ids(running)
	for id := range ids(image) {
		if theirs[id] {
			return true
		}
	}
	return false
}

// withoutDigest is named without the digest it may carry, keeping its tag.
func withoutDigest(named reference.Named) reference.Named {
	t, ok := named.(reference.Tagged)
	if !ok {
		return reference.TrimNamed(named)
	}
	out, err := reference.WithTag(reference.TrimNamed(named), t.Tag())
	if err != nil {
		return named
	}
	return out
}
