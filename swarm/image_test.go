package swarm

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

const digestA = "sha256:1a66902bce4439ceb8970877270e787eb78d48f6c8b3f9c1ff1765d6fbf1ea7c"

func TestNormalImage(t *testing.T) {
	same := [][2]string{
		{"fridaymorning/demoapp:v3", "docker.io/fridaymorning/demoapp:v3"},
		{"fridaymorning/demoapp:v3", "index.docker.io/fridaymorning/demoapp:v3"},
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:latest", "library/nginx"},
		{"registry.example.com:5000/shop:v2", "registry.example.com:5000/shop:v2@" + digestA},
	}
	for _, p := range same {
		if a, b := normalImage(p[0]), normalImage(p[1]); a != b {
			t.Errorf("%s → %s and %s → %s: want the same", p[0], a, p[1], b)
		}
	}
	different := [][2]string{
		{"fridaymorning/demoapp:v3", "fridaymorning/demoapp:v2"},
		{"shop:v2", "registry.example.com/shop:v2"},
		{"nginx", "nginx:1"},
		{"nginx@" + digestA, "nginx"},
	}
	for _, p := range different {
		if a, b := normalImage(p[0]), normalImage(p[1]); a == b {
			t.Errorf("%s and %s both normalise to %s: want different", p[0], p[1], a)
		}
	}
	if d := pinnedDigest("shop:v2@" + digestA); d != digestA {
		t.Errorf("pinned digest %q", d)
	}
	if d := pinnedDigest(digestA); d != digestA {
		t.Errorf("an image ID's digest %q", d)
	}
	if d := pinnedDigest(strings.TrimPrefix(digestA, "sha256:")); d != digestA {
		t.Errorf("a bare image ID's digest %q", d)
	}
	if d := pinnedDigest("shop:v2"); d != "" {
		t.Errorf("a tag's digest %q", d)
	}
}

func TestParseImage(t *testing.T) {
	for _, ok := range []string{"shop", "shop:v2", "registry.example.com:5000/team/shop:v2", "shop@" + digestA, digestA, "1a66902bce44"} {
		if err := ParseImage(ok); err != nil {
			t.Errorf("ParseImage(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "Shop:v2", "shop:v2:x", "shop v2", "shop@sha256:abc", "-shop", "shop:"} {
		err := ParseImage(bad)
		if err == nil {
			t.Errorf("ParseImage(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "e.g. registry.example.com/shop:v2") || strings.Contains(err.Error(), "invalid reference format") {
			t.Errorf("ParseImage(%q): %v: want what a valid one looks like, not Docker's text", bad, err)
		}
	}
}

func TestCheckServable(t *testing.T) {
	zero, one := uint64(0), uint64(1)
	tests := []struct {
		name string
		mode swarm.ServiceMode
		want string
	}{
		{"replicated", swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}, ""},
		{"no replicas", swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}, "docker service scale shop=1"},
		{"global", swarm.ServiceMode{Global: &swarm.GlobalService{}}, "global mode"},
		{"job", swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}, "is a job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := stableService()
			svc.Spec.Name, svc.Spec.Mode = "shop", tt.mode
			err := checkServable(svc)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
