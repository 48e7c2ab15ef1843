package analysis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
)

// Sentinel errors the release engine and tests branch on.
var (
	// ErrNoData: the window holds no requests of the canary group.
	ErrNoData = errors.New("no data")
	// ErrUnreachable: InfluxDB could not be asked, or the query failed.
	ErrUnreachable = errors.New("metrics store unreachable")
)

// Config says where the request metrics are and which servers form each group.
type Config struct {
	// URL is InfluxDB's base URL, e.g. http://127.0.0.1:8086.
	URL string
	// Token authenticates (InfluxDB 2) or is "user:password" (1.8); it never appears in errors.
	Token string
	// Org is the InfluxDB 2 organization; empty for 1.8.
	Org string
	// Bucket holds the points; for 1.8 "database/retention-policy".
	Bucket string
	// Measurement is the points' measurement (default "haproxy_request").
	Measurement string
	// Backend is the value of the points' backend tag.
	Backend string
	// StableServers and CanaryServers are the values of the server tag of each group.
	StableServers, CanaryServers []string
	// Timer is the latency field: "ta" (active time: from the request's first byte to the response's
	// last, what the client waited; default), "tr" (the server's response time) or "tt" (the whole
	// session, which includes the client's keep-alive idle time, so it is a poor latency measure).
	Timer string
	// ErrorStatusMin is the lowest status counted as an error (default 500).
	ErrorStatusMin float64
	// Timeout bounds each query (default 10s).
	Timeout time.Duration
}

// Flux queries request metrics with Flux, through InfluxDB's v2 API (InfluxDB 2.x, and 1.8 with
// flux-enabled). Latency percentiles use quantile's "exact_selector" method: each is a real observed
// value, the one at rank ceil(q·n) of the n sorted values (the nearest-rank percentile), with no
// approximation error.
type Flux struct {
	cfg    Config
	client influxdb2.Client
	query  api.QueryAPI
}

// NewFlux checks cfg and returns a querier. It does no I/O: Ping does.
func NewFlux(cfg Config) (*Flux, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("analysis: influxdb.url %q is not an http(s) URL such as http://127.0.0.1:8086", cfg.URL)
	}
	if u.User != nil {
		return nil, errors.New("analysis: influxdb.url must not carry credentials: use FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("analysis: no bucket: set influxdb.bucket (for InfluxDB 1.8: database/retention-policy)")
	}
	if cfg.Backend == "" || len(cfg.StableServers) == 0 || len(cfg.CanaryServers) == 0 {
		return nil, errors.New("analysis: the backend and the servers of both groups are needed to tell canary from stable")
	}
	if cfg.Measurement == "" {
		cfg.Measurement = "haproxy_request"
	}
	switch cfg.Timer {
	case "":
		cfg.Timer = "ta"
	case "tt", "tr", "ta":
	default:
		return nil, fmt.Errorf("analysis: influxdb.timer %q: want ta (active time), tr (server response time) or tt (session time)", cfg.Timer)
	}
	if cfg.ErrorStatusMin == 0 {
		cfg.ErrorStatusMin = 500
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(cfg.Timeout / time.Second))
	client := influxdb2.NewClientWithOptions(strings.TrimRight(cfg.URL, "/"), cfg.Token, opts)
	return &Flux{cfg: cfg, client: client, query: client.QueryAPI(cfg.Org)}, nil
}

// Close releases the client's connections.
func (f *Flux) Close() { f.client.Close() }

// unreachable wraps an I/O failure so that it names the URL, never the token, and says what to do.
func (f *Flux) unreachable(err error) error {
	msg := err.Error()
	if f.cfg.Token != "" {
		msg = strings.ReplaceAll(msg, f.cfg.Token, "[token]")
	}
	hint := "check influxdb.url in fridaymorning.yaml and that InfluxDB runs"
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		hint = "InfluxDB did not answer in time"
	case strings.Contains(msg, "unauthorized") || strings.Contains(msg, "401"):
		hint = "check the token (FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file)"
	case strings.Contains(msg, "not found") || strings.Contains(msg, "404"):
		hint = "check influxdb.bucket (and that Flux is enabled on InfluxDB 1.8)"
	}
	return fmt.Errorf("analysis: InfluxDB at %s: %w: %s: %s", f.cfg.URL, ErrUnreachable, msg, hint)
}

// Ping checks that InfluxDB answers and the bucket can be queried.
func (f *Flux) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	q := fmt.Sprintf("from(bucket: %s) |> range(start: -1m) |> limit(n: 1)", fluxString(f.cfg.Bucket))
	res, err := f.query.Query(ctx, q)
	if err != nil {
		return f.unreachable(err)
	}
	defer res.Close()
	for res.Next() {
	}
	if err := res.Err(); err != nil {
		return f.unreachable(err)
	}
	return nil
}

// fluxString renders s as a Flux string literal: quotes and backslashes escaped, and "${" broken up so
// that no interpolation happens. Nothing a tag value contains can change the query around it.
func fluxString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '$':
			b.WriteString(`\$`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// groupColumn is the column the query adds to tell the groups apart; unlikely to clash with a tag.
const groupColumn = "fm_group"

// metricsQuery builds the Flux query for one window: per group, the request count, the error count and
// the p50/p95/p99 of the timer field, as five named results.
func (f *Flux) metricsQuery(from, to time.Time) string {
	orServers := func(names []string) string {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = "r.server == " + fluxString(n)
		}
		return strings.Join(parts, " or ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data = from(bucket: %s)\n", fluxString(f.cfg.Bucket))
	fmt.Fprintf(&b, "  |> range(start: time(v: %s), stop: time(v: %s))\n", fluxString(from.UTC().Format(time.RFC3339Nano)), fluxString(to.UTC().Format(time.RFC3339Nano)))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s and r.backend == %s)\n", fluxString(f.cfg.Measurement), fluxString(f.cfg.Backend))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => %s or %s)\n", orServers(f.cfg.CanaryServers), orServers(f.cfg.StableServers))
	fmt.Fprintf(&b, "  |> map(fn: (r) => ({r with %s: if %s then \"canary\" else \"stable\"}))\n", groupColumn, orServers(f.cfg.CanaryServers))
	fmt.Fprintf(&b, "status = data |> filter(fn: (r) => r._field == \"status\") |> group(columns: [%q])\n", groupColumn)
	b.WriteString("status |> count() |> yield(name: \"requests\")\n")
	fmt.Fprintf(&b, "status |> filter(fn: (r) => r._value >= %s) |> count() |> yield(name: \"errors\")\n", fluxFloat(f.cfg.ErrorStatusMin))
	fmt.Fprintf(&b, "latency = data |> filter(fn: (r) => r._field == %s and r._value >= 0.0) |> group(columns: [%q])\n", fluxString(f.cfg.Timer), groupColumn)
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		fmt.Fprintf(&b, "latency |> quantile(q: %s, method: \"exact_selector\") |> yield(name: \"q%s\")\n", q, q)
	}
	return b.String()
}

func fluxFloat(v float64) string {
	s := fmt.Sprintf("%g", v)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// Metrics queries the canary's and stable's metrics for the window [from, to). The query is returned
// too, as evidence. A failed query is an error wrapping ErrUnreachable; a window with no canary requests
// is an error wrapping ErrNoData (with whatever stable had).
func (f *Flux) Metrics(ctx context.Context, from, to time.Time) (canary, stable Metrics, queries []string, err error) {
	q := f.metricsQuery(from, to)
	queries = []string{q}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	res, err := f.query.Query(ctx, q)
	if err != nil {
		return canary, stable, queries, f.unreachable(err)
	}
	defer res.Close()
	groups := map[string]*Metrics{"canary": &canary, "stable": &stable}
	for res.Next() {
		rec := res.Record()
		m := groups[fmt.Sprint(rec.ValueByKey(groupColumn))]
		if m == nil {
			continue
		}
		switch rec.Result() {
		case "requests":
			m.Requests = toInt(rec.Value())
		case "errors":
			m.Errors = toInt(rec.Value())
		case "q0.5":
			m.P50 = toDuration(rec.Value())
		case "q0.95":
			m.P95 = toDuration(rec.Value())
		case "q0.99":
			m.P99 = toDuration(rec.Value())
		}
	}
	if err := res.Err(); err != nil {
		return canary, stable, queries, f.unreachable(err)
	}
	for _, m := range groups {
		if m.Requests > 0 {
			m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
		}
	}
	if canary.Requests == 0 {
		return canary, stable, queries, fmt.Errorf("analysis: %w: no requests of the canary servers %s in backend %q between %s and %s",
			ErrNoData, strings.Join(f.cfg.CanaryServers, ", "), f.cfg.Backend, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return canary, stable, queries, nil
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
		return time.Duration(x * float64(time.Millisecond))
	case int64:
		return time.Duration(x) * time.Millisecond
	}
	return 0
}

// Querier is what an Analyzer asks for a window's metrics; *Flux is one.
type Querier interface {
	Metrics(ctx context.Context, from, to time.Time) (canary, stable Metrics, queries []string, err error)
}

// Analyzer judges windows with a querier and thresholds.
type Analyzer struct {
	q  Querier
	th Thresholds
}

// NewAnalyzer returns an Analyzer that judges what q reports against th.
func NewAnalyzer(q Querier, th Thresholds) *Analyzer {
	return &Analyzer{q: q, th: th}
}

// Analyze judges the window [from, to) in which the canary had canaryShare percent of requests.
//
// It fails closed. When the metrics cannot be had (InfluxDB unreachable, query error: ErrUnreachable) or
// the canary has no requests at all (ErrNoData), it returns an inconclusive Verdict saying why, and that
// error. Too few requests is no error: Judge makes the Verdict inconclusive. Whatever the error, the
// Verdict is never a pass.
func (a *Analyzer) Analyze(ctx context.Context, from, to time.Time, canaryShare float64) (Verdict, error) {
	canary, stable, queries, err := a.q.Metrics(ctx, from, to)
	if err != nil {
		reason := err.Error()
		if errors.Is(err, ErrNoData) {
			reason = "no canary requests in the window: nothing to judge (" + strings.TrimPrefix(reason, "analysis: ") + ")"
		}
		return Verdict{Result: ResultInconclusive, Reason: reason, Canary: canary, Stable: stable, Queries: queries}, err
	}
	v := Judge(canary, stable, a.th, canaryShare)
	v.Queries = queries
	return v, nil
}
