//go:build integration

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// TestWatchEndsWhenTheServiceGoes: the cockpit of `fridaymorning watch` on a service that is removed
// while it watches ends, exit 1, with the whole not-found error on the terminal, rather than waiting for
// ever with the error cut off at the screen's width.
func TestWatchEndsWhenTheServiceGoes(t *testing.T) {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	name := fmt.Sprintf("fm-watch%d", time.Now().UnixNano()%1e8)
	zero := uint64(0)
	created, err := docker.ServiceCreate(context.Background(), dockerswarm.ServiceSpec{
		Annotations:  dockerswarm.Annotations{Name: name, Labels: map[string]string{"fridaymorning.test": "e2e"}},
		TaskTemplate: dockerswarm.TaskSpec{ContainerSpec: &dockerswarm.ContainerSpec{Image: bedEnv(t, "FM_IMAGE_REPO") + ":v1"}},
		Mode:         dockerswarm.ServiceMode{Replicated: &dockerswarm.ReplicatedService{Replicas: &zero}},
	}, dockerswarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = docker.ServiceRemove(context.Background(), created.ID) })

	r := (&stack{t: t}).inTmux(t, "watch", name, "--config", writeFile(t, "fm.yaml", "docker:\n  host: \"\"\n"))
	r.waitFor(30*time.Second, "has no release yet")
	if err := docker.ServiceRemove(context.Background(), created.ID); err != nil {
		t.Fatal(err)
	}
	if code := r.exitCode(30 * time.Second); code != exitError {
		t.Fatalf("watch exited %d, want %d:\n%s", code, exitError, r.screen())
	}
	screen := strings.ReplaceAll(r.screen(), "\n", "")
	for _, want := range []string{`service "` + name + `" not found`, "check the service name (docker service ls lists them)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, r.screen())
		}
	}
}
