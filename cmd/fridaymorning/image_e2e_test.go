//go:build integration

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fridaymorning/fridaymorning/swarm"
)

// TestReleaseFromTheToolImage builds fridaymorning's own image with `make image` and runs a whole release
// from inside it against the test bed, as a CI job would: the Docker socket mounted, the host's network,
// the configuration and the password file mounted where the configuration names them, and the image's
// non-root user given the socket's group.
func TestReleaseFromTheToolImage(t *testing.T) {
	const image = "fridaymorning/fridaymorning:e2e"
	build := exec.Command("make", "-C", "../..", "image", "IMAGE="+image)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &st); err != nil {
		t.Fatalf("the Docker socket: %v", err)
	}
	version, err := exec.Command("docker", "run", "--rm", image, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(version), "fridaymorning ") {
		t.Fatalf("fridaymorning version in the image: %v: %s", err, version)
	}
	t.Logf("%s", version)

	s := newStack(t)
	dir := filepath.Dir(s.configPath)
	// The image runs as its non-root user: the job's checkout (here the stack's directory) is that user's,
	// as a CI runner's checkout is the job's.
	for _, p := range []string{dir, s.configPath, filepath.Join(dir, "dataplane.password")} {
		if err := os.Chown(p, 65532, 65532); err != nil {
			t.Fatal(err)
		}
	}
	stop := s.startLoad(50)
	args := []string{"run", "--rm", "--network", "host", "--group-add", fmt.Sprint(st.Gid),
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", dir + ":" + dir, "-e", "CI=true",
		image, "release", "--config", s.configPath, "--image", s.image + ":v2"}
	cmd := exec.Command("docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	load := stop()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker %s → exit %d\n%s", strings.Join(args, " "), code, tail(out.String(), 15))
	if code != exitPromoted {
		t.Fatalf("the release in the container exited %d, want %d", code, exitPromoted)
	}
	if strings.Contains(out.String(), s.password) {
		t.Error("the Data Plane API password shows in the container's output")
	}
	if img := swarm.ReleasedImage(s.inspect().Spec); img != s.image+":v2" {
		t.Errorf("stable runs %s, want v2", img)
	}
	if load.Failed != 0 {
		t.Errorf("%d of %d requests failed", load.Failed, load.Sent)
	}

}
