package analysis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileNames try to end a Flux string literal, interpolate, or smuggle a line break into a query.
var hostileNames = []string{
	`canary9" or r.server != "`,
	`x\" or true or r.a == "\`,
	`${r.server}`,
	`$${"a"}`,
	`"; drop() //`,
	`back\slash`,
	`\`,
	`"`,
	"ünïcødé-канарейка",
}

// unquoteFlux reads the Flux string literal at the start of s as the scanner of Flux 0.65 (InfluxDB
// 1.8) and Flux's parser do, and returns its value and the rest of s. It fails on whatever those would
// read otherwise: a "$" that could start an interpolation or swallow the character after it, an unknown
// escape, a raw line break.
func unquoteFlux(t *testing.T, s string) (value, rest string) {
	t.Helper()
	if !strings.HasPrefix(s, `"`) {
		t.Fatalf("no string literal at %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:]
		case '$':
			// The scanner reads "$" and the next character as one unit (or "${" as an interpolation);
			// fluxString writes no "$" at all.
			t.Fatalf("raw $ in %q", s)
		case '\\':
			i++
			if i == len(s) {
				t.Fatalf("dangling backslash in %q", s)
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\', '"':
				b.WriteByte(e)
			case 'x':
				v, err := strconv.ParseUint(s[i+1:min(i+3, len(s))], 16, 8)
				if err != nil {
					t.Fatalf("bad byte escape in %q", s)
				}
				b.WriteByte(byte(v))
				i += 2
			default:
				t.Fatalf("escape \\%c in %q, which Flux 0.65 does not scan", e, s)
			}
		case '\n', '\r':
			t.Fatalf("raw line break in literal %q", s)
		default:
			b.WriteByte(c)
		}
	}
	t.Fatalf("unterminated literal %q", s)
	return "", ""
}

func TestFluxString(t *testing.T) {
	for _, in := range append(hostileNames, "canary1", "", "fridaymorning/autogen", "line\nbreak\r\ttab") {
		lit := fluxString(in)
		got, rest := unquoteFlux(t, lit)
		if got != in || rest != "" {
			t.Errorf("fluxString(%q) = %s reads back as %q, rest %q", in, lit, got, rest)
		}
	}
	for in, want := range map[string]string{
		`x" or r.server != "`: `"x\" or r.server != \""`,
		`back\slash`:          `"back\\slash"`,
		"${interpolate}":      `"\x24{interpolate}"`,
		"$${x}":               `"\x24\x24{x}"`,
		"line\nbreak":         `"line\nbreak"`,
	} {
		if got := fluxString(in); got != want {
			t.Errorf("fluxString(%q) = %s, want %s", in, got, want)
		}
	}
}

// skeleton replaces every string literal of a Flux query with "_", leaving its structure.
func skeleton(t *testing.T, q string) (string, []string) {
	t.Helper()
	var b strings.Builder
	var lits []string
	for {
		i := strings.IndexByte(q, '"')
		if i < 0 {
			b.WriteString(q)
			return b.String(), lits
		}
		b.WriteString(q[:i] + `"_"`)
		var lit string
		lit, q = unquoteFlux(t, q[i:])
		lits = append(lits, lit)
	}
}

// TestQueryWithHostileNames: whatever the bucket, measurement, backend and server names hold, the query
// has the same structure as with plain names, and each name reaches Flux intact as one literal.
func TestQueryWithHostileNames(t *testing.T) {
	from := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	to := from.Add(time.Minute)
	plain := Config{URL: "http://127.0.0.1:8086", Bucket: "b", Measurement: "m", Backend: "be", StableServers: []string{"s1", "s2"}, CanaryServers: []string{"c1"}}
	fp, err := NewFlux(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	want, plainLits := skeleton(t, fp.metricsQuery(from, to))
	if !strings.Contains(strings.Join(plainLits, "|"), "2026-11-22T09:00:00.123456789Z|2026-11-22T09:01:00.123456788Z") {
		t.Errorf("times are not UTC RFC3339Nano literals, the stop 1ns early: %q", plainLits)
	}
	if !strings.Contains(want, `range(start: time(v: "_"), stop: time(v: "_"))`) || strings.Count(want, `method: "_"`) != 8 {
		t.Errorf("query shape:\n%s", want)
	}
	for _, name := range hostileNames {
		hostile := Config{URL: plain.URL, Bucket: name, Measurement: name, Backend: name, StableServers: []string{"s1", "x" + name}, CanaryServers: []string{name}}
		f, err := NewFlux(hostile)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		got, lits := skeleton(t, f.metricsQuery(from, to))
		f.Close()
		if got != want {
			t.Errorf("name %q changes the query:\n%s\nwant\n%s", name, got, want)
		}
		n := 0
		for _, l := range lits {
			if l == name {
				n++
			}
		}
		// 4 reads, each with the bucket, measurement and backend; the canary server in 2 of them.
		if n != 14 {
			t.Errorf("name %q reaches the query intact %d times, want 14", name, n)
		}
	}
}

func TestNewFlux(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:8086/", Bucket: "fridaymorning/autogen", Backend: "be_demo", StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}}
	f, err := NewFlux(ok)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if c := f.cfg; c.Measurement != "haproxy_request" || c.Timer != "ta" || len(c.ErrorStatuses) != 1 || c.ErrorStatuses[0] != (StatusRange{500, 599}) || c.Language != LanguageFlux || c.Timeout != 10*time.Second || c.URL != "http://127.0.0.1:8086" {
		t.Errorf("defaults not filled in: %+v", c)
	}
	for name, tt := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"no URL":               {func(c *Config) { c.URL = "" }, "influxdb.url"},
		"no scheme":            {func(c *Config) { c.URL = "127.0.0.1:8086" }, "influxdb.url"},
		"credentials in URL":   {func(c *Config) { c.URL = "http://admin:hunter22@127.0.0.1:8086" }, "must not carry credentials"},
		"token with newline":   {func(c *Config) { c.Token = "admin:hunter22\n" }, "control character"},
		"no bucket":            {func(c *Config) { c.Bucket = "" }, "influxdb.bucket"},
		"no backend":           {func(c *Config) { c.Backend = "" }, "haproxy.backend"},
		"no stable servers":    {func(c *Config) { c.StableServers = nil }, "haproxy.stable_servers"},
		"no canary servers":    {func(c *Config) { c.CanaryServers = nil }, "haproxy.canary_servers"},
		"empty server name":    {func(c *Config) { c.CanaryServers = []string{"canary1", ""} }, "haproxy.canary_servers"},
		"invalid UTF-8 server": {func(c *Config) { c.StableServers = []string{"\xff"} }, "haproxy.stable_servers"},
		"server in both":       {func(c *Config) { c.CanaryServers = []string{"canary1", "stable1"} }, `server "stable1" is both stable and canary`},
		"unknown timer":        {func(c *Config) { c.Timer = "tq" }, "influxdb.timer"},
		"bad error statuses":   {func(c *Config) { c.ErrorStatuses = []StatusRange{{-1, 5}} }, "no range of HTTP statuses"},
		"control character":    {func(c *Config) { c.CanaryServers = []string{"a\nb"} }, "control character"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			_, err := NewFlux(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Fatalf("error %q shows the secret", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	cfg := Config{URL: "http://127.0.0.1:8086", Bucket: "fridaymorning/autogen", Backend: "be_demo", StableServers: []string{"stable1"}, CanaryServers: []string{"canary1"}}
	for lang, want := range map[string]string{"": "*analysis.InfluxQL", "influxql": "*analysis.InfluxQL", "flux": "*analysis.Flux"} {
		c := cfg
		c.Language = lang
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", s); got != want {
			t.Errorf("language %q: %s, want %s", lang, got, want)
		}
		s.Close()
	}
	cfg.Language = "sql"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "influxdb.language") {
		t.Errorf("unknown language: %v", err)
	}
	cfg.Language, cfg.Bucket = "influxql", "/autogen"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("bucket without a database: %v", err)
	}
}

// silentServer accepts connections and never answers: a hung InfluxDB, which a real one cannot be made
// into on demand.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return "http://" + l.Addr().String()
}

func TestMetricsTimeout(t *testing.T) {
	url := silentServer(t)
	f, err := NewFlux(Config{URL: url, Token: "admin:hunter22", Bucket: "fridaymorning/autogen", Backend: "be", StableServers: []string{"s"}, CanaryServers: []string{"c"}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	start := time.Now()
	_, _, queries, err := f.Metrics(context.Background(), now.Add(-time.Minute), now)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the query took %s despite a timeout of 200ms", took)
	}
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want ErrUnreachable and the deadline", err)
	}
	if msg := err.Error(); !strings.Contains(msg, url) || !strings.Contains(msg, "no answer within 200ms") || !strings.Contains(msg, "influxdb.timeout") || strings.Contains(msg, "hunter22") {
		t.Errorf("error %q: want the URL, the timeout and what to do, never the token", msg)
	}
	if len(queries) != 1 {
		t.Errorf("the query sent is not returned as evidence: %q", queries)
	}
}

func TestMetricsCanceledByCaller(t *testing.T) {
	f, err := NewFlux(Config{URL: silentServer(t), Bucket: "b", Backend: "be", StableServers: []string{"s"}, CanaryServers: []string{"c"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	now := time.Now()
	_, _, _, err = f.Metrics(ctx, now.Add(-time.Minute), now)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("error %v: want the caller's cancellation, not ErrUnreachable", err)
	}
}

func TestMetricsEmptyWindow(t *testing.T) {
	f, err := NewFlux(Config{URL: "http://127.0.0.1:1", Bucket: "b", Backend: "be", StableServers: []string{"s"}, CanaryServers: []string{"c"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	for _, to := range []time.Time{now, now.Add(-time.Second), now.Add(time.Nanosecond)} {
		if _, _, _, err := f.Metrics(context.Background(), now, to); !errors.Is(err, ErrNoData) {
			t.Errorf("window %s..%s: %v, want ErrNoData", now, to, err)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("admin:hunter22", "user admin:hunter22 and hunter22 again, admin stays"); got != "user [redacted] and [redacted] again, admin stays" {
		t.Errorf("redact: %q", got)
	}
	if got := redact("", "nothing to hide"); got != "nothing to hide" {
		t.Errorf("redact with no token: %q", got)
	}
}

func TestQLString(t *testing.T) {
	for in, want := range map[string]string{
		`canary1`:            `'canary1'`,
		`x' OR server != 'y`: `'x\' OR server != \'y'`,
		`back\slash\`:        `'back\\slash\\'`,
		"line\nbreak":        `'line\nbreak'`,
	} {
		if got := qlString(in); got != want {
			t.Errorf("qlString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := qlIdent(`m"x`); got != `"m\"x"` {
		t.Errorf("qlIdent = %s", got)
	}
}

func TestParseStatuses(t *testing.T) {
	got, err := ParseStatuses([]string{"5xx", "429", "400-404"})
	if err != nil || len(got) != 3 || got[0] != (StatusRange{500, 599}) || got[1] != (StatusRange{429, 429}) || got[2] != (StatusRange{400, 404}) {
		t.Fatalf("ParseStatuses = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"6xx"}, {"abc"}, {"500-400"}, {"99"}, {}} {
		if _, err := ParseStatuses(bad); err == nil {
			t.Errorf("ParseStatuses(%q) accepted", bad)
		}
	}
}
