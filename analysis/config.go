package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// The query languages a Querier speaks.
const (
	// LanguageInfluxQL asks InfluxDB's v1 /query API: InfluxDB 1.x, the v1-compatible endpoint of 2.x,
	// and InfluxDB 3, which has no Flux. It is the default: it was the faster of the two in
	// BenchmarkMetrics (see README).
	LanguageInfluxQL = "influxql"
	// LanguageFlux asks the v2 /api/v2/query API: InfluxDB 2.x, or 1.8 with flux-enabled = true.
	LanguageFlux = "flux"
)

// Config says where the request metrics are and which servers form each group. The points are those
// HAProxy logs per request: measurement Measurement, tags backend and server, float fields status,
// tr, tt and ta.
type Config struct {
	// Language is LanguageInfluxQL (the default) or LanguageFlux.
	Language string
	// URL is InfluxDB's base URL, e.g. http://127.0.0.1:8086. It must not carry credentials.
	URL string
	// Token authenticates: an API token for InfluxDB 2 and 3, "user:password" or "" (no auth) for 1.x.
	// It never appears in errors.
	Token string
	// Org is the InfluxDB 2 organization (Flux only); empty for 1.8.
	Org string
	// Bucket holds the points: "database/retention-policy" for 1.x (e.g. "fridaymorning/autogen"), a
	// bucket for Flux on 2.x, a database (with an optional "/retention-policy") for InfluxQL on 2.x and 3.
	Bucket string
	// Measurement is the points' measurement (default "haproxy_request").
	Measurement string
	// Backend is the value of the points' backend tag.
	Backend string
	// StableServers and CanaryServers are the values of the server tag of each group; no server may
	// be in both.
	StableServers, CanaryServers []string
	// Timer is the latency field: "ta" (active time: from the request's first byte to the response's
	// last, what the client waited; the default), "tr" (the server's response time) or "tt" (the whole
	// session, which includes the client's keep-alive idle time, so it is a poor latency measure).
	// Negative values (no response) are left out of the percentiles.
	Timer string
	// ErrorStatuses are the HTTP statuses counted as errors (default 500–599); see ParseStatuses. A
	// request logged without a status (negative: no response) always counts as failed.
	ErrorStatuses []StatusRange
	// Timeout bounds each query (default 10s).
	Timeout time.Duration
}

// The defaults of Config.
const (
	DefaultMeasurement = "haproxy_request"
	DefaultTimer       = "ta"
	DefaultTimeout     = 10 * time.Second
)

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct{ Min, Max int }

// DefaultErrorStatuses are the statuses counted as errors unless configured: every 5xx.
var DefaultErrorStatuses = []StatusRange{{500, 599}}

// ParseStatuses reads a list of HTTP statuses counted as errors: a status ("429"), a class ("5xx") or
// a range ("500-504").
func ParseStatuses(specs []string) ([]StatusRange, error) {
	var out []StatusRange
	for _, s := range specs {
		s = strings.TrimSpace(s)
		var r StatusRange
		var err error
		switch {
		case len(s) == 3 && strings.HasSuffix(strings.ToLower(s), "xx") && s[0] >= '1' && s[0] <= '5':
			r.Min = int(s[0]-'0') * 100
			r.Max = r.Min + 99
		case strings.Contains(s, "-"):
			lo, hi, _ := strings.Cut(s, "-")
			r.Min, err = strconv.Atoi(strings.TrimSpace(lo))
			if err == nil {
				r.Max, err = strconv.Atoi(strings.TrimSpace(hi))
			}
		default:
			r.Min, err = strconv.Atoi(s)
			r.Max = r.Min
		}
		if err != nil || r.Min < 100 || r.Max > 599 || r.Min > r.Max {
			return nil, fmt.Errorf("analysis: error status %q: want a status (429), a class (5xx) or a range (500-504) within 100-599", s)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("analysis: no error statuses given: list at least one, e.g. 5xx")
	}
	return out, nil
}

// check validates cfg and fills in its defaults.
func (cfg *Config) check() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("analysis: influxdb.url %q is not an http(s) URL such as http://127.0.0.1:8086: fix it in fridaymorning.yaml", cfg.URL)
	}
	if u.User != nil {
		return errors.New("analysis: influxdb.url must not carry credentials: put them in FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file (user:password for InfluxDB 1.x)")
	}
	if strings.ContainsFunc(cfg.Token, unicode.IsControl) {
		return errors.New("analysis: the InfluxDB token holds a control character (a line break at the end of influxdb.token_file?): remove it")
	}
	switch cfg.Language {
	case "":
		cfg.Language = LanguageInfluxQL
	case LanguageInfluxQL, LanguageFlux:
	default:
		return fmt.Errorf("analysis: influxdb.language %q: want influxql or flux", cfg.Language)
	}
	if cfg.Bucket == "" {
		return errors.New("analysis: no bucket: set influxdb.bucket in fridaymorning.yaml (for InfluxDB 1.x: database/retention-policy, e.g. fridaymorning/autogen)")
	}
	if cfg.Measurement == "" {
		cfg.Measurement = DefaultMeasurement
	}
	if cfg.Backend == "" {
		return errors.New("analysis: no backend: set haproxy.backend in fridaymorning.yaml, the backend tag of the request points")
	}
	for what, s := range map[string]string{"influxdb.bucket": cfg.Bucket, "influxdb.measurement": cfg.Measurement, "haproxy.backend": cfg.Backend} {
		if !validName(s) {
			return fmt.Errorf("analysis: %s %q is not valid UTF-8 or holds a control character: fix it in fridaymorning.yaml", what, s)
		}
	}
	if err := checkServers(cfg.StableServers, cfg.CanaryServers); err != nil {
		return err
	}
	switch cfg.Timer {
	case "":
		cfg.Timer = DefaultTimer
	case "ta", "tr", "tt":
	default:
		return fmt.Errorf("analysis: influxdb.timer %q: want ta (active time), tr (server response time) or tt (session time)", cfg.Timer)
	}
	if len(cfg.ErrorStatuses) == 0 {
		cfg.ErrorStatuses = DefaultErrorStatuses
	}
	for _, r := range cfg.ErrorStatuses {
		if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
			return fmt.Errorf("analysis: error statuses %d-%d are no range of HTTP statuses: use one such as 500-599", r.Min, r.Max)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	return nil
}

// validName says whether s can be put into a query: valid UTF-8 and no control characters, which
// InfluxQL string literals cannot hold.
func validName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func checkServers(stable, canary []string) error {
	if len(stable) == 0 || len(canary) == 0 {
		return errors.New("analysis: the servers of both groups are needed to tell canary from stable: set haproxy.stable_servers and haproxy.canary_servers in fridaymorning.yaml")
	}
	group := map[string]string{}
	for _, g := range []struct {
		name    string
		servers []string
	}{{"stable", stable}, {"canary", canary}} {
		for _, s := range g.servers {
			if s == "" || !validName(s) {
				return fmt.Errorf("analysis: %s server name %q is empty, not valid UTF-8 or holds a control character: fix haproxy.%s_servers in fridaymorning.yaml", g.name, s, g.name)
			}
			if other, ok := group[s]; ok && other != g.name {
				return fmt.Errorf("analysis: server %q is both stable and canary: fix haproxy.stable_servers or haproxy.canary_servers in fridaymorning.yaml", s)
			}
			group[s] = g.name
		}
	}
	// A pattern of one group must not take in the other's servers: "app*" for stable would count
	// "app-canary1" as stable.
	for _, st := range stable {
		for _, ca := range canary {
			if overlap(st, ca) {
				return fmt.Errorf("analysis: stable server %q and canary server %q overlap: a pattern of one group matches servers of the other; give each group a prefix the other's names do not start with", st, ca)
			}
		}
	}
	return nil
}

// ServerPrefix reports whether a configured server is a pattern, "stable*" for the slots of a
// server-template (stable1 … stableN), and returns its prefix. The analysis queries expand patterns the
// same way haproxy/ does: every server whose name begins with the prefix.
func ServerPrefix(server string) (prefix string, ok bool) {
	return strings.CutSuffix(server, "*")
}

// prefixRegexp is a regular expression (Go's RE2, which InfluxQL and Flux both use) matching the names
// that begin with prefix. Every character but letters and digits is written as \x{…}, so that nothing a
// name holds (a slash, a dollar, a bracket) can end the regex literal or mean anything but itself.
func prefixRegexp(prefix string) string {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range prefix {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\x{%x}`, r)
		}
	}
	return b.String()
}

// overlap reports whether some server name is matched by both entries (names, or patterns ending in "*").
func overlap(a, b string) bool {
	ap, aPat := ServerPrefix(a)
	bp, bPat := ServerPrefix(b)
	switch {
	case aPat && bPat:
		return strings.HasPrefix(ap, bp) || strings.HasPrefix(bp, ap)
	case aPat:
		return strings.HasPrefix(b, ap)
	case bPat:
		return strings.HasPrefix(a, bp)
	}
	return a == b
}

// Store is a Querier that can also be pinged and closed: *Flux or *InfluxQL.
type Store interface {
	Querier
	// Ping checks that InfluxDB answers queries on the bucket with the credentials given.
	Ping(ctx context.Context) error
	// Annotate writes a release event next to the metrics, for dashboards.
	Annotate(ctx context.Context, a Annotation) error
	// Close releases the connections.
	Close()
}

// New returns the Store of cfg.Language.
func New(cfg Config) (Store, error) {
	switch cfg.Language {
	case LanguageFlux:
		return NewFlux(cfg)
	case "", LanguageInfluxQL:
		return NewInfluxQL(cfg)
	}
	return nil, fmt.Errorf("analysis: influxdb.language %q: want influxql or flux", cfg.Language)
}

// customData are the fields a custom metric's template sees, each rendered as a literal (or
// expression) of the query language.
type customData struct {
	Bucket, Database, RetentionPolicy, Measurement, Backend, Servers, Start, Stop, Group string
	// Range is the window's length as a PromQL duration (Prometheus only).
	Range string
}

// runCustom renders cm's template for each group with data and runs it with run, which returns the
// query's number and whether there was one.
func runCustom(cm CustomMetric, data func(group string, servers []string) customData, canary, stable []string,
	run func(query string) (float64, bool, error)) CustomValue {
	var out CustomValue
	tmpl, err := template.New(cm.Name).Option("missingkey=error").Parse(cm.Query)
	if err != nil {
		out.Err = fmt.Sprintf("the query template does not parse: %v", err)
		return out
	}
	for _, g := range []struct {
		name    string
		servers []string
		value   *float64
	}{{"canary", canary, &out.Canary}, {"stable", stable, &out.Stable}} {
		var b strings.Builder
		if err := tmpl.Execute(&b, data(g.name, g.servers)); err != nil {
			out.Err = fmt.Sprintf("the query template fails: %v", err)
			return out
		}
		out.Queries = append(out.Queries, b.String())
		v, ok, err := run(b.String())
		switch {
		case err != nil:
			out.Err = strings.TrimPrefix(err.Error(), "analysis: ")
			return out
		case !ok || math.IsNaN(v) || math.IsInf(v, 0):
			out.Err = fmt.Sprintf("no data: the query returned no number for %s", g.name)
			return out
		}
		*g.value = v
	}
	return out
}

// Defaults of the Thresholds fields whose zero value means something else (0% errors allowed, relative
// latency checks off, no slack), so that DefaultThresholds has to fill them in; the defaults of the
// fields where 0 means "the default" are declared beside Thresholds.
const (
	// DefaultMaxErrorRate is the highest canary error rate accepted, in percent.
	DefaultMaxErrorRate = 1.0
	// DefaultMaxErrorRateIncrease is how many percentage points the canary's error rate may exceed
	// stable's.
	DefaultMaxErrorRateIncrease = 1.0
	// DefaultMaxLatencyRatio bounds the canary's p50, p95 and p99 to 1.25 × stable's (+ LatencySlack).
	DefaultMaxLatencyRatio = 1.25
	// DefaultLatencySlack is the practical-size margin of the relative latency checks.
	DefaultLatencySlack = 10 * time.Millisecond
)

// DefaultThresholds returns the thresholds a canary is judged by when fridaymorning.yaml sets none;
// each setting the file has replaces its field.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinRequests:          DefaultMinRequests,
		Confidence:           DefaultConfidence,
		MaxErrorRate:         DefaultMaxErrorRate,
		MaxErrorRateIncrease: DefaultMaxErrorRateIncrease,
		MaxLatencyRatio:      DefaultMaxLatencyRatio,
		LatencySlack:         DefaultLatencySlack,
		MinRequestsToFail:    DefaultMinRequestsToFail,
		MaxTelemetryGap:      DefaultMaxTelemetryGap,
		MaxShareGap:          DefaultMaxShareGap,
	}
}

// Validate reports whether th can judge a canary: a confidence in (0.5, 1) (or 0, the default), and
// custom metrics that each have a name without spaces used once, a query and a limit. Its errors name
// the setting of fridaymorning.yaml to fix.
func (th Thresholds) Validate() error {
	if c := th.Confidence; c != 0 && !(c > 0.5 && c < 1) {
		return fmt.Errorf("analysis.confidence %v: want a number between 0.5 and 1, such as 0.98", c)
	}
	names := map[string]bool{}
	for i, c := range th.Custom {
		switch {
		case c.Name == "" || strings.ContainsAny(c.Name, " \t\n"):
			return fmt.Errorf("analysis.custom[%d]: a name without spaces is needed, e.g. name: bytes_out", i)
		case names[c.Name]:
			return fmt.Errorf("analysis.custom: the name %q is used twice", c.Name)
		case strings.TrimSpace(c.Query) == "":
			lang := "influxdb.language (InfluxQL unless flux)"
			if c.Source == SourcePrometheus {
				lang = "PromQL"
			}
			return fmt.Errorf("analysis.custom %s: no query: give a query template in %s returning one number", c.Name, lang)
		case c.Max == nil && c.Min == nil && c.MaxRatio == 0:
			return fmt.Errorf("analysis.custom %s: no limit: set max, min or max_ratio", c.Name)
		}
		names[c.Name] = true
	}
	return nil
}
