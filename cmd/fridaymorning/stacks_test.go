package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestGitLabExample parses stacks/gitlab/.gitlab-ci.yml and checks every fridaymorning command in it
// against the command line: each names an existing command and only flags it has.
func TestGitLabExample(t *testing.T) {
	raw, err := os.ReadFile("../../stacks/gitlab/.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pipeline map[string]any
	if err := yaml.Unmarshal(raw, &pipeline); err != nil {
		t.Fatalf("the example pipeline is not YAML: %v", err)
	}
	n := 0
	for name, job := range pipeline {
		j, ok := job.(map[string]any)
		if !ok {
			continue
		}
		script, _ := j["script"].([]any)
		for _, line := range script {
			l, _ := line.(string)
			if !strings.HasPrefix(l, "fridaymorning ") {
				continue
			}
			// The example quotes whole words only ("$IMAGE"): fields with the quotes taken off will do.
			var args []string
			for _, f := range strings.Fields(strings.TrimPrefix(l, "fridaymorning ")) {
				args = append(args, strings.Trim(f, `"'`))
			}
			root := newRootCmd(io.Discard, io.Discard)
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("job %s: %q names no fridaymorning command", name, l)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("job %s: %q: %v", name, l, err)
			}
			n++
		}
	}
	if n < 3 {
		t.Errorf("only %d fridaymorning commands in the example pipeline", n)
	}
}
