package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/internal/tlsca"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// SourcePrometheus is the CustomMetric.Source of a custom check written in PromQL and asked of
// Prometheus; the default source is the InfluxDB store the built-in checks use.
const SourcePrometheus = "prometheus"

// PrometheusConfig says where Prometheus is and which servers form each group, as HAProxy's built-in
// exporter labels them (proxy and server).
type PrometheusConfig struct {
	// URL is Prometheus's base URL, e.g. http://127.0.0.1:9090. It must not carry credentials.
	URL string
	// Username and Password authenticate with basic auth, or BearerToken with a bearer token; all empty
	// means no authentication. They never appear in errors.
	Username, Password, BearerToken string
	// CAFile is a PEM bundle to trust for an https URL (default: the system's roots).
	CAFile string
	// Backend is the HAProxy backend (the exporter's proxy label).
	Backend string
	// StableServers and CanaryServers are the servers of each group: names, or patterns ending in "*".
	StableServers, CanaryServers []string
	// Timeout bounds each query (default 10s).
	Timeout time.Duration
}

// Prometheus asks Prometheus the custom checks written in PromQL, through the official client.
type Prometheus struct {
	cfg PrometheusConfig
	api promv1.API
}

// NewPrometheus checks cfg and returns a client; it does no I/O.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("analysis: prometheus.url %q is no http(s) URL: set it to Prometheus's base URL, e.g. http://prometheus:9090", redactURL(cfg.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("analysis: prometheus.url %s carries credentials: give them as prometheus.username with FRIDAYMORNING_PROMETHEUS_PASSWORD (or a password file) instead", redactURL(cfg.URL))
	}
	if err := checkServers(cfg.StableServers, cfg.CanaryServers); err != nil {
		return nil, err
	}
	if cfg.Backend == "" {
		return nil, errors.New("analysis: no backend for Prometheus: set haproxy.backend in fridaymorning.yaml")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		tc, err := tlsca.Config(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("analysis: prometheus.ca_file: %w", err)
		}
		transport.TLSClientConfig = tc
	}
	var rt http.RoundTripper = transport
	if cfg.Username != "" || cfg.Password != "" || cfg.BearerToken != "" {
		rt = authTransport{next: transport, user: cfg.Username, password: cfg.Password, token: cfg.BearerToken}
	}
	client, err := promapi.NewClient(promapi.Config{Address: strings.TrimRight(cfg.URL, "/"), RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("analysis: prometheus client: %w", err)
	}
	return &Prometheus{cfg: cfg, api: promv1.NewAPI(client)}, nil
}

// authTransport adds basic or bearer authentication to every request.
type authTransport struct {
	next                  http.RoundTripper
	user, password, token string
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.token != "" {
		r.Header.Set("Authorization", "Bearer "+a.token)
	} else {
		r.SetBasicAuth(a.user, a.password)
	}
	return a.next.RoundTrip(r)
}

// Ping checks that Prometheus answers a query with the credentials given.
func (p *Prometheus) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if _, _, err := p.api.Query(ctx, "vector(1)", time.Now()); err != nil {
		return p.unreachable(err)
	}
	return nil
}

func (p *Prometheus) unreachable(err error) error {
	msg := redact(p.cfg.BearerToken, redact(p.cfg.Password, err.Error()))
	return fmt.Errorf("analysis: %w: Prometheus at %s: %s: check prometheus.url and its credentials", ErrUnreachable, redactURL(p.cfg.URL), msg)
}

// Custom asks Prometheus cm's PromQL template for each group, evaluated at the window's end. The template
// sees {{.Backend}} (a PromQL string literal of the backend), {{.Servers}} (a label matcher of the group's
// servers: server=~"…"), {{.Range}} (the window's length as a PromQL duration, for increase() or
// rate()) and {{.Group}}; each is rendered so that no name can change the query. A query that returns no
// sample, or several, or NaN (say 0/0 with no requests) has no value: the check is inconclusive.
func (p *Prometheus) Custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue {
	rng := promDuration(to.Sub(from))
	return runCustom(cm, func(group string, servers []string) customData {
		return customData{Backend: strconv.Quote(p.cfg.Backend), Servers: "server=~" + strconv.Quote(promServers(servers)),
			Range: rng, Group: strconv.Quote(group)}
	}, p.cfg.CanaryServers, p.cfg.StableServers, func(query string) (float64, bool, error) {
		qctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		val, _, err := p.api.Query(qctx, query, to)
		if err != nil {
			return 0, false, p.unreachable(err)
		}
		switch v := val.(type) {
		case model.Vector:
			if len(v) != 1 {
				return 0, false, nil
			}
			f := float64(v[0].Value)
			return f, !math.IsNaN(f), nil
		case *model.Scalar:
			f := float64(v.Value)
			return f, !math.IsNaN(f), nil
		}
		return 0, false, fmt.Errorf("analysis: custom metric %s: the PromQL query returns a %s, want one number (an instant vector of one sample, or a scalar)", cm.Name, val.Type())
	})
}

// promServers is an RE2 regex (fully anchored by PromQL) matching the servers: names literally,
// patterns "x*" as every name that begins with x.
func promServers(servers []string) string {
	alt := make([]string, len(servers))
	for i, s := range servers {
		if prefix, ok := ServerPrefix(s); ok {
			alt[i] = regexp.QuoteMeta(prefix) + ".*"
		} else {
			alt[i] = regexp.QuoteMeta(s)
		}
	}
	return strings.Join(alt, "|")
}

// promDuration renders d as a PromQL duration in whole milliseconds (at least 1ms): "61500ms".
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// redactURL drops any userinfo from u for messages.
func redactURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	parsed.User = nil
	return parsed.String()
}
