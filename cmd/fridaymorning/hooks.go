package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fridaymorning/fridaymorning/analysis"
	"github.com/fridaymorning/fridaymorning/gate"
	"github.com/fridaymorning/fridaymorning/notify"
	"github.com/fridaymorning/fridaymorning/release"
)

// notifyEntry is one receiver of notify:. Its URL holds a secret, so it comes from the environment
// (url_env names the variable) or a file (url_file), never from fridaymorning.yaml itself.
type notifyEntry struct {
	Name    string   `yaml:"name"`
	Kind    string   `yaml:"kind"`
	URLEnv  string   `yaml:"url_env"`
	URLFile string   `yaml:"url_file"`
	Events  []string `yaml:"events"`
	Timeout duration `yaml:"timeout"`
	Retries int      `yaml:"retries"`
}

// gateEntry is one gate of gates.<point>: an HTTP endpoint (url_env or url_file: the URL may hold a
// secret) or a command.
type gateEntry struct {
	Name      string   `yaml:"name"`
	URLEnv    string   `yaml:"url_env"`
	URLFile   string   `yaml:"url_file"`
	Command   []string `yaml:"command"`
	CanaryURL string   `yaml:"canary_url"`
	Timeout   duration `yaml:"timeout"`
	Interval  duration `yaml:"interval"`
}

// notifier builds the notify: receivers; nil when there are none. warn hears of failed deliveries.
func notifier(fc *fileConfig, warn func(string)) (*notify.Notifier, error) {
	if len(fc.Notify) == 0 {
		return nil, nil
	}
	var targets []notify.Target
	for i, e := range fc.Notify {
		where := fmt.Sprintf("notify[%d] (%s)", i, e.Name)
		u, err := secretURL(e.URLEnv, e.URLFile, where)
		if err != nil {
			return nil, err
		}
		targets = append(targets, notify.Target{Name: e.Name, Kind: e.Kind, URL: u, Events: e.Events, Timeout: e.Timeout.D(), Retries: e.Retries})
	}
	n, err := notify.New(targets, warn)
	if err != nil {
		return nil, fmt.Errorf("config: %w: fix notify: in fridaymorning.yaml", err)
	}
	return n, nil
}

// gates builds the gates: section.
func gates(fc *fileConfig) ([]release.GateConfig, error) {
	var out []release.GateConfig
	for _, p := range []struct {
		point   release.GatePoint
		entries []gateEntry
	}{
		{release.GatePreRollout, fc.Gates.PreRollout},
		{release.GateConfirmPromotion, fc.Gates.ConfirmPromotion},
		{release.GatePostRollout, fc.Gates.PostRollout},
	} {
		for i, e := range p.entries {
			where := fmt.Sprintf("gates.%s[%d]", p.point, i)
			if e.Name == "" {
				return nil, fmt.Errorf("config: %s has no name: give each gate a name", where)
			}
			where += " (" + e.Name + ")"
			hasURL := e.URLEnv != "" || e.URLFile != ""
			var g release.Gate
			switch {
			case hasURL && len(e.Command) > 0:
				return nil, fmt.Errorf("config: %s has both a URL and a command: give one", where)
			case hasURL:
				u, err := secretURL(e.URLEnv, e.URLFile, where)
				if err != nil {
					return nil, err
				}
				h, err := gate.NewHTTP(u, e.CanaryURL, nil)
				if err != nil {
					return nil, fmt.Errorf("config: %s: %w", where, err)
				}
				g = h
			case len(e.Command) > 0:
				c, err := gate.NewCommand(e.Command, e.CanaryURL)
				if err != nil {
					return nil, fmt.Errorf("config: %s: %w", where, err)
				}
				g = c
			default:
				return nil, fmt.Errorf("config: %s has neither url_env, url_file nor command: give one", where)
			}
			out = append(out, release.GateConfig{Name: e.Name, Point: p.point, Gate: g, Timeout: e.Timeout.D(), Interval: e.Interval.D()})
		}
	}
	return out, nil
}

// prometheus builds the client of prometheus:, if any custom check asks it; nil when none does.
func prometheus(fc *fileConfig) (*analysis.Prometheus, error) {
	asks := false
	for _, c := range fc.Analysis.Custom {
		asks = asks || c.Source == analysis.SourcePrometheus
	}
	if !asks {
		return nil, nil
	}
	if fc.Prometheus.URL == "" {
		return nil, fmt.Errorf("config: a custom check has source: prometheus, but prometheus.url is not set: set it in fridaymorning.yaml")
	}
	password, err := secret(envPromPassword, fc.Prometheus.PasswordFile, "prometheus password")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	token, err := secret(envPromToken, fc.Prometheus.BearerTokenFile, "prometheus bearer token")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return analysis.NewPrometheus(analysis.PrometheusConfig{URL: fc.Prometheus.URL, Username: fc.Prometheus.Username, Password: password,
		BearerToken: token, CAFile: fc.Prometheus.CAFile, Backend: fc.HAProxy.Backend,
		StableServers: fc.HAProxy.StableServers, CanaryServers: fc.HAProxy.CanaryServers, Timeout: fc.Prometheus.Timeout.D()})
}

// secretURL reads a URL that holds a secret from the environment variable env or the file file. Errors
// name where it was looked for, never what was found.
func secretURL(env, file, where string) (string, error) {
	if env == "" && file == "" {
		return "", fmt.Errorf("config: %s has no URL: set url_env (an environment variable holding it) or url_file", where)
	}
	if env != "" {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, nil
		}
		if file == "" {
			return "", fmt.Errorf("config: %s: the environment variable %s is not set: export it with the URL", where, env)
		}
	}
	v, err := secret("", file, where+" URL")
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if v == "" {
		return "", fmt.Errorf("config: %s: %s is empty: put the URL in it", where, file)
	}
	return v, nil
}

// withHooks returns emit, also handing each event to the notify: receivers (if any), and closes them with
// w. Every call to emit goes through one lock, so the front end sees the engine's events and the
// notifier's warnings one at a time.
func withHooks(w *wired, fc *fileConfig, emit func(release.Event)) (func(release.Event), error) {
	var mu sync.Mutex
	locked := func(ev release.Event) {
		mu.Lock()
		defer mu.Unlock()
		emit(ev)
	}
	n, err := notifier(fc, func(msg string) { locked(release.Event{Time: time.Now(), Kind: release.KindWarning, Message: msg}) })
	if err != nil || n == nil {
		return locked, err
	}
	w.closers = append([]func(){func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	}}, w.closers...)
	return func(ev release.Event) {
		locked(ev)
		n.Event(ev)
	}, nil
}
