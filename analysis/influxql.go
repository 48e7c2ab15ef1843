package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// InfluxQL queries request metrics with InfluxQL through the v1 /query API: InfluxDB 1.x, the
// v1-compatible endpoint of InfluxDB 2.x, and InfluxDB 3, which does not speak Flux.
//
// A window takes two round trips. The first counts each group's requests, errors, 5xx answers and
// timed requests. The second asks for the latency percentiles and a sample of the latencies. InfluxQL's
// percentile() picks the value at rank round(p/100·n), while fridaymorning reports the nearest-rank
// percentile, rank ceil(q·n) (what Flux's exact_selector returns); knowing n from the first round
// trip, the second asks for the percentile 100·ceil(q·n)/n, whose rounded rank is exactly ceil(q·n).
// So both backends return the same exact, observed values. The sample is InfluxQL's sample(), a
// uniform random sample of SampleSize points (every point when there are fewer).
type InfluxQL struct {
	cfg    Config
	db, rp string
	client *http.Client
}

var _ Store = (*InfluxQL)(nil)

// NewInfluxQL checks cfg, fills in its defaults and returns a querier. It does no I/O: Ping does.
func NewInfluxQL(cfg Config) (*InfluxQL, error) {
	cfg.Language = LanguageInfluxQL
	if err := cfg.check(); err != nil {
		return nil, err
	}
	db, rp, _ := strings.Cut(cfg.Bucket, "/")
	if db == "" {
		return nil, fmt.Errorf("analysis: influxdb.bucket %q names no database: use database/retention-policy, e.g. fridaymorning/autogen", cfg.Bucket)
	}
	return &InfluxQL{cfg: cfg, db: db, rp: rp, client: &http.Client{Timeout: cfg.Timeout + time.Second}}, nil
}

// Close releases the client's idle connections.
func (q *InfluxQL) Close() { q.client.CloseIdleConnections() }

// Ping checks that InfluxDB answers InfluxQL on the database and retention policy with the credentials
// given. It finds no fault with a measurement that holds no points yet.
func (q *InfluxQL) Ping(ctx context.Context) error {
	_, err := q.run(ctx, fmt.Sprintf("SELECT count(%s) FROM %s WHERE time > now() - 1m", qlIdent("status"), q.from()))
	return err
}

// Metrics queries the canary's and stable's metrics for the window [from, to); see Flux.Metrics for
// what the error says. The queries are returned too, as evidence, whatever happens.
func (q *InfluxQL) Metrics(ctx context.Context, from, to time.Time) (canary, stable verdict.Metrics, queries []string, err error) {
	if !to.After(from) {
		return canary, stable, nil, emptyWindow(from, to)
	}
	groups := []struct {
		m       *verdict.Metrics
		servers []string
	}{{&canary, q.cfg.CanaryServers}, {&stable, q.cfg.StableServers}}
	timer := qlIdent(q.cfg.Timer)

	var counts []string
	for _, g := range groups {
		counts = append(counts, q.counts(q.where(from, to, g.servers))...)
	}
	queries = []string{strings.Join(counts, ";\n")}
	res, err := q.run(ctx, counts...)
	if err != nil {
		return canary, stable, queries, err
	}
	for i, g := range groups {
		g.m.Requests, g.m.Errors, g.m.Errors5xx, g.m.Timed = res[4*i].int(), res[4*i+1].int(), res[4*i+2].int(), res[4*i+3].int()
	}
	if err := countsError(q.cfg, &canary, &stable); err != nil {
		return verdict.Metrics{}, verdict.Metrics{}, queries, err
	}

	var second []string
	var asked []*verdict.Metrics
	for _, g := range groups {
		n := g.m.Timed
		if n == 0 {
			continue
		}
		where := q.where(from, to, g.servers) + fmt.Sprintf(" AND %s >= 0", timer)
		var ps []string
		for _, p := range []float64{0.5, 0.9, 0.95, 0.99} {
			rank := math.Ceil(p * float64(n))
			ps = append(ps, fmt.Sprintf("percentile(%s, %s)", timer, strconv.FormatFloat(100*rank/float64(n), 'g', -1, 64)))
		}
		second = append(second,
			fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(ps, ", "), q.from(), where),
			fmt.Sprintf("SELECT sample(%s, %d) FROM %s WHERE %s", timer, SampleSize, q.from(), where))
		asked = append(asked, g.m)
	}
	if len(second) > 0 {
		queries = append(queries, strings.Join(second, ";\n"))
		res, err := q.run(ctx, second...)
		if err != nil {
			return verdict.Metrics{}, verdict.Metrics{}, queries, err
		}
		for i, m := range asked {
			row := res[2*i].row()
			for j, d := range []*time.Duration{&m.P50, &m.P90, &m.P95, &m.P99} {
				if j+1 < len(row) {
					*d = toDuration(row[j+1])
				}
			}
			m.Latencies = res[2*i+1].column(1)
		}
	}
	return canary, stable, queries, finish(q.cfg, from, to, &canary, &stable)
}

// counts are the statements counting a group's requests, failed requests, 5xx answers and timed
// requests where where holds, in that order.
func (q *InfluxQL) counts(where string) []string {
	timer, status := qlIdent(q.cfg.Timer), qlIdent("status")
	return []string{
		fmt.Sprintf("SELECT count(%s) FROM %s WHERE %s", status, q.from(), where),
		fmt.Sprintf("SELECT count(%s) FROM %s WHERE %s AND (%s)", status, q.from(), where, qlFailures(q.cfg.ErrorStatuses)),
		fmt.Sprintf("SELECT count(%s) FROM %s WHERE %s AND (%s)", status, q.from(), where, qlStatuses([]StatusRange{{500, 599}})),
		fmt.Sprintf("SELECT count(%s) FROM %s WHERE %s AND %s >= 0", timer, q.from(), where, timer),
	}
}

// Interval reads what each group served over [from, to) for one look of a sequential analysis, in one
// round trip: the counts, the timed requests slower than each of the group's cuts, and a uniform sample
// of at most LookSample latencies. It reads only the interval, so its cost does not grow with the
// window. Its error is run's, or, with the counts, nothingToJudge's for the interval (wrapping
// ErrNoData).
func (q *InfluxQL) Interval(ctx context.Context, from, to time.Time, cuts Cuts) (canary, stable Interval, queries []string, err error) {
	if !to.After(from) {
		return canary, stable, nil, emptyWindow(from, to)
	}
	timer := qlIdent(q.cfg.Timer)
	groups := []struct {
		iv      *Interval
		servers []string
		cuts    []Cut
	}{{&canary, q.cfg.CanaryServers, cuts.Canary}, {&stable, q.cfg.StableServers, cuts.Stable}}
	var stmts []string
	for _, g := range groups {
		where := q.where(from, to, g.servers)
		stmts = append(stmts, q.counts(where)...)
		for _, c := range g.cuts {
			stmts = append(stmts, fmt.Sprintf("SELECT count(%s) FROM %s WHERE %s AND %s > %s", timer, q.from(), where, timer, strconv.FormatFloat(c.Ms, 'g', -1, 64)))
		}
		stmts = append(stmts, fmt.Sprintf("SELECT sample(%s, %d) FROM %s WHERE %s AND %s >= 0", timer, LookSample, q.from(), where, timer))
	}
	queries = []string{strings.Join(stmts, ";\n")}
	res, err := q.run(ctx, stmts...)
	if err != nil {
		return Interval{}, Interval{}, queries, err
	}
	for _, g := range groups {
		iv := g.iv
		iv.Requests, iv.Errors, iv.Errors5xx, iv.Timed = res[0].int(), res[1].int(), res[2].int(), res[3].int()
		res = res[4:]
		for range g.cuts {
			iv.Above = append(iv.Above, res[0].int())
			res = res[1:]
		}
		iv.Latencies = res[0].column(1)
		res = res[1:]
	}
	return canary, stable, queries, nothingToJudge(q.cfg, from, to, [2]int64{canary.Requests, canary.Timed}, [2]int64{stable.Requests, stable.Timed})
}

// Totals counts each group's requests, failed requests, 5xx answers and timed requests over [from, to),
// in one round trip; see Interval for its error.
func (q *InfluxQL) Totals(ctx context.Context, from, to time.Time) (canary, stable Interval, queries []string, err error) {
	if !to.After(from) {
		return canary, stable, nil, emptyWindow(from, to)
	}
	stmts := append(q.counts(q.where(from, to, q.cfg.CanaryServers)), q.counts(q.where(from, to, q.cfg.StableServers))...)
	queries = []string{strings.Join(stmts, ";\n")}
	res, err := q.run(ctx, stmts...)
	if err != nil {
		return canary, stable, queries, err
	}
	for i, iv := range []*Interval{&canary, &stable} {
		iv.Requests, iv.Errors, iv.Errors5xx, iv.Timed = res[4*i].int(), res[4*i+1].int(), res[4*i+2].int(), res[4*i+3].int()
	}
	return canary, stable, queries, nothingToJudge(q.cfg, from, to, [2]int64{canary.Requests, canary.Timed}, [2]int64{stable.Requests, stable.Timed})
}

// from is the FROM clause: the measurement, qualified by the retention policy when one is given.
func (q *InfluxQL) from() string {
	if q.rp == "" {
		return qlIdent(q.cfg.Measurement)
	}
	return qlIdent(q.rp) + "." + qlIdent(q.cfg.Measurement)
}

// where is the condition selecting a group's points in [from, to): times as integer nanoseconds, names
// as string literals.
func (q *InfluxQL) where(from, to time.Time, servers []string) string {
	return fmt.Sprintf("time >= %d AND time < %d AND %s = %s AND (%s)", from.UnixNano(), to.UnixNano(), qlIdent("backend"), qlString(q.cfg.Backend), qlServers(servers))
}

func qlServers(servers []string) string {
	or := make([]string, len(servers))
	for i, s := range servers {
		if prefix, ok := ServerPrefix(s); ok {
			or[i] = qlIdent("server") + " =~ /" + prefixRegexp(prefix) + "/"
		} else {
			or[i] = qlIdent("server") + " = " + qlString(s)
		}
	}
	return strings.Join(or, " OR ")
}

// qlFailures matches the failed requests: an error status, or none at all (HAProxy logs -1 when no
// response came, as when the client gave up waiting): a request without a response is never a success.
func qlFailures(rs []StatusRange) string {
	return qlStatuses(rs) + fmt.Sprintf(" OR %s < 0", qlIdent("status"))
}

func qlStatuses(rs []StatusRange) string {
	or := make([]string, len(rs))
	for i, r := range rs {
		if r.Min == r.Max {
			or[i] = fmt.Sprintf("%s = %d", qlIdent("status"), r.Min)
		} else {
			or[i] = fmt.Sprintf("(%s >= %d AND %s <= %d)", qlIdent("status"), r.Min, qlIdent("status"), r.Max)
		}
	}
	return strings.Join(or, " OR ")
}

// qlString renders s as an InfluxQL string literal whose value is s: backslashes and single quotes are
// escaped, line breaks written as \n. (Config refuses other control characters, which InfluxQL
// strings cannot hold.)
func qlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// qlIdent renders s as a double-quoted InfluxQL identifier.
func qlIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// qlResult is one statement's result.
type qlResult struct {
	Error  string `json:"error"`
	Series []struct {
		Columns []string `json:"columns"`
		Values  [][]any  `json:"values"`
	} `json:"series"`
}

// int is the first value of the first row, as an integer (0 when there is none: count() of nothing
// returns no series).
func (r qlResult) int() int64 {
	row := r.row()
	if len(row) < 2 {
		return 0
	}
	return toInt(row[1])
}

func (r qlResult) row() []any {
	if len(r.Series) == 0 || len(r.Series[0].Values) == 0 {
		return nil
	}
	return r.Series[0].Values[0]
}

// column collects column i of every row of every series as floats.
func (r qlResult) column(i int) []float64 {
	var out []float64
	for _, s := range r.Series {
		for _, row := range s.Values {
			if i < len(row) {
				if v, ok := row[i].(float64); ok {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// run sends statements in one request and returns one result per statement. Failures come as
// queryFailure's errors, wrapping ErrUnreachable; HTTP errors as *influxhttp.Error, so that they are
// described as the Flux client's are.
func (q *InfluxQL) run(ctx context.Context, statements ...string) ([]qlResult, error) {
	qctx, cancel := context.WithTimeout(ctx, q.cfg.Timeout)
	defer cancel()
	params := url.Values{"db": {q.db}, "epoch": {"ms"}, "q": {strings.Join(statements, ";\n")}}
	if q.rp != "" {
		params.Set("rp", q.rp)
	}
	var (
		resp *http.Response
		body []byte
	)
	// A query is a read: a connection broken before the answer is whole is asked again, a few times.
	err := retryTransient(qctx, func() error {
		req, err := http.NewRequestWithContext(qctx, http.MethodPost, q.cfg.URL+"/query", strings.NewReader(params.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		q.authorize(req)
		resp, err = q.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		return nil, queryFailure(q.cfg, ctx, err)
	}
	var out struct {
		Error   string     `json:"error"`
		Results []qlResult `json:"results"`
	}
	jsonErr := json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK {
		msg := out.Error
		if jsonErr != nil {
			msg = oneLine(string(body[:min(len(body), 200)]))
		}
		return nil, queryFailure(q.cfg, ctx, &influxhttp.Error{StatusCode: resp.StatusCode, Code: resp.Status, Message: msg})
	}
	if jsonErr != nil {
		return nil, queryFailure(q.cfg, ctx, fmt.Errorf("unreadable answer: %w", jsonErr))
	}
	if out.Error != "" {
		return nil, queryFailure(q.cfg, ctx, fmt.Errorf("%s", out.Error))
	}
	// A failed statement fails those after it with "not executed": report the one that failed.
	var stmtErr string
	for _, r := range out.Results {
		if r.Error != "" && (stmtErr == "" || stmtErr == "not executed") {
			stmtErr = r.Error
		}
	}
	if stmtErr == "not executed" && len(statements) > 1 {
		// InfluxDB 1.8 answers a batch on a missing database or retention policy with "not executed"
		// alone; the first statement on its own says what is wrong.
		if _, err := q.run(ctx, statements[0]); err != nil {
			return nil, err
		}
	}
	if stmtErr != "" {
		return nil, queryFailure(q.cfg, ctx, fmt.Errorf("%s", stmtErr))
	}
	if n := len(statements); len(out.Results) != n {
		return nil, queryFailure(q.cfg, ctx, fmt.Errorf("%d results for %d statements", len(out.Results), n))
	}
	return out.Results, nil
}

// Custom runs a custom metric's query for each group over [from, to). The template's values are
// InfluxQL literals: .Start and .Stop integer nanoseconds, .Servers a condition on the server tag,
// .Measurement the (qualified) measurement to put after FROM, .Backend and .Group string literals.
func (q *InfluxQL) Custom(ctx context.Context, cm CustomMetric, from, to time.Time) CustomValue {
	return runCustom(cm, func(group string, servers []string) customData {
		return customData{
			Bucket: qlString(q.cfg.Bucket), Database: qlIdent(q.db), RetentionPolicy: qlIdent(q.rp), Measurement: q.from(),
			Backend: qlString(q.cfg.Backend), Servers: "(" + qlServers(servers) + ")",
			Start: strconv.FormatInt(from.UnixNano(), 10), Stop: strconv.FormatInt(to.UnixNano(), 10), Group: qlString(group),
		}
	}, q.cfg.CanaryServers, q.cfg.StableServers, func(query string) (float64, bool, error) {
		res, err := q.run(ctx, query)
		if err != nil {
			return 0, false, err
		}
		row := res[0].row()
		for _, v := range row[min(1, len(row)):] {
			if f, ok := v.(float64); ok {
				return f, true, nil
			}
		}
		return 0, false, nil
	})
}

// authorize adds the credentials: basic auth for a user:password token (1.x), else the token itself
// (2.x and 3).
func (q *InfluxQL) authorize(req *http.Request) {
	req.Header.Set("User-Agent", "fridaymorning")
	if user, pw, ok := strings.Cut(q.cfg.Token, ":"); ok {
		req.SetBasicAuth(user, pw)
	} else if q.cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+q.cfg.Token)
	}
}
