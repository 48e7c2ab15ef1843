package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// Config says where the request metrics are and which servers form each group. The points are those
// HAProxy logs per request: measurement Measurement, tags backend and server, float fields status,
// tr, tt and ta.
type Config struct {
	// URL is InfluxDB's base URL, e.g. http://127.0.0.1:8086. It must not carry credentials.
	URL string
	// Token authenticates: an API token for InfluxDB 2, "user:password" or "" (no auth) for 1.8. It
	// never appears in errors.
	Token string
	// Org is the InfluxDB 2 organization; empty for 1.8.
	Org string
	// Bucket holds the points; for 1.8 "database/retention-policy", e.g. "fridaymorning/autogen".
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
	// ErrorStatusMin is the lowest HTTP status counted as an error (default 500).
	ErrorStatusMin float64
	// Timeout bounds each query (default 10s).
	Timeout time.Duration
}

// The defaults of Config.
const (
	DefaultMeasurement    = "haproxy_request"
	DefaultTimer          = "ta"
	DefaultErrorStatusMin = 500
	DefaultTimeout        = 10 * time.Second
)

// Flux queries request metrics with Flux through InfluxDB's v2 query API: InfluxDB 2.x, or 1.8 with
// flux-enabled = true.
//
// Latency percentiles use quantile's "exact_selector" method (1.8's Flux has no default method): each
// is an observed value, the one at rank ceil(q·n) of the group's n sorted latencies, which is the
// nearest-rank percentile, exact, with no interpolation or estimation error. HAProxy logs latencies in
// whole milliseconds, so percentiles are whole milliseconds too. Exactness costs a sort of each
// group's latencies per percentile: on InfluxDB 1.8 with two cores, a window of 300,000 requests takes
// about 1.7s to query (exact_mean would take 0.7s; Config.Timeout bounds it).
type Flux struct {
	cfg    Config
	client influxdb2.Client
	query  api.QueryAPI
}

var _ Querier = (*Flux)(nil)

// NewFlux checks cfg, fills in its defaults and returns a querier. It does no I/O: Ping does.
func NewFlux(cfg Config) (*Flux, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("analysis: influxdb.url %q is not an http(s) URL such as http://127.0.0.1:8086: fix it in fridaymorning.yaml", cfg.URL)
	}
	if u.User != nil {
		return nil, errors.New("analysis: influxdb.url must not carry credentials: put them in FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file (user:password for InfluxDB 1.8)")
	}
	if strings.ContainsFunc(cfg.Token, unicode.IsControl) {
		return nil, errors.New("analysis: the InfluxDB token holds a control character (a line break at the end of influxdb.token_file?): remove it")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("analysis: no bucket: set influxdb.bucket in fridaymorning.yaml (for InfluxDB 1.8: database/retention-policy, e.g. fridaymorning/autogen)")
	}
	if cfg.Measurement == "" {
		cfg.Measurement = DefaultMeasurement
	}
	if cfg.Backend == "" {
		return nil, errors.New("analysis: no backend: set haproxy.backend in fridaymorning.yaml, the backend tag of the request points")
	}
	for what, s := range map[string]string{"influxdb.bucket": cfg.Bucket, "influxdb.measurement": cfg.Measurement, "haproxy.backend": cfg.Backend} {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("analysis: %s %q is not valid UTF-8: fix it in fridaymorning.yaml", what, s)
		}
	}
	if err := checkServers(cfg.StableServers, cfg.CanaryServers); err != nil {
		return nil, err
	}
	switch cfg.Timer {
	case "":
		cfg.Timer = DefaultTimer
	case "ta", "tr", "tt":
	default:
		return nil, fmt.Errorf("analysis: influxdb.timer %q: want ta (active time), tr (server response time) or tt (session time)", cfg.Timer)
	}
	if cfg.ErrorStatusMin == 0 {
		cfg.ErrorStatusMin = DefaultErrorStatusMin
	}
	if !(cfg.ErrorStatusMin > 0 && cfg.ErrorStatusMin < 1000) {
		return nil, fmt.Errorf("analysis: error status minimum %v is no HTTP status: use one such as 500", cfg.ErrorStatusMin)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	// The context of each query bounds it; the client's own timeout is a backstop a second later, so
	// that the error a slow InfluxDB gives is the context's.
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(math.Ceil(cfg.Timeout.Seconds())) + 1)
	opts.HTTPOptions().SetApplicationName("fridaymorning")
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Flux{cfg: cfg, client: client, query: client.QueryAPI(cfg.Org)}, nil
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
			if s == "" || !utf8.ValidString(s) {
				return fmt.Errorf("analysis: %s server name %q is empty or not valid UTF-8: fix haproxy.%s_servers in fridaymorning.yaml", g.name, s, g.name)
			}
			if other, ok := group[s]; ok && other != g.name {
				return fmt.Errorf("analysis: server %q is both stable and canary: fix haproxy.stable_servers or haproxy.canary_servers in fridaymorning.yaml", s)
			}
			group[s] = g.name
		}
	}
	return nil
}

// Close releases the client's connections.
func (f *Flux) Close() { f.client.Close() }

// Ping checks that InfluxDB answers Flux queries on the bucket, with the credentials given. It finds
// no fault with a bucket that holds no points yet.
func (f *Flux) Ping(ctx context.Context) error {
	q := fmt.Sprintf("from(bucket: %s)\n  |> range(start: -1m)\n  |> filter(fn: (r) => r._measurement == %s)\n  |> limit(n: 1)\n",
		fluxString(f.cfg.Bucket), fluxString(f.cfg.Measurement))
	qctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	res, err := f.query.Query(qctx, q)
	if err != nil {
		return f.queryError(ctx, err)
	}
	defer res.Close()
	for res.Next() {
	}
	if err := res.Err(); err != nil {
		return f.queryError(ctx, err)
	}
	return nil
}

// Metrics queries the canary's and stable's metrics for the window [from, to), in one query. The query
// is returned too, as evidence, whatever happens.
//
// The error wraps ErrUnreachable when InfluxDB could not be asked or the query failed, the caller's
// context error when ctx ended first, and ErrNoData when the window is empty, when the canary servers
// logged no requests in it, or when a group's requests carry no latency at all (the metrics are
// returned as far as they are known).
func (f *Flux) Metrics(ctx context.Context, from, to time.Time) (canary, stable Metrics, queries []string, err error) {
	// The query stops 1ns before to (see metricsQuery), and Flux refuses a range that ends where it starts.
	if !to.Add(-time.Nanosecond).After(from) {
		return canary, stable, nil, fmt.Errorf("analysis: %w: the window from %s to %s is empty", ErrNoData, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	q := f.metricsQuery(from, to)
	queries = []string{q}
	qctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	res, err := f.query.Query(qctx, q)
	if err != nil {
		return canary, stable, queries, f.queryError(ctx, err)
	}
	defer res.Close()
	groups := map[string]*Metrics{"canary": &canary, "stable": &stable}
	timed := map[string]int64{}
	for res.Next() {
		rec := res.Record()
		group, metric, _ := strings.Cut(rec.Result(), "_")
		m := groups[group]
		if m == nil {
			continue
		}
		switch metric {
		case "requests":
			m.Requests = toInt(rec.Value())
		case "errors":
			m.Errors = toInt(rec.Value())
		case "timed":
			timed[group] = toInt(rec.Value())
		case "p50":
			m.P50 = toDuration(rec.Value())
		case "p95":
			m.P95 = toDuration(rec.Value())
		case "p99":
			m.P99 = toDuration(rec.Value())
		}
	}
	if err := res.Err(); err != nil {
		return Metrics{}, Metrics{}, queries, f.queryError(ctx, err)
	}
	for _, m := range groups {
		if m.Requests > 0 {
			m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
		}
	}
	window := fmt.Sprintf("between %s and %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	if canary.Requests == 0 {
		return canary, stable, queries, fmt.Errorf("analysis: %w: no requests of the canary servers %s in backend %q %s: check that HAProxy's request log reaches InfluxDB and that haproxy.canary_servers names the canary's servers",
			ErrNoData, strings.Join(f.cfg.CanaryServers, ", "), f.cfg.Backend, window)
	}
	for _, g := range []string{"canary", "stable"} {
		// Requests without any latency (every one aborted before a response, with the tr timer) would
		// show percentiles of 0 ms: no latency is not a fast one.
		if n := groups[g].Requests; n > 0 && timed[g] == 0 {
			return canary, stable, queries, fmt.Errorf("analysis: %w: none of the %s's %d requests %s has a %s (all negative: no response), so its latency cannot be judged",
				ErrNoData, g, n, window, f.cfg.Timer)
		}
	}
	return canary, stable, queries, nil
}

// metricsQuery builds the Flux query of one window. Per group it reads the status and the timer field
// of the group's servers, each with every filter pushed down to storage (literals only, so InfluxDB
// 1.8 can push them), and yields the request count, the error count, the count of requests with a
// latency and the p50/p95/p99 of the latency, as results named "<group>_<metric>".
func (f *Flux) metricsQuery(from, to time.Time) string {
	// InfluxDB 1.8 returns points at exactly stop, though Flux documents stop as exclusive
	// (influxdata/influxdb#19966), so a request logged at the very end of one step's window would count
	// in the next one too. Stopping 1ns early makes the window [from, to) on 1.8; on 2.x, where stop is
	// exclusive, it leaves out only points at exactly to-1ns, which millisecond timestamps never have
	// when to is on a whole millisecond.
	rng := fmt.Sprintf("range(start: time(v: %s), stop: time(v: %s))",
		fluxString(from.UTC().Format(time.RFC3339Nano)), fluxString(to.Add(-time.Nanosecond).UTC().Format(time.RFC3339Nano)))
	read := func(servers []string, field string) string {
		or := make([]string, len(servers))
		for i, s := range servers {
			or[i] = "r.server == " + fluxString(s)
		}
		return fmt.Sprintf("from(bucket: %s)\n  |> %s\n  |> filter(fn: (r) => r._measurement == %s and r.backend == %s and r._field == %s)\n  |> filter(fn: (r) => %s)",
			fluxString(f.cfg.Bucket), rng, fluxString(f.cfg.Measurement), fluxString(f.cfg.Backend), fluxString(field), strings.Join(or, " or "))
	}
	var b strings.Builder
	for _, g := range []struct {
		name    string
		servers []string
	}{{"canary", f.cfg.CanaryServers}, {"stable", f.cfg.StableServers}} {
		n := g.name
		fmt.Fprintf(&b, "%s_status = %s\n  |> group()\n", n, read(g.servers, "status"))
		fmt.Fprintf(&b, "%s_status |> count() |> yield(name: \"%s_requests\")\n", n, n)
		fmt.Fprintf(&b, "%s_status |> filter(fn: (r) => r._value >= %s) |> count() |> yield(name: \"%s_errors\")\n", n, fluxFloat(f.cfg.ErrorStatusMin), n)
		fmt.Fprintf(&b, "%s_latency = %s\n  |> filter(fn: (r) => r._value >= 0.0)\n  |> group()\n", n, read(g.servers, f.cfg.Timer))
		fmt.Fprintf(&b, "%s_latency |> count() |> yield(name: \"%s_timed\")\n", n, n)
		for _, p := range []struct{ q, name string }{{"0.5", "p50"}, {"0.95", "p95"}, {"0.99", "p99"}} {
			fmt.Fprintf(&b, "%s_latency |> quantile(q: %s, method: \"exact_selector\") |> yield(name: \"%s_%s\")\n", n, p.q, n, p.name)
		}
	}
	return b.String()
}

// fluxString renders s as a Flux string literal whose value is s: nothing a name contains can end the
// literal, interpolate or change the query around it. Quotes and backslashes are escaped, line breaks
// and tabs written as escapes, and every "$" as the byte escape \x24, so that no "$" is left to start
// a "${…}" interpolation. (Flux's own "\${" escape is not enough: the scanner of Flux 0.65, in
// InfluxDB 1.8, reads "$" followed by any other character, a backslash included, as one unit, so a
// name like "$${x}" would escape the escape.)
func fluxString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '$':
			b.WriteString(`\x24`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fluxFloat renders v as a Flux float literal (a bare integer would be an int, which Flux does not
// compare with a float field).
func fluxFloat(v float64) string {
	s := fmt.Sprintf("%g", v)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func toDuration(v any) time.Duration {
	switch x := v.(type) {
	case float64:
		return time.Duration(math.Round(x * float64(time.Millisecond)))
	case int64:
		return time.Duration(x) * time.Millisecond
	}
	return 0
}

// queryError is a failed query: its message names the URL and says what to do, never the token; it
// wraps ErrUnreachable and the client's error.
type queryError struct {
	msg  string
	errs []error
}

func (e *queryError) Error() string   { return e.msg }
func (e *queryError) Unwrap() []error { return e.errs }

// queryError explains err, the failure of a query made under ctx.
func (f *Flux) queryError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The caller gave up (a release aborted, the program stopping): not InfluxDB's fault.
		return fmt.Errorf("analysis: query to InfluxDB at %s stopped: %w", f.cfg.URL, ctx.Err())
	}
	what, hint := f.describe(err)
	msg := fmt.Sprintf("analysis: InfluxDB at %s: %s: %s", f.cfg.URL, what, hint)
	return &queryError{msg: f.redact(msg), errs: []error{ErrUnreachable, err}}
}

// describe says what went wrong with a query and what to do about it.
func (f *Flux) describe(err error) (what, hint string) {
	var (
		he *influxhttp.Error
		ne net.Error
		de *net.DNSError
		oe *net.OpError
	)
	msg := oneLine(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", f.cfg.Timeout), "check that InfluxDB runs and is not overloaded, or raise influxdb.timeout in fridaymorning.yaml"
	case errors.As(err, &de):
		return fmt.Sprintf("cannot resolve %s", de.Name), "check influxdb.url in fridaymorning.yaml"
	case errors.As(err, &oe) && oe.Op == "dial":
		return oneLine(oe.Err.Error()), "check influxdb.url in fridaymorning.yaml and that InfluxDB runs"
	case errors.As(err, &he) && he.StatusCode == 401:
		return "credentials refused (" + httpStatus(he) + ")", "check FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file (for InfluxDB 1.8: user:password)"
	case errors.As(err, &he) && he.StatusCode == 403:
		return "forbidden (" + httpStatus(he) + ")", "on InfluxDB 1.8 set flux-enabled = true in the [http] section; else give the credentials read access to the bucket"
	case errors.As(err, &he) && he.StatusCode == 404:
		return "no Flux query API at /api/v2/query (" + httpStatus(he) + ")", "influxdb.url in fridaymorning.yaml must be InfluxDB's base URL, such as http://127.0.0.1:8086"
	case strings.Contains(msg, "no database") || strings.Contains(msg, "retention policy") || strings.Contains(msg, "bucket") && strings.Contains(msg, "not found"):
		return fmt.Sprintf("bucket %q not found (%s)", f.cfg.Bucket, msg), "check influxdb.bucket in fridaymorning.yaml (for InfluxDB 1.8: database/retention-policy, e.g. fridaymorning/autogen)"
	}
	return "query failed: " + msg, "check the influxdb settings in fridaymorning.yaml; the query is in the verdict's evidence"
}

// httpStatus renders an HTTP error answer: its status and what the server said, if anything (the
// client does not read InfluxDB 1.8's {"error": …} bodies).
func httpStatus(he *influxhttp.Error) string {
	s := fmt.Sprintf("HTTP %d", he.StatusCode)
	if m := oneLine(he.Message); m != "" {
		s += ": " + m
	}
	return s
}

// redact removes the token, and the password of a user:password token, from msg.
func (f *Flux) redact(msg string) string {
	secrets := []string{f.cfg.Token}
	if _, pw, ok := strings.Cut(f.cfg.Token, ":"); ok {
		secrets = append(secrets, pw)
	}
	for _, s := range secrets {
		// Shorter strings would redact innocent words; such a secret is no secret anyway.
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// oneLine folds a server's multi-line error into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
