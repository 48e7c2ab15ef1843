//go:build integration

package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// These tests run against the real Docker Swarm of the test bed (make testbed) and its demo images.

func imageRepo() string {
	if r := os.Getenv("FM_IMAGE_REPO"); r != "" {
		return r
	}
	return "fridaymorning/demoapp"
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

func get(port uint32) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// newStable creates a stable demo service on a free host port and removes it (and its canary) at the end.
func newStable(t *testing.T, c *Client) (name string, port uint32) {
	t.Helper()
	ctx := context.Background()
	name = fmt.Sprintf("fmtest-%d", time.Now().UnixNano()%1e9)
	port = freePort(t)
	replicas := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"fridaymorning.test": "swarm"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
			Image: imageRepo() + ":v1", StopGracePeriod: ptr(5 * time.Second),
		}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 8080, PublishedPort: port, PublishMode: swarm.PortConfigPublishModeHost}}},
	}
	if _, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.RemoveService(ctx, CanaryName(name))
		_ = c.RemoveService(ctx, name)
	})
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.WaitReady(wctx, name, nil); err != nil {
		t.Fatal(err)
	}
	return name, port
}

func ptr[T any](v T) *T { return &v }

func TestSwarmCanaryLifecycle(t *testing.T) {
	canaryPort := freePort(t)
	c, err := New(Config{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, stablePort := newStable(t, c)
	c.cfg.CanaryPorts = map[uint32]uint32{stablePort: canaryPort}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v2 := imageRepo() + ":v2"

	t.Run("checks refuse bad input without changing anything", func(t *testing.T) {
		cases := []struct {
			service, image, want string
		}{
			{"fmtest-no-such-service", v2, `service "fmtest-no-such-service" not found`},
			{name, imageRepo() + ":v1", "already runs"},
			{name, imageRepo() + ":no-such-tag", "neither on this Docker Engine nor in its registry"},
		}
		for _, tc := range cases {
			err := c.CheckRelease(ctx, tc.service, tc.image)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckRelease(%s, %s) = %v, want %q", tc.service, tc.image, err, tc.want)
			}
		}
		if err := c.CheckRelease(ctx, name, v2); err != nil {
			t.Errorf("CheckRelease of a good release: %v", err)
		}
	})

	t.Run("canary clones stable, serves the new image on its own port, and is removed", func(t *testing.T) {
		canary, err := c.CreateCanary(ctx, name, v2, "r-test")
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		if err := c.WaitReady(ctx, canary, func(s string) { seen = append(seen, s) }); err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 {
			t.Error("WaitReady reported no progress")
		}
		if body, err := get(canaryPort); err != nil || body != "hello from v2" {
			t.Errorf("canary answered %q, %v", body, err)
		}
		if body, err := get(stablePort); err != nil || body != "hello from v1" {
			t.Errorf("stable answered %q, %v", body, err)
		}
		svc, err := c.inspect(ctx, canary)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Labels[LabelRelease] != "r-test" || svc.Spec.Labels[LabelStable] != name {
			t.Errorf("canary labels %v", svc.Spec.Labels)
		}
		if err := c.CheckRelease(ctx, name, v2); err == nil || !strings.Contains(err.Error(), "already exists (release r-test)") {
			t.Errorf("a second release while a canary exists: %v", err)
		}
		if err := c.RemoveService(ctx, canary); err != nil {
			t.Fatal(err)
		}
		if _, err := get(canaryPort); err == nil {
			t.Error("canary port still answers after removal")
		}
		if err := c.RemoveService(ctx, canary); err != nil {
			t.Errorf("removing a removed service: %v", err)
		}
	})

	t.Run("crashing canary fails the wait early with the task error", func(t *testing.T) {
		canary, err := c.CreateCanary(ctx, name, imageRepo()+":v2-crash", "r-crash")
		if err != nil {
			t.Fatal(err)
		}
		defer c.RemoveService(ctx, canary)
		wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
		defer wcancel()
		err = c.WaitReady(wctx, canary, nil)
		if !errors.Is(err, ErrTasksFailed) || !strings.Contains(err.Error(), "non-zero exit (1)") {
			t.Fatalf("WaitReady = %v, want ErrTasksFailed naming the exit code", err)
		}
	})

	t.Run("stable rolls to the new image", func(t *testing.T) {
		if err := c.UpdateImage(ctx, name, v2); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			body, err := get(stablePort)
			if err == nil && body == "hello from v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stable answers %q, %v after the update", body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestCanaryIsAFaithfulClone creates a stable service with a rich spec on the real swarm, then its
// canary, and shows field by field what the canary copies and what it changes, and why. The canary must
// also really run with all of it.
func TestCanaryIsAFaithfulClone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := New(Config{PollInterval: 200 * time.Millisecond, CanaryReplicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e8)
	secret, err := c.api.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: "fmtest-secret-" + suffix}, Data: []byte("s3cr3t")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.api.SecretRemove(context.Background(), secret.ID) })
	config, err := c.api.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "fmtest-config-" + suffix}, Data: []byte("k=v")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.api.ConfigRemove(context.Background(), config.ID) })
	net, err := c.api.NetworkCreate(ctx, "fmtest-net-"+suffix, network.CreateOptions{Driver: "overlay", Attachable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The network outlives its services' tasks by a moment.
		for i := 0; i < 50 && c.api.NetworkRemove(context.Background(), net.ID) != nil; i++ {
			time.Sleep(200 * time.Millisecond)
		}
	})

	stablePort, canaryPort := freePort(t), freePort(t)
	c.cfg.CanaryPorts = map[uint32]uint32{stablePort: canaryPort}
	name := "fmtest-rich-" + suffix
	// One replica: two cannot share a host port on a single node.
	replicas := uint64(1)
	grace := 7 * time.Second
	delay := 2 * time.Second
	attempts := uint64(3)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"team": "checkout", "com.docker.stack.namespace": "shop"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  imageRepo() + ":v1",
				Labels: map[string]string{"container.label": "yes"},
				Env:    []string{"SHOP_MODE=strict"},
				User:   "65534",
				Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "fmtest-vol-" + suffix, Target: "/data"}},
				Secrets: []*swarm.SecretReference{{SecretID: secret.ID, SecretName: "fmtest-secret-" + suffix,
					File: &swarm.SecretReferenceFileTarget{Name: "db_password", UID: "0", GID: "0", Mode: 0o400}}},
				Configs: []*swarm.ConfigReference{{ConfigID: config.ID, ConfigName: "fmtest-config-" + suffix,
					File: &swarm.ConfigReferenceFileTarget{Name: "/app.conf", UID: "0", GID: "0", Mode: 0o444}}},
				Healthcheck:     &container.HealthConfig{Test: []string{"CMD", "/demoapp", "healthcheck"}, Interval: time.Second, Timeout: time.Second, Retries: 3},
				StopGracePeriod: &grace,
			},
			Resources: &swarm.ResourceRequirements{
				Limits:       &swarm.Limit{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
				Reservations: &swarm.Resources{MemoryBytes: 16 << 20},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, Delay: &delay, MaxAttempts: &attempts},
			Placement: &swarm.Placement{
				Constraints: []string{"node.role==manager"},
				Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}},
			},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: net.ID, Aliases: []string{"shop-api"}}},
			LogDriver: &swarm.Driver{Name: "json-file", Options: map[string]string{"max-size": "1m"}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{
			{TargetPort: 8080, PublishedPort: stablePort, PublishMode: swarm.PortConfigPublishModeHost}}},
	}
	if _, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.RemoveService(ctx, CanaryName(name))
		_ = c.RemoveService(ctx, name)
		_ = c.api.VolumeRemove(ctx, "fmtest-vol-"+suffix, true)
	})
	if err := c.WaitReady(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	canary, err := c.CreateCanary(ctx, name, imageRepo()+":v2", "r-rich")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, canary, nil); err != nil {
		t.Fatalf("the canary does not run with the stable's spec: %v", err)
	}
	if body, err := get(canaryPort); err != nil || body != "hello from v2" {
		t.Fatalf("canary answers %q, %v", body, err)
	}
	st, _ := c.inspect(ctx, name)
	cn, _ := c.inspect(ctx, canary)
	s, k := st.Spec, cn.Spec
	sc, kc := s.TaskTemplate.ContainerSpec, k.TaskTemplate.ContainerSpec
	asJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	copied := []struct{ field, why, stable, canary string }{
		{"env", "the new image must run with the same settings", asJSON(sc.Env), asJSON(kc.Env)},
		{"secrets", "same credentials, mounted the same way", asJSON(sc.Secrets), asJSON(kc.Secrets)},
		{"configs", "same configuration files", asJSON(sc.Configs), asJSON(kc.Configs)},
		{"mounts", "same volumes", asJSON(sc.Mounts), asJSON(kc.Mounts)},
		{"user", "same privileges", sc.User, kc.User},
		{"container labels", "same metadata on the containers", asJSON(sc.Labels), asJSON(kc.Labels)},
		{"healthcheck", "judged healthy the same way", asJSON(sc.Healthcheck), asJSON(kc.Healthcheck)},
		{"stop grace period", "stops as gracefully", asJSON(sc.StopGracePeriod), asJSON(kc.StopGracePeriod)},
		{"resources", "same limits: a canary with more room would look better than it is", asJSON(s.TaskTemplate.Resources), asJSON(k.TaskTemplate.Resources)},
		{"restart policy", "recovers the same way", asJSON(s.TaskTemplate.RestartPolicy), asJSON(k.TaskTemplate.RestartPolicy)},
		{"placement", "runs on the same kind of nodes", asJSON(s.TaskTemplate.Placement), asJSON(k.TaskTemplate.Placement)},
		{"networks", "reaches what stable reaches", asJSON(targets(s.TaskTemplate.Networks)), asJSON(targets(k.TaskTemplate.Networks))},
		{"logging", "its logs go where stable's go", asJSON(s.TaskTemplate.LogDriver), asJSON(k.TaskTemplate.LogDriver)},
		{"endpoint mode", "resolved the same way", string(s.EndpointSpec.Mode), string(k.EndpointSpec.Mode)},
		{"update config", "updated the same way", asJSON(s.UpdateConfig), asJSON(k.UpdateConfig)},
		{"user service labels", "same metadata", s.Labels["team"], k.Labels["team"]},
	}
	for _, row := range copied {
		t.Run("copied: "+row.field, func(t *testing.T) {
			if row.stable != row.canary || row.stable == "" || row.stable == "null" {
				t.Errorf("%s (%s): stable %s, canary %s", row.field, row.why, row.stable, row.canary)
			}
		})
	}
	v2, err := c.api.ImageInspect(ctx, imageRepo()+":v2")
	if err != nil {
		t.Fatal(err)
	}
	changed := []struct{ field, why, got, want string }{
		{"name", "next to stable, found by name", k.Name, name + "-canary"},
		{"image", "the release under test, pinned to its image ID (no registry digest here)", kc.Image, v2.ID},
		{"image label", "the reference released", k.Labels[LabelImage], imageRepo() + ":v2"},
		{"network aliases", "dropped: found by its own name only, never as stable", asJSON(k.TaskTemplate.Networks[0].Aliases), "null"},
		{"replicas", "canary.replicas, not stable's count", fmt.Sprint(*k.Mode.Replicated.Replicas), "1"},
		{"published port", "host-mode ports cannot be shared: canary.ports maps it", fmt.Sprint(k.EndpointSpec.Ports[0].PublishedPort), fmt.Sprint(canaryPort)},
		{"role label", "marks it as a canary", k.Labels[LabelRole], RoleCanary},
		{"release label", "ties it to its release", k.Labels[LabelRelease], "r-rich"},
		{"stable label", "names its stable service", k.Labels[LabelStable], name},
		{"stack label", "dropped, so a docker stack deploy --prune does not remove it mid-release", k.Labels["com.docker.stack.namespace"], ""},
	}
	for _, row := range changed {
		t.Run("changed: "+row.field, func(t *testing.T) {
			if row.got != row.want {
				t.Errorf("%s (%s): got %q, want %q", row.field, row.why, row.got, row.want)
			}
		})
	}
}

// targets are the networks of attachments, without their aliases.
func targets(nets []swarm.NetworkAttachmentConfig) []string {
	var out []string
	for _, n := range nets {
		out = append(out, n.Target)
	}
	return out
}
