package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/swarm"
)

// Environment variables that carry secrets. Secrets never live in fridaymorning.yaml itself: it names a
// file instead, or the environment provides them.
const (
	envDataplanePassword = "FRIDAYMORNING_DATAPLANE_PASSWORD"
	envInfluxToken       = "FRIDAYMORNING_INFLUXDB_TOKEN"
	envPromPassword      = "FRIDAYMORNING_PROMETHEUS_PASSWORD"
	envPromToken         = "FRIDAYMORNING_PROMETHEUS_TOKEN"
)

// duration is a time.Duration written as "30s" or "2m" in YAML.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 2m", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d duration) D() time.Duration { return time.Duration(d) }

// fileConfig is fridaymorning.yaml. Every field is optional in the file; flags override it, and
// validate says what is missing.
type fileConfig struct {
	// Service is the stable Swarm service to release.
	Service string `yaml:"service"`
	// StackFile, if set, releases the service's whole spec from this stack file (docker stack deploy
	// -c), not an image alone; Stack is the stack's name (default: the part of service before "_").
	StackFile string    `yaml:"stack_file"`
	Stack     string    `yaml:"stack"`
	Steps     []float64 `yaml:"steps"`
	Bake      duration  `yaml:"bake"`

	Docker struct {
		Host string `yaml:"host"`
	} `yaml:"docker"`

	Canary struct {
		Replicas uint64 `yaml:"replicas"`
		// Scale is match (the default: before a step's weight goes up, the canary gets that share of
		// stable's tasks, at least replicas) or fixed (replicas tasks until promotion).
		Scale        string   `yaml:"scale"`
		Ports        []string `yaml:"ports"`
		ReadyTimeout duration `yaml:"ready_timeout"`
	} `yaml:"canary"`

	Promote struct {
		Timeout duration `yaml:"timeout"`
		// Standby keeps the previous version warm at weight 0 for this long after a promotion, for
		// `fridaymorning rollback`; 0 (the default) removes it at once.
		Standby duration `yaml:"standby"`
		// PauseBefore stops at the promotion gate once every step passed (--pause-before-promote).
		PauseBefore bool `yaml:"pause_before"`
		// WatchAtGate keeps the release's process watching the canary with early looks at the gate,
		// until promoted or aborted, instead of exiting (--watch-at-gate).
		WatchAtGate bool `yaml:"watch_at_gate"`
	} `yaml:"promote"`

	// State tunes how a release's driving process shows it is alive.
	State struct {
		// Heartbeat is how often the process stamps its heartbeat on the canary (default 5s).
		Heartbeat duration `yaml:"heartbeat"`
		// StaleAfter is how long without a heartbeat makes the process count as dead, so that
		// resume, abort and promote take the release over (default 30s).
		StaleAfter duration `yaml:"stale_after"`
		// OnStale is what `fridaymorning supervise` does with a release whose process is stale while
		// its canary is starting or baking: abort (the default) or resume. A promotion, a standby and a
		// rollback are always finished, an abort carried through, and a paused release watched.
		OnStale string `yaml:"on_stale"`
	} `yaml:"state"`

	HAProxy struct {
		// Mode is how fridaymorning reaches HAProxy: dataplane (the Data Plane API v2, default) or
		// runtime (the admin socket; weights do not survive a reload).
		Mode          string   `yaml:"mode"`
		RuntimeSocket string   `yaml:"runtime_socket"`
		CAFile        string   `yaml:"ca_file"`
		URL           string   `yaml:"url"`
		User          string   `yaml:"user"`
		PasswordFile  string   `yaml:"password_file"`
		Backend       string   `yaml:"backend"`
		StableServers []string `yaml:"stable_servers"`
		CanaryServers []string `yaml:"canary_servers"`
		BaseWeight    int      `yaml:"base_weight"`
		// Cohorts: the backend keeps clients on one server with a cookie (stacks/haproxy/cohorts.cfg);
		// a group at weight 0 is then also put in maintenance so its sticky clients move at once.
		Cohorts      bool     `yaml:"cohorts"`
		Timeout      duration `yaml:"timeout"`
		DrainTimeout duration `yaml:"drain_timeout"`
	} `yaml:"haproxy"`

	InfluxDB struct {
		URL         string   `yaml:"url"`
		Org         string   `yaml:"org"`
		Bucket      string   `yaml:"bucket"`
		TokenFile   string   `yaml:"token_file"`
		Measurement string   `yaml:"measurement"`
		Timer       string   `yaml:"timer"`
		Timeout     duration `yaml:"timeout"`
		Language    string   `yaml:"language"`
		// Annotations writes release events to InfluxDB (measurement fridaymorning_event) for
		// dashboards; on unless false.
		Annotations *bool `yaml:"annotations"`
	} `yaml:"influxdb"`

	Analysis struct {
		MinRequests          int64    `yaml:"min_requests"`
		MaxErrorRate         *float64 `yaml:"max_error_rate"`
		MaxErrorRateIncrease *float64 `yaml:"max_error_rate_increase"`
		MaxP50               duration `yaml:"max_p50"`
		MaxP90               duration `yaml:"max_p90"`
		MaxP95               duration `yaml:"max_p95"`
		MaxP99               duration `yaml:"max_p99"`
		MaxLatencyRatio      *float64 `yaml:"max_latency_ratio"`
		LatencySlack         duration `yaml:"latency_slack"`
		Confidence           float64  `yaml:"confidence"`
		ErrorStatuses        []string `yaml:"error_statuses"`
		EarlyInterval        duration `yaml:"early_interval"`
		// Sequential (default true) judges with sequential tests, one false-abort budget for the whole
		// release; false judges each window on its own, as before.
		Sequential *bool `yaml:"sequential"`
		// EarlyPass ends a step as soon as the canary is shown within every limit beyond doubt, once it
		// has baked MinBake (default a sixth of the bake).
		EarlyPass         bool          `yaml:"early_pass"`
		MinBake           duration      `yaml:"min_bake"`
		MinRequestsToFail int64         `yaml:"min_requests_to_fail"`
		MaxTelemetryGap   *float64      `yaml:"max_telemetry_gap"`
		MaxShareGap       *float64      `yaml:"max_share_gap"`
		Delay             duration      `yaml:"delay"`
		MaxExtensions     *int          `yaml:"max_extensions"`
		OnInconclusive    string        `yaml:"on_inconclusive"`
		Custom            []customEntry `yaml:"custom"`
	} `yaml:"analysis"`

	// Prometheus is where custom checks with source: prometheus are asked.
	Prometheus struct {
		URL             string   `yaml:"url"`
		Username        string   `yaml:"username"`
		PasswordFile    string   `yaml:"password_file"`
		BearerTokenFile string   `yaml:"bearer_token_file"`
		CAFile          string   `yaml:"ca_file"`
		Timeout         duration `yaml:"timeout"`
	} `yaml:"prometheus"`

	// Notify are the receivers of the release's milestones.
	Notify []notifyEntry `yaml:"notify"`

	// Gates are the outside checks the release waits on, by point.
	Gates struct {
		PreRollout       []gateEntry `yaml:"pre_rollout"`
		ConfirmPromotion []gateEntry `yaml:"confirm_promotion"`
		PostRollout      []gateEntry `yaml:"post_rollout"`
	} `yaml:"gates"`

	// lookedFor is where the default config file was looked for and not found; "" when one was read.
	lookedFor string
}

// customEntry is one custom metric of analysis.custom.
type customEntry struct {
	Name string `yaml:"name"`
	// Source is where the query goes: empty for InfluxDB (in influxdb.language), prometheus for PromQL.
	Source   string   `yaml:"source"`
	Query    string   `yaml:"query"`
	Unit     string   `yaml:"unit"`
	Max      *float64 `yaml:"max"`
	Min      *float64 `yaml:"min"`
	MaxRatio float64  `yaml:"max_ratio"`
}

// Defaults for what fridaymorning.yaml leaves out; analysis.DefaultThresholds has those of analysis:.
const (
	defaultBake = time.Minute
	// defaultStaleAfter is how long without a heartbeat makes a release's process count as dead.
	defaultStaleAfter = 30 * time.Second
)

// steps are the canary's traffic shares: steps:, or 10%, 25% and 50%.
func (fc *fileConfig) steps() []float64 {
	if len(fc.Steps) == 0 {
		return []float64{10, 25, 50}
	}
	return fc.Steps
}

// bake is how long each step runs before it is judged: bake:, or a minute.
func (fc *fileConfig) bake() time.Duration {
	if d := fc.Bake.D(); d != 0 {
		return d
	}
	return defaultBake
}

// staleAfter is state.stale_after, or 30s.
func (fc *fileConfig) staleAfter() time.Duration {
	if d := fc.State.StaleAfter.D(); d > 0 {
		return d
	}
	return defaultStaleAfter
}

// swarmClient connects to the Docker Engine of docker.host (no I/O until the first call).
func (fc *fileConfig) swarmClient() (*swarm.Client, error) {
	sw, err := swarm.New(swarm.Config{Host: fc.Docker.Host})
	if err != nil {
		return nil, &exitErr{exitError, err}
	}
	return sw, nil
}

// loadRecord connects to fc's Swarm and reads the release record of fc.Service (nil if it has none);
// the caller closes sw.
func (fc *fileConfig) loadRecord(ctx context.Context) (sw *swarm.Client, rec *release.Record, err error) {
	if sw, err = fc.swarmClient(); err != nil {
		return nil, nil, err
	}
	if rec, err = release.Load(ctx, sw, fc.Service); err != nil {
		sw.Close()
		return nil, nil, &exitErr{exitError, err}
	}
	return sw, rec, nil
}

// checkRequired says, all at once, which settings a release needs are missing, or that there was no
// config file at all.
func (fc *fileConfig) checkRequired() error {
	if fc.lookedFor != "" {
		return fmt.Errorf("no config file: there is no %s, which is read when --config is not given: pass --config FILE, or create %s (stacks/demo/fridaymorning.yaml is a complete example)", fc.lookedFor, defaultConfigPath)
	}
	var missing []string
	for _, m := range []struct{ key, val string }{
		{"service (or --service)", fc.Service},
		{"haproxy.url (or haproxy.mode: runtime with haproxy.runtime_socket)", fc.haproxyEndpoint()},
		{"haproxy.backend", fc.HAProxy.Backend},
		{"influxdb.url", fc.InfluxDB.URL},
		{"influxdb.bucket", fc.InfluxDB.Bucket},
	} {
		if strings.TrimSpace(m.val) == "" {
			missing = append(missing, m.key)
		}
	}
	if len(fc.HAProxy.StableServers) == 0 {
		missing = append(missing, "haproxy.stable_servers")
	}
	if len(fc.HAProxy.CanaryServers) == 0 {
		missing = append(missing, "haproxy.canary_servers")
	}
	if len(missing) > 0 {
		return fmt.Errorf("config: missing %s: set them in fridaymorning.yaml (see stacks/demo/fridaymorning.yaml)", strings.Join(missing, ", "))
	}
	switch fc.Canary.Scale {
	case "", "match", "fixed":
	default:
		return fmt.Errorf("config: canary.scale %q: want match (the canary's tasks follow its share) or fixed (canary.replicas until promotion)", fc.Canary.Scale)
	}
	return nil
}

// haproxyEndpoint is where HAProxy is reached: the Data Plane API's URL, or the runtime socket.
func (fc *fileConfig) haproxyEndpoint() string {
	if fc.HAProxy.Mode == haproxy.ModeRuntime {
		return fc.HAProxy.RuntimeSocket
	}
	return fc.HAProxy.URL
}

// backendKey names the load balancer backend a release locks: the HAProxy it reaches (the Data Plane
// API's scheme, host and port, whichever API version; or the admin socket's path) and the backend. The
// same backend name on two HAProxies (two beds, two clusters) is two backends.
func (fc *fileConfig) backendKey() string {
	where := fc.haproxyEndpoint()
	if u, err := url.Parse(where); err == nil && u.Host != "" {
		where = u.Scheme + "://" + u.Host
	}
	return where + " " + fc.HAProxy.Backend
}

// loadConfig reads path strictly: unknown keys and malformed values are errors naming the line and the
// key. A missing file is an error only if required; otherwise the config says where it looked.
func loadConfig(path string, required bool) (*fileConfig, error) {
	raw, err := readSmall(path, maxConfigSize, "fridaymorning.yaml")
	if errors.Is(err, os.ErrNotExist) && !required {
		cfg := &fileConfig{lookedFor: path}
		if abs, err := filepath.Abs(path); err == nil {
			cfg.lookedFor = abs
		}
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w: check --config", path, err)
	}
	return parseConfig(path, raw)
}

// parseConfig reads raw, the content of the config file at path.
func parseConfig(path string, raw []byte) (*fileConfig, error) {
	cfg := &fileConfig{}
	if err := decodeConfig(raw, cfg); err != nil {
		sep := ": "
		if strings.HasPrefix(err.Error(), "is ") || strings.HasPrefix(err.Error(), "cannot ") {
			sep = " "
		}
		return nil, fmt.Errorf("config %s%s%w", path, sep, err)
	}
	return cfg, nil
}

// parsePorts reads canary.ports entries "STABLE:CANARY" (published host ports).
func parsePorts(entries []string) (map[uint32]uint32, error) {
	out := make(map[uint32]uint32, len(entries))
	for _, e := range entries {
		from, to, ok := strings.Cut(e, ":")
		f, ferr := strconv.ParseUint(strings.TrimSpace(from), 10, 16)
		t, terr := strconv.ParseUint(strings.TrimSpace(to), 10, 16)
		if !ok || ferr != nil || terr != nil || f == 0 || t == 0 || f == t {
			return nil, fmt.Errorf("canary.ports entry %q: want \"STABLE_PORT:CANARY_PORT\", two different port numbers", e)
		}
		out[uint32(f)] = uint32(t)
	}
	return out, nil
}

// parseSteps reads --steps "10,25,50".
func parseSteps(s string) ([]float64, error) {
	var steps []float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSuffix(strings.TrimSpace(part), "%")
		v, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return nil, fmt.Errorf("--steps %q: want percentages such as 10,25,50", s)
		}
		steps = append(steps, v)
	}
	return steps, nil
}

// secret returns the value of env if set, else the trimmed content of file if named, else "".
// Errors name the variable or file, never the value.
func secret(env, file, what string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	raw, err := readSmall(file, maxSecretSize, "a secret")
	if err != nil {
		return "", fmt.Errorf("%s: reading %s: %w: set %s or fix the file name", what, file, err, env)
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty: put the secret in it, or set %s", what, file, env)
	}
	return v, nil
}

// maxSecretSize is the largest secret file read: a password or a token is a line.
const maxSecretSize = 64 << 10

// readSmall reads the file at path, which should hold what; one larger than limit is refused after
// reading no more than that, so that a file named by mistake (a log, /dev/zero) is said rather than
// read for ever.
func readSmall(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("it is larger than %d bytes, too large for %s", limit, what)
	}
	return raw, nil
}
