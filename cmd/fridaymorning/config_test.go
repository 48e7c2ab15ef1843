package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/analysis"
	"github.com/fridaymorning/fridaymorning/release"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeFile(t, "fm.yaml", `
service: shop
steps: [5, 20, 50]
bake: 90s
canary:
  ports: ["8080:8081"]
haproxy:
  url: http://127.0.0.1:5555/v2
  backend: be_shop
  stable_servers: [s1, s2]
  canary_servers: [c1]
analysis:
  max_error_rate: 0.5
  max_extensions: 0
`)
	fc, err := loadConfig(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Service != "shop" || len(fc.Steps) != 3 || fc.Bake.D() != 90*time.Second || fc.HAProxy.StableServers[1] != "s2" {
		t.Fatalf("config %+v", fc)
	}
	if *fc.Analysis.MaxErrorRate != 0.5 || maxExtensions(fc.Analysis.MaxExtensions) != -1 {
		t.Fatalf("analysis %+v", fc.Analysis)
	}
	if th, err := thresholds(fc); err != nil || th.MaxErrorRate != 0.5 || th.MinRequests != analysis.DefaultMinRequests || th.MaxLatencyRatio != analysis.DefaultMaxLatencyRatio {
		t.Fatalf("thresholds %+v", th)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown key names the line", "service: a\nsteps: [10]\nhaproxy:\n  pasword: x\n", "line 4: unknown key haproxy.pasword"},
		{"inline secret is refused", "haproxy:\n  password: hunter2\n", "line 2: haproxy.password: secrets never go in fridaymorning.yaml"},
		{"bad duration", "bake: soon\n", `"soon" is not a duration`},
		{"not yaml", "service: [\n", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, "fm.yaml", tt.content), true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error repeats a secret: %v", err)
			}
		})
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), true); err == nil {
		t.Fatal("a required missing config is no error")
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false); err != nil {
		t.Fatalf("an optional missing config: %v", err)
	}
	if _, err := loadConfig(writeFile(t, "empty.yaml", ""), true); err != nil {
		t.Fatalf("an empty config: %v", err)
	}
}

func TestParsePortsAndSteps(t *testing.T) {
	ports, err := parsePorts([]string{"18410:18411", " 80 : 8080 "})
	if err != nil || ports[18410] != 18411 || ports[80] != 8080 {
		t.Fatalf("ports %v, %v", ports, err)
	}
	for _, bad := range []string{"80", "80:80", "a:b", "0:1", "70000:1"} {
		if _, err := parsePorts([]string{bad}); err == nil {
			t.Errorf("port mapping %q accepted", bad)
		}
	}
	steps, err := parseSteps("5, 20%,50")
	if err != nil || len(steps) != 3 || steps[1] != 20 {
		t.Fatalf("steps %v, %v", steps, err)
	}
	if _, err := parseSteps("5,x"); err == nil {
		t.Fatal("bad steps accepted")
	}
}

func TestSecret(t *testing.T) {
	file := writeFile(t, "pw", "from-file\n")
	t.Setenv(envDataplanePassword, "")
	if v, err := secret(envDataplanePassword, file, "haproxy password"); err != nil || v != "from-file" {
		t.Fatalf("file secret %q, %v", v, err)
	}
	t.Setenv(envDataplanePassword, "from-env")
	if v, _ := secret(envDataplanePassword, file, "haproxy password"); v != "from-env" {
		t.Fatalf("env must win over the file, got %q", v)
	}
	t.Setenv(envDataplanePassword, "")
	_, err := secret(envDataplanePassword, "/nonexistent/pw", "haproxy password")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/pw") || !strings.Contains(err.Error(), envDataplanePassword) {
		t.Fatalf("err = %v, want it to name the file and the variable", err)
	}
}

func TestWireReportsEverythingMissing(t *testing.T) {
	_, err := wire(&fileConfig{}, "img:v2", nil)
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, key := range []string{"service", "haproxy.url", "haproxy.backend", "influxdb.url", "influxdb.bucket", "haproxy.stable_servers", "haproxy.canary_servers"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func TestExitCodes(t *testing.T) {
	codes := map[release.Outcome]int{
		release.OutcomePromoted: 0, release.OutcomeFailed: 1, release.OutcomeAbortedAnalysis: 3,
		release.OutcomeAbortedOperator: 4, release.OutcomeAbortedInconclusive: 5, release.OutcomeRolledBack: 6,
	}
	for o, want := range codes {
		if got := exitCodeFor(o); got != want {
			t.Errorf("exitCodeFor(%s) = %d, want %d", o, got, want)
		}
	}
}

func TestBackendKeyNamesTheHAProxyAndTheBackend(t *testing.T) {
	key := func(mode, url, socket, backend string) string {
		fc := &fileConfig{}
		fc.HAProxy.Mode, fc.HAProxy.URL, fc.HAProxy.RuntimeSocket, fc.HAProxy.Backend = mode, url, socket, backend
		return fc.backendKey()
	}
	if a, b := key("", "http://10.0.0.1:5555/v2", "", "be_demo"), key("", "http://10.0.0.1:5555/v3", "", "be_demo"); a != b {
		t.Errorf("one HAProxy through two API versions: %q and %q", a, b)
	}
	if a, b := key("", "http://127.0.0.1:18402/v2", "", "be_demo"), key("", "http://127.0.0.1:18622/v2", "", "be_demo"); a == b {
		t.Errorf("two HAProxies with a backend of the same name share the key %q", a)
	}
	if a, b := key("runtime", "", "/run/a.sock", "be_demo"), key("runtime", "", "/run/b.sock", "be_demo"); a == b {
		t.Errorf("two admin sockets share the key %q", a)
	}
}

// TestSecretFileThatIsNoSecret: a secret file that is far too large (a log, /dev/zero) is refused after
// a bounded read, naming the file, rather than read whole (for ever, in /dev/zero's case).
func TestSecretFileThatIsNoSecret(t *testing.T) {
	t.Setenv(envDataplanePassword, "")
	big := writeFile(t, "pw", strings.Repeat("x", 1<<20))
	for _, file := range []string{big, "/dev/zero"} {
		_, err := secret(envDataplanePassword, file, "haproxy password")
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "too large") {
			t.Errorf("%s: err = %v, want it refused as too large, naming the file", file, err)
		}
	}
}
