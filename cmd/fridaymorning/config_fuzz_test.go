package main

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseConfig: whatever fridaymorning.yaml holds, reading it and checking it returns, either with a
// config or with an error that names the file and says what is wrong in the user's words (a key path,
// not a Go type).
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"../../stacks/demo/fridaymorning.yaml", "../../stacks/production/fridaymorning.yaml"} {
		if raw, err := os.ReadFile(path); err == nil {
			f.Add(raw)
		}
	}
	for _, s := range []string{
		"service: a\nhaproxy:\n  pasword: x\n",
		"steps: [10, 25\nbake: 1m\n",
		"service: \"x\nhaproxy:\n  url: u\n",
		"haproxy:\n\turl: u\n",
		"a: &a [*a, *a]\nb: *a\n",
		"docker: [a]\ncanary:\n  replicas: many\n",
		"service: a\n---\nservice: b\n",
		"notify:\n  - name: x\n    evnts: [y]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fc, err := parseConfig("fm.yaml", raw)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "config fm.yaml") {
				t.Fatalf("error %q does not name the file", msg)
			}
			for _, goType := range []string{"struct {", "main.", "[]main", "*main", "reflect"} {
				if strings.Contains(msg, goType) {
					t.Fatalf("error %q shows a Go type", msg)
				}
			}
			return
		}
		// What a release checks next must not panic on what was read.
		_ = fc.checkRequired()
		_, _ = parsePorts(fc.Canary.Ports)
		_, _ = thresholds(fc)
		_ = fc.steps()
		_ = fc.bake()
	})
}
