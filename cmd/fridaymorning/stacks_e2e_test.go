//go:build integration

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProductionStack validates every config of stacks/production with the real tools: docker stack
// config for the stack file, haproxy -c for HAProxy's, influxd config for InfluxDB's, fridaymorning's
// own strict loader for its config, and each InfluxQL query of the Grafana dashboard against the test
// bed's InfluxDB.
func TestProductionStack(t *testing.T) {
	dir := "../../stacks/production"
	run := func(name string, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("docker", nil, "stack", "config", "-c", "stack.yml")
	if !strings.Contains(out, "endpoint_mode: dnsrr") {
		t.Errorf("docker stack config lost the app's endpoint mode:\n%s", out)
	}
	// The supervisor: one replica of `fridaymorning supervise` with the stack's fridaymorning.yaml.
	for _, want := range []string{"supervisor:", "- supervise", "target: /etc/fridaymorning/fridaymorning.yaml", "/var/run/docker.sock"} {
		if !strings.Contains(out, want) {
			t.Errorf("the stack's supervisor lacks %q:\n%s", want, out)
		}
	}
	run("haproxy", []string{"FM_INFLUX_LOG=127.0.0.1:8089"}, "-c", "-f", "haproxy.cfg")
	run(bedEnv(t, "FM_INFLUXD"), nil, "config", "-config", "influxdb.conf")

	fc, err := loadConfig(dir+"/fridaymorning.yaml", true)
	if err != nil {
		t.Fatalf("stacks/production/fridaymorning.yaml: %v", err)
	}
	if _, err := thresholds(fc); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(dir + "/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "server-template stable 1-10 tasks."+fc.Service) || !strings.Contains(string(cfg), "server-template canary 1-10 tasks."+fc.Service+"-canary") ||
		!strings.Contains(string(cfg), "backend "+fc.HAProxy.Backend) {
		t.Errorf("haproxy.cfg and fridaymorning.yaml disagree on the service, its canary or the backend")
	}

	raw, err := os.ReadFile(dir + "/grafana/fridaymorning.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Annotations struct {
			List []struct{ Query string } `json:"list"`
		} `json:"annotations"`
		Panels []struct {
			Title   string
			Targets []struct{ Query string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	macros := strings.NewReplacer("$timeFilter", "time > now() - 5m", "$__interval_ms", "10000", "$__interval", "10s",
		"$backend", "be_demo", "$canary", "/^canary/", "$stable", "/^stable/")
	var queries []string
	for _, a := range dash.Annotations.List {
		queries = append(queries, a.Query)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Query)
		}
	}
	if len(queries) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(queries))
	}
	for _, q := range queries {
		q = macros.Replace(q)
		resp, err := http.Get("http://127.0.0.1:" + bedEnv(t, "FM_INFLUX_PORT") + "/query?db=" + bedEnv(t, "FM_INFLUX_DB") + "&q=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
			t.Errorf("dashboard query %q: %s %s", q, resp.Status, body)
		}
	}
}
