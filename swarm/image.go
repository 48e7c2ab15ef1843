package swarm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

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

// checkRunnable refuses a short image ID: the engine finds the image by it, but Swarm takes it for a
// repository name and its tasks would be rejected. id and tags are what the engine says of the image.
func checkRunnable(image, id string, tags []string) error {
	hex := strings.TrimPrefix(id, "sha256:")
	if len(image) >= len(hex) || !strings.HasPrefix(hex, image) || slices.Contains(tags, image) {
		return nil
	}
	also := ""
	if len(tags) > 0 {
		also = " or one of its tags (" + strings.Join(tags, ", ") + ")"
	}
	return fmt.Errorf("swarm: image %s is a short image ID, which Swarm cannot run: pass its full ID %s%s", image, id, also)
}
