package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	fluxquery "github.com/influxdata/influxdb-client-go/v2/api/query"
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
	cfg.Language = LanguageFlux
	if err := cfg.check(); err != nil {
		return nil, err
	}
	// The context of each query bounds it; the client's own timeout is a backstop a second later, so
	// that the error a slow InfluxDB gives is the context's.
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(math.Ceil(cfg.Timeout.Seconds())) + 1)
	opts.HTTPOptions().SetApplicationName("fridaymorning")
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Flux{cfg: cfg, client: client, query: client.QueryAPI(cfg.Org)}, nil
}

// Close releases the client's connections.
func (f *Flux) Close() { f.client.Close() }

// Ping checks that InfluxDB answers Flux queries on the bucket, with the credentials given. It finds
// no fault with a bucket that holds no points yet.
func (f *Flux) Ping(ctx context.Context) error {
	q := fmt.Sprintf("from(bucket: %s)\n  |> range(start: -1m)\n  |> filter(fn: (r) => r._measurement == %s)\n  |> limit(n: 1)\n",
		fluxString(f.cfg.Bucket), fluxString(f.cfg.Measurement))
	return f.run(ctx, q, func(*fluxquery.FluxRecord) bool { return true })
}

// run sends q, bounded by the configured timeout, and hands each record to each until it returns false.
// Its error is queryError's.
func (f *Flux) run(ctx context.Context, q string, each func(rec *fluxquery.FluxRecord) bool) error {
	qctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	res, err := f.query.Query(qctx, q)
	if err != nil {
		return f.queryError(ctx, err)
	}
	defer res.Close()
	for res.Next() {
		rec := res.Record()
		if rec == nil {
			// The client reports a row it could not place (a line starting with "#" that is no
			// annotation it knows) as a row without a record.
			return f.queryError(ctx, errors.New("unreadable answer: a row that is neither data nor an annotation"))
		}
		if !each(rec) {
			return nil
		}
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
func (f *Flux) Metrics(ctx context.Context, from, to time.Time) (canary, stable verdict.Metrics, queries []string, err error) {
	// The query stops 1ns before to (see metricsQuery), and Flux refuses a range that ends where it starts.
	if !to.Add(-time.Nanosecond).After(from) {
		return canary, stable, nil, emptyWindow(from, to)
	}
	q := f.metricsQuery(from, to)
	queries = []string{q}
	groups := map[string]*verdict.Metrics{"canary": &canary, "stable": &stable}
	err = f.run(ctx, q, func(rec *fluxquery.FluxRecord) bool {
		group, metric, _ := strings.Cut(rec.Result(), "_")
		m := groups[group]
		if m == nil {
			return true
		}
		if setCount(metric, rec.Value(), &m.Requests, &m.Errors, &m.Errors5xx, &m.Timed) {
			return true
		}
		switch metric {
		case "p50":
			m.P50 = toDuration(rec.Value())
		case "p90":
			m.P90 = toDuration(rec.Value())
		case "p95":
			m.P95 = toDuration(rec.Value())
		case "p99":
			m.P99 = toDuration(rec.Value())
		}
		return true
	})
	if err == nil {
		err = countsError(f.cfg, &canary, &stable)
	}
	if err != nil {
		return verdict.Metrics{}, verdict.Metrics{}, queries, err
	}
	canary.Latencies, stable.Latencies, err = f.sample(ctx, from, to, SampleSize, canary.Timed, stable.Timed, &queries)
	if err != nil {
		return verdict.Metrics{}, verdict.Metrics{}, queries, err
	}
	return canary, stable, queries, finish(f.cfg, from, to, &canary, &stable)
}

// countsError says what is wrong with counts no InfluxDB could have counted: negative ones, or more
// errors than requests. Judging them could not end well (a negative count would even size a slice).
func countsError(cfg Config, canary, stable *verdict.Metrics) error {
	for _, g := range []struct {
		name string
		m    *verdict.Metrics
	}{{"canary", canary}, {"stable", stable}} {
		m := g.m
		if m.Requests < 0 || m.Errors < 0 || m.Errors5xx < 0 || m.Timed < 0 || m.Errors > m.Requests || m.Errors5xx > m.Requests {
			return fmt.Errorf("analysis: InfluxDB at %s: %w: it answered counts that cannot be (%s: %d requests, %d errors, %d 5xx, %d timed): check that influxdb.url is InfluxDB and influxdb.measurement holds HAProxy's request log",
				cfg.URL, ErrUnreachable, g.name, m.Requests, m.Errors, m.Errors5xx, m.Timed)
		}
	}
	return nil
}

// finish computes the error rates and says whether the window holds something to judge: the canary
// has requests, and each group with requests has latencies.
func finish(cfg Config, from, to time.Time, canary, stable *verdict.Metrics) error {
	for _, m := range []*verdict.Metrics{canary, stable} {
		if m.Requests > 0 {
			m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
		}
	}
	return nothingToJudge(cfg, from, to, [2]int64{canary.Requests, canary.Timed}, [2]int64{stable.Requests, stable.Timed})
}

// nothingToJudge says, wrapping ErrNoData, why counts (requests, timed requests) of the canary and
// stable over [from, to) are nothing to judge: no canary requests, or a group's requests without any
// latency; nil when they are something.
func nothingToJudge(cfg Config, from, to time.Time, canary, stable [2]int64) error {
	window := fmt.Sprintf("between %s and %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	if canary[0] == 0 {
		return fmt.Errorf("analysis: %w: no requests of the canary servers %s in backend %q %s: check that HAProxy's request log reaches InfluxDB and that haproxy.canary_servers names the canary's servers",
			ErrNoData, strings.Join(cfg.CanaryServers, ", "), cfg.Backend, window)
	}
	for _, g := range []struct {
		name string
		n    [2]int64
	}{{"canary", canary}, {"stable", stable}} {
		// Requests without any latency (every one aborted before a response, with the tr timer) would
		// show percentiles of 0 ms: no latency is not a fast one.
		if g.n[0] > 0 && g.n[1] == 0 {
			return fmt.Errorf("analysis: %w: none of the %s's %d requests %s has a %s (all negative: no response), so its latency cannot be judged",
				ErrNoData, g.name, g.n[0], window, cfg.Timer)
		}
	}
	return nil
}

// emptyWindow is the error of a window that ends where (or before) it starts.
func emptyWindow(from, to time.Time) error {
	return fmt.Errorf("analysis: %w: the window from %s to %s is empty", ErrNoData, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
}

// sample reads a sample of each group's latencies, given how many each has (timed): every one when a
// group has at most size, else every k-th in time order (a systematic sample, spread evenly over the
// window).
func (f *Flux) sample(ctx context.Context, from, to time.Time, size int64, canaryTimed, stableTimed int64, queries *[]string) (canary, stable []float64, err error) {
	if canaryTimed == 0 && stableTimed == 0 {
		return nil, nil, nil
	}
	var b strings.Builder
	for _, g := range []struct {
		name    string
		servers []string
		timed   int64
	}{{"canary", f.cfg.CanaryServers, canaryTimed}, {"stable", f.cfg.StableServers, stableTimed}} {
		if g.timed == 0 {
			continue
		}
		k := (g.timed + size - 1) / size
		fmt.Fprintf(&b, "%s\n  |> filter(fn: (r) => r._value >= 0.0)\n  |> group()\n  |> sample(n: %d, pos: 0)\n  |> keep(columns: [\"_value\"])\n  |> yield(name: \"%s\")\n",
			f.read(from, to, g.servers, f.cfg.Timer), k, g.name)
	}
	q := b.String()
	*queries = append(*queries, q)
	canary = make([]float64, 0, min(canaryTimed, size))
	stable = make([]float64, 0, min(stableTimed, size))
	err = f.run(ctx, q, func(rec *fluxquery.FluxRecord) bool {
		if v, ok := rec.Value().(float64); ok {
			switch rec.Result() {
			case "canary":
				canary = append(canary, v)
			case "stable":
				stable = append(stable, v)
			}
		}
		return true
	})
	return canary, stable, err
}

// Totals counts each group's requests, failed requests, 5xx answers and timed requests over [from, to),
// in one query; see Interval for its error.
func (f *Flux) Totals(ctx context.Context, from, to time.Time) (canary, stable Interval, queries []string, err error) {
	return f.interval(ctx, from, to, Cuts{}, false)
}

// Interval reads what each group served over [from, to) for one look of a sequential analysis: the
// counts and the timed requests slower than each of the group's cuts in one query, then a systematic
// sample of at most LookSample latencies. It reads only the interval, so its cost does not grow with the
// window. Its error is run's, or, with the counts, nothingToJudge's for the interval (wrapping
// ErrNoData).
func (f *Flux) Interval(ctx context.Context, from, to time.Time, cuts Cuts) (canary, stable Interval, queries []string, err error) {
	return f.interval(ctx, from, to, cuts, true)
}

// interval is Interval, with the sample or without.
func (f *Flux) interval(ctx context.Context, from, to time.Time, cuts Cuts, sample bool) (canary, stable Interval, queries []string, err error) {
	if !to.Add(-time.Nanosecond).After(from) {
		return canary, stable, nil, emptyWindow(from, to)
	}
	groups := map[string]*Interval{"canary": &canary, "stable": &stable}
	var b strings.Builder
	for _, g := range []struct {
		name    string
		servers []string
		cuts    []Cut
	}{{"canary", f.cfg.CanaryServers, cuts.Canary}, {"stable", f.cfg.StableServers, cuts.Stable}} {
		n := g.name
		f.countsQuery(&b, n, from, to, g.servers)
		groups[n].Above = make([]int64, len(g.cuts))
		for i, c := range g.cuts {
			fmt.Fprintf(&b, "%s_latency |> filter(fn: (r) => r._value > %s) |> count() |> yield(name: \"%s_above%d\")\n", n, fluxFloat(c.Ms), n, i)
		}
	}
	q := b.String()
	queries = []string{q}
	err = f.run(ctx, q, func(rec *fluxquery.FluxRecord) bool {
		group, metric, _ := strings.Cut(rec.Result(), "_")
		iv := groups[group]
		if iv == nil {
			return true
		}
		if setCount(metric, rec.Value(), &iv.Requests, &iv.Errors, &iv.Errors5xx, &iv.Timed) {
			return true
		}
		var i int
		if _, err := fmt.Sscanf(metric, "above%d", &i); err == nil && i < len(iv.Above) {
			iv.Above[i] = toInt(rec.Value())
		}
		return true
	})
	if err != nil {
		return Interval{}, Interval{}, queries, err
	}
	if sample {
		canary.Latencies, stable.Latencies, err = f.sample(ctx, from, to, LookSample, canary.Timed, stable.Timed, &queries)
		if err != nil {
			return Interval{}, Interval{}, queries, err
		}
	}
	return canary, stable, queries, nothingToJudge(f.cfg, from, to, [2]int64{canary.Requests, canary.Timed}, [2]int64{stable.Requests, stable.Timed})
}

// metricsQuery builds the Flux query of one window. Per group it reads the status and the timer field
// of the group's servers, each with every filter pushed down to storage (literals only, so InfluxDB
// 1.8 can push them), and yields the request count, the error count, the count of requests with a
// latency and the p50/p95/p99 of the latency, as results named "<group>_<metric>".
func (f *Flux) metricsQuery(from, to time.Time) string {
	var b strings.Builder
	for _, g := range []struct {
		name    string
		servers []string
	}{{"canary", f.cfg.CanaryServers}, {"stable", f.cfg.StableServers}} {
		n := g.name
		f.countsQuery(&b, n, from, to, g.servers)
		for _, p := range []struct{ q, name string }{{"0.5", "p50"}, {"0.9", "p90"}, {"0.95", "p95"}, {"0.99", "p99"}} {
			fmt.Fprintf(&b, "%s_latency |> quantile(q: %s, method: \"exact_selector\") |> yield(name: \"%s_%s\")\n", n, p.q, n, p.name)
		}
	}
	return b.String()
}

// setCount stores the value of one of countsQuery's yields (metric is its name after the group's) in
// its counter, and reports whether metric was one of them.
func setCount(metric string, v any, requests, errors, errors5xx, timed *int64) bool {
	var c *int64
	switch metric {
	case "requests":
		c = requests
	case "errors":
		c = errors
	case "errors5xx":
		c = errors5xx
	case "timed":
		c = timed
	default:
		return false
	}
	*c = toInt(v)
	return true
}

// countsQuery writes the Flux that yields a group's request, error, 5xx and timed counts over [from,
// to) as "<group>_requests" and so on, and leaves its latencies in "<group>_latency".
func (f *Flux) countsQuery(b *strings.Builder, n string, from, to time.Time, servers []string) {
	fmt.Fprintf(b, "%s_status = %s\n  |> group()\n", n, f.read(from, to, servers, "status"))
	fmt.Fprintf(b, "%s_status |> count() |> yield(name: \"%s_requests\")\n", n, n)
	fmt.Fprintf(b, "%s_status |> filter(fn: (r) => %s) |> count() |> yield(name: \"%s_errors\")\n", n, fluxStatuses(f.cfg.ErrorStatuses)+" or r._value < 0.0", n)
	fmt.Fprintf(b, "%s_status |> filter(fn: (r) => %s) |> count() |> yield(name: \"%s_errors5xx\")\n", n, fluxStatuses([]StatusRange{{500, 599}}), n)
	fmt.Fprintf(b, "%s_latency = %s\n  |> filter(fn: (r) => r._value >= 0.0)\n  |> group()\n", n, f.read(from, to, servers, f.cfg.Timer))
	fmt.Fprintf(b, "%s_latency |> count() |> yield(name: \"%s_timed\")\n", n, n)
}

// read is the Flux that reads one field of a group's servers over [from, to), with every filter
// pushed down to storage (literals only, so that InfluxDB 1.8 can push them).
//
// InfluxDB 1.8 returns points at exactly stop, though Flux documents stop as exclusive
// (influxdata/influxdb#19966), so a request logged at the very end of one step's window would count in
// the next one too. Stopping 1ns early makes the window [from, to) on 1.8; on 2.x, where stop is
// exclusive, it leaves out only points at exactly to-1ns, which millisecond timestamps never have when
// to is on a whole millisecond.
func (f *Flux) read(from, to time.Time, servers []string, field string) string {
	rng := fmt.Sprintf("range(start: %s, stop: %s)", fluxTime(from), fluxTime(to.Add(-time.Nanosecond)))
	return fmt.Sprintf("from(bucket: %s)\n  |> %s\n  |> filter(fn: (r) => r._measurement == %s and r.backend == %s and r._field == %s)\n  |> filter(fn: (r) => %s)",
		fluxString(f.cfg.Bucket), rng, fluxString(f.cfg.Measurement), fluxString(f.cfg.Backend), fluxString(field), fluxServers(servers))
}

func fluxTime(t time.Time) string {
	return fmt.Sprintf("time(v: %s)", fluxString(t.UTC().Format(time.RFC3339Nano)))
}

// fluxServers is a Flux predicate matching the given servers.
func fluxServers(servers []string) string {
	or := make([]string, len(servers))
	for i, s := range servers {
		if prefix, ok := ServerPrefix(s); ok {
			or[i] = "r.server =~ /" + prefixRegexp(prefix) + "/"
		} else {
			or[i] = "r.server == " + fluxString(s)
		}
	}
	return strings.Join(or, " or ")
}

// fluxStatuses is a Flux predicate on r._value matching the statuses.
func fluxStatuses(rs []StatusRange) string {
	or := make([]string, len(rs))
	for i, r := range rs {
		if r.Min == r.Max {
			or[i] = fmt.Sprintf("r._value == %s", fluxFloat(float64(r.Min)))
		} else {
			or[i] = fmt.Sprintf("(r._value >= %s and r._value <= %s)", fluxFloat(float64(r.Min)), fluxFloat(float64(r.Max)))
		}
	}
	return strings.Join(or, " or ")
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

// queryError explains err, the failure of a query made under ctx.
func (f *Flux) queryError(ctx context.Context, err error) error { return queryFailure(f.cfg, ctx, err) }

// Custom runs a custom metric's query for each group over [from, to). The template's values are Flux
// literals: .Bucket and .Measurement strings, .Start and .Stop times (time(v: "…")), .Servers a
// predicate on r.server, .Backend and .Group strings.
func (f *Flux) Custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue {
	return runCustom(cm, func(group string, servers []string) customData {
		db, rp, _ := strings.Cut(f.cfg.Bucket, "/")
		return customData{
			Bucket: fluxString(f.cfg.Bucket), Database: fluxString(db), RetentionPolicy: fluxString(rp), Measurement: fluxString(f.cfg.Measurement),
			Backend: fluxString(f.cfg.Backend), Servers: "(" + fluxServers(servers) + ")",
			Start: fluxTime(from), Stop: fluxTime(to.Add(-time.Nanosecond)), Group: fluxString(group),
		}
	}, f.cfg.CanaryServers, f.cfg.StableServers, func(query string) (float64, bool, error) {
		var value float64
		found := false
		err := f.run(ctx, query, func(rec *fluxquery.FluxRecord) bool {
			switch v := rec.Value().(type) {
			case float64:
				value, found = v, true
			case int64:
				value, found = float64(v), true
			case uint64:
				value, found = float64(v), true
			}
			return !found
		})
		return value, found, err
	})
}
