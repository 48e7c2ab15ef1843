package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestRoutingLabel(t *testing.T) {
	for k, want := range map[string]bool{
		"traefik.enable": true, "traefik.http.routers.shop.rule": true, "traefik": true,
		"caddy": true, "caddy.reverse_proxy": true, "caddy_0": true, "caddy_12.reverse_proxy": true,
		"com.docker.lb.hosts": true,
		"caddyshack":          false, "caddy_": false, "caddy_x": false, "traefikish": false, "com.docker.stack.image": false,
		"shop.owner": false, "fridaymorning.role": false,
	} {
		if got := routingLabel(k); got != want {
			t.Errorf("routingLabel(%q) = %v, want %v", k, got, want)
		}
	}
}

// TestCanarySpecDropsStableIdentity: the canary keeps the stable's own labels and networks but not its
// aliases or other proxies' routing labels, and the stable spec is left as it was.
func TestCanarySpecDropsStableIdentity(t *testing.T) {
	stable := swarm.Service{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "shop_app", Labels: map[string]string{
			"traefik.enable": "true", "caddy": "shop.example.com", "com.docker.lb.hosts": "shop", "shop.owner": "team-a"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "shop:v1", Labels: map[string]string{"traefik.port": "8080", "tier": "web"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "shop_back", Aliases: []string{"app"}}},
		},
	}}
	spec, err := CanarySpec(stable, "shop:v2", "r1", Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"traefik.enable", "caddy", "com.docker.lb.hosts"} {
		if _, ok := spec.Labels[k]; ok {
			t.Errorf("canary service label %s copied", k)
		}
	}
	if _, ok := spec.TaskTemplate.ContainerSpec.Labels["traefik.port"]; ok {
		t.Error("canary container label traefik.port copied")
	}
	if spec.Labels["shop.owner"] != "team-a" || spec.TaskTemplate.ContainerSpec.Labels["tier"] != "web" {
		t.Errorf("the stable's own labels were dropped: %v %v", spec.Labels, spec.TaskTemplate.ContainerSpec.Labels)
	}
	if n := spec.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "shop_back" || len(n[0].Aliases) != 0 {
		t.Errorf("canary networks %+v: want shop_back without aliases", n)
	}
	if stable.Spec.TaskTemplate.Networks[0].Aliases[0] != "app" || stable.Spec.Labels["traefik.enable"] != "true" ||
		stable.Spec.TaskTemplate.ContainerSpec.Labels["traefik.port"] != "8080" {
		t.Error("the stable spec was changed")
	}
}
