//go:build integration

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDrill runs the short drill on the test bed: every scenario ends safe, and the scorecard shows
// them all beside Swarm's own rolling update.
func TestDrill(t *testing.T) {
	for _, k := range []string{"FM_BED_DIR", "FM_SERVICE"} {
		bedEnv(t, k)
	}
	cmd := exec.Command(bin.fridaymorning, "drill", "--profile", "short")
	cmd.Env = append(os.Environ(), "CI=true")
	out, err := cmd.CombinedOutput()
	t.Logf("fridaymorning drill:\n%s", out)
	if err != nil {
		t.Fatalf("the drill failed: %v", err)
	}
	sc := string(out[strings.Index(string(out), "fridaymorning drill — scorecard"):])
	for _, s := range scenarios {
		line := ""
		for _, l := range strings.Split(sc, "\n") {
			if strings.HasPrefix(l, s.name+" ") {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, "✓") || !strings.Contains(line, string(s.expect)) {
			t.Errorf("scenario %s: scorecard line %q", s.name, line)
		}
	}
	if !strings.Contains(sc, "docker service update --update-failure-action rollback") {
		t.Error("the scorecard lacks Swarm's rolling update")
	}
}
