package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestReleaseFlagsAreUsed: every flag given overrides fridaymorning.yaml, --pause-before-promote=false
// included, and flags not given leave it alone.
func TestReleaseFlagsAreUsed(t *testing.T) {
	fileCfg := func() *fileConfig {
		fc := &fileConfig{Service: "from-file", Steps: []float64{10, 25, 50}, Bake: duration(time.Minute)}
		fc.Promote.PauseBefore, fc.Promote.WatchAtGate = true, true
		return fc
	}
	tests := []struct {
		name  string
		args  []string
		check func(fc *fileConfig) bool
	}{
		{"none", nil, func(fc *fileConfig) bool {
			return fc.Service == "from-file" && len(fc.Steps) == 3 && fc.Bake.D() == time.Minute && fc.Promote.PauseBefore && fc.Promote.WatchAtGate
		}},
		{"--service", []string{"--service", "shop"}, func(fc *fileConfig) bool { return fc.Service == "shop" }},
		{"--steps", []string{"--steps", "5,50"}, func(fc *fileConfig) bool { return len(fc.Steps) == 2 && fc.Steps[0] == 5 }},
		{"--bake", []string{"--bake", "2s"}, func(fc *fileConfig) bool { return fc.Bake.D() == 2*time.Second }},
		{"--pause-before-promote=false", []string{"--pause-before-promote=false"}, func(fc *fileConfig) bool { return !fc.Promote.PauseBefore }},
		{"--watch-at-gate=false", []string{"--watch-at-gate=false"}, func(fc *fileConfig) bool { return !fc.Promote.WatchAtGate }},
		{"--watch-at-gate", []string{"--watch-at-gate"}, func(fc *fileConfig) bool { return fc.Promote.WatchAtGate }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &releaseOptions{}
			cmd := releaseCommand(o, &rootOptions{}, &bytes.Buffer{}, &bytes.Buffer{})
			if err := cmd.ParseFlags(append([]string{"--image", "shop:v2"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			if err := o.validate(cmd.Flags()); err != nil {
				t.Fatal(err)
			}
			fc := fileCfg()
			if err := o.apply(fc); err != nil {
				t.Fatal(err)
			}
			if !tt.check(fc) {
				t.Fatalf("config after the flags: %+v", fc)
			}
		})
	}
}

// TestUsageErrorsExitTwo runs the program in-process with bad flags: each exits 2, says what is wrong
// and what to do, and does no I/O (docker.host points at nothing that answers).
func TestUsageErrorsExitTwo(t *testing.T) {
	cfg := writeFile(t, "fm.yaml", "service: shop\ndocker:\n  host: tcp://127.0.0.1:1\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--steps", ""}, "e.g. --steps 10,25,50"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--steps", "50,10"}, "steps must increase"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--steps", "nan"}, "(0, 100]"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--bake", "0s"}, "positive duration"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--bake", "soon"}, "see `fridaymorning release --help`"},
		{[]string{"release", "-c", cfg, "--image", ""}, "name the image to release"},
		{[]string{"release", "-c", cfg, "--image", "Shop:V2"}, "lower case"},
		{[]string{"release", "-c", cfg}, "nothing to release: pass --image IMAGE, or --stack-file"},
		{[]string{"release", "-c", cfg, "--stack-file", ""}, "leave --stack-file out"},
		{[]string{"release", "-c", cfg, "--stack-file", "stack.yml", "--stack", ""}, "leave --stack out"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--stack-file", "stack.yml"}, "--image and --stack-file both given"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--service", ""}, "leave --service out"},
		{[]string{"release", "-c", cfg, "--image", "shop:v2", "--report", ""}, "name the file"},
		{[]string{"release", "--config", "", "--image", "shop:v2"}, "leave --config out"},
		{[]string{"abort", "-c", cfg, "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"watch", "-c", cfg, "--interval", "-1s"}, "--interval -1s: want a positive duration"},
		{[]string{"supervise", "-c", cfg, "--interval", "0s"}, "--interval 0s: want a positive duration"},
		{[]string{"promote", "-c", cfg, "--release", ""}, `--release "": name the release`},
		{[]string{"abort", "-c", cfg, "--image", " "}, `--image " ": name the image`},
		{[]string{"status", "-c", cfg, "-o", "xml"}, "want text or json"},
		{[]string{"relase"}, "see `fridaymorning --help`"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := Main(tt.args, &out, &out)
			if code != exitUsage || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output %q: want exit 2 saying %q", code, out.String(), tt.want)
			}
		})
	}
}
