package main

import (
	"strings"
	"testing"
)

// TestConfigErrorTexts: a bad fridaymorning.yaml is answered with the line where the problem is, the
// key path, and what to do; never with a Go type, nor with a secret's value.
func TestConfigErrorTexts(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown nested key", "service: a\nhaproxy:\n  url: http://x/v2\n  pasword: x\n", []string{"line 4: unknown key haproxy.pasword: did you mean haproxy.password_file?"}},
		{"unknown key without a close one", "haproxy:\n  colour: red\n", []string{"line 2: unknown key haproxy.colour: haproxy takes backend, base_weight"}},
		{"unknown top-level key", "servise: a\n", []string{"line 1: unknown key servise: did you mean service?"}},
		{"unknown key in a list entry", "notify:\n  - name: a\n    evnts: [finished]\n", []string{"line 3: unknown key notify[0].evnts: did you mean notify[0].events?"}},
		{"unknown key in analysis.custom", "analysis:\n  custom:\n    - name: a\n      qurey: x\n", []string{"line 4: unknown key analysis.custom[0].qurey: did you mean analysis.custom[0].query?"}},
		{"secret inline", "influxdb:\n  token: s3cr3t-token\n", []string{"line 2: influxdb.token: secrets never go in fridaymorning.yaml: set FRIDAYMORNING_INFLUXDB_TOKEN, or influxdb.token_file"}},
		{"unclosed list is at its line", "service: x\nsteps: [10, 25\nbake: 1m\n", []string{"line 2:", "close the list with ]"}},
		{"unclosed list further down", "service: x\n\nhaproxy:\n  stable_servers: [a\n  backend: b\n", []string{"line 4:", "close the list"}},
		{"unclosed quote on line 1", "service: \"x\nhaproxy:\n  url: u\n", []string{"line 1:", "never closed"}},
		{"unclosed quote before more keys", "bake: 1m\nservice: \"x\nsteps: [10]\nhaproxy:\n  url: u\n  backend: b\n", []string{"line 2:"}},
		{"tab after a key", "service: x\nhaproxy:\n  url: u\n\tbackend: b\n", []string{"line 4:", "spaces, not tabs"}},
		{"a list over lines, then an error", "steps: [10,\n  20]\nhaproxy\n  url: u\n", []string{"line 3:", "key: value"}},
		{"tab", "service: x\nhaproxy:\n\turl: u\n", []string{"line 3:", "spaces, not tabs"}},
		{"indented too little", "service: x\nhaproxy:\n  url: u\n backend: b\n", []string{"line 4:", "indent"}},
		{"missing colon", "service: x\nhaproxy\n  url: u\n", []string{"line 2:", "key: value"}},
		{"key set twice", "bake: 1m\nsteps: [10]\nbake: 2m\n", []string{"line 3: bake is set twice (first at line 1): keep one"}},
		{"nested key set twice", "haproxy:\n  url: a\n  url: b\n", []string{"line 3: haproxy.url is set twice"}},
		{"two documents", "service: a\n---\nservice: b\n", []string{"line 3: a second YAML document", "one document"}},
		{"not a number", "canary:\n  replicas: many\n", []string{"line 2: canary.replicas: want a whole number, not `many`"}},
		{"not a number in a list", "steps: [10, x]\n", []string{"line 1: steps: want a number, not `x`"}},
		{"list where a value goes", "service: [a, b]\n", []string{"line 1: service: want a single value", "not a list"}},
		{"list where a mapping goes", "docker: [a]\n", []string{"line 1: docker: want key: value lines", "not a list"}},
		{"value where a mapping goes", "haproxy: be_app\n", []string{"line 1: haproxy: want key: value lines", `not the value "be_app"`}},
		{"value where a list goes", "haproxy:\n  stable_servers: stable1\n", []string{"line 2: haproxy.stable_servers: want a list"}},
		{"not true or false", "haproxy:\n  cohorts: sometimes\n", []string{"line 2: haproxy.cohorts: want true or false"}},
		{"bad duration", "bake: 4s\nstate:\n  heartbeat: often\n", []string{"line 3: state.heartbeat:", `"often" is not a duration such as 30s`}},
		{"not YAML at all", "\x00\x01", []string{"malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("fm.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant %q", err, w)
				}
			}
			for _, bad := range []string{"struct {", "uint64", "float64", "[]string", "main.", "s3cr3t-token"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("err = %v: shows %q", err, bad)
				}
			}
		})
	}
}

// TestConfigAcceptsWhatIsValid: anchors, comments, an explicit document start or end and an empty file
// are all fine.
func TestConfigAcceptsWhatIsValid(t *testing.T) {
	for _, ok := range []string{
		"",
		"# nothing\n",
		"---\nservice: a\n",
		"service: a\n---\n",
	} {
		if _, err := parseConfig("fm.yaml", []byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	fc, err := parseConfig("fm.yaml", []byte("haproxy: &h\n  backend: be_x\n  stable_servers: [s1]\nprometheus:\n  url: http://p\n"))
	if err != nil || fc.HAProxy.Backend != "be_x" {
		t.Fatalf("%+v, %v", fc, err)
	}
}

func TestNoConfigFileIsSaid(t *testing.T) {
	t.Chdir(t.TempDir())
	fc, err := loadConfig(defaultConfigPath, false)
	if err != nil {
		t.Fatal(err)
	}
	err = fc.checkRequired()
	if err == nil || !strings.Contains(err.Error(), "no config file") || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("err = %v: want it to say that no config file was found and what to do", err)
	}
}
