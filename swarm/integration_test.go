//go:build integration

package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

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
