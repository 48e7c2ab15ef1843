package analysis

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestJudge(t *testing.T) {
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 0.5, MaxP99: ms(500), MaxP95Ratio: 1.25, LatencySlack: ms(5)}
	healthy := Metrics{Requests: 200, Errors: 0, P50: ms(3), P95: ms(8), P99: ms(12)}
	stable := Metrics{Requests: 1800, Errors: 2, ErrorRate: 0.11, P50: ms(3), P95: ms(8), P99: ms(12)}
	tests := []struct {
		name      string
		canary    Metrics
		stable    Metrics
		share     float64
		want      Result
		failCheck string
		reason    string
	}{
		{name: "healthy canary passes", canary: healthy, stable: stable, share: 10, want: ResultPass, reason: "all"},
		{name: "error rate over the limit fails", canary: Metrics{Requests: 212, Errors: 103, ErrorRate: 48.58, P95: ms(8)}, stable: stable, share: 10,
			want: ResultFail, failCheck: "error_rate", reason: "canary error rate 48.58% > 1% (103 of 212 requests)"},
		{name: "error rate above stable's by more than the margin fails", canary: Metrics{Requests: 400, Errors: 3, ErrorRate: 0.75, P95: ms(8)}, stable: stable, share: 10,
			want: ResultFail, failCheck: "error_rate_increase"},
		{name: "p99 over the absolute limit fails", canary: Metrics{Requests: 200, P95: ms(9), P99: ms(650)}, stable: stable, share: 10,
			want: ResultFail, failCheck: "latency_p99", reason: "canary p99 650ms > 500ms"},
		{name: "p95 far above stable's fails", canary: Metrics{Requests: 200, P95: ms(260), P99: ms(300)}, stable: stable, share: 10,
			want: ResultFail, failCheck: "p95_vs_stable"},
		{name: "p95 a few ms above stable's is within the slack", canary: Metrics{Requests: 200, P95: ms(14), P99: ms(20)}, stable: stable, share: 10, want: ResultPass},
		{name: "too few canary requests is inconclusive, even with errors", canary: Metrics{Requests: 12, Errors: 6, ErrorRate: 50}, stable: stable, share: 10,
			want: ResultInconclusive, reason: "canary has 12 requests, needs at least 50"},
		{name: "too few stable requests is inconclusive", canary: healthy, stable: Metrics{Requests: 3}, share: 10,
			want: ResultInconclusive, reason: "stable has 3 requests"},
		{name: "no data at all is inconclusive", want: ResultInconclusive, share: 10},
		{name: "at 100% the absolute checks decide", canary: healthy, stable: Metrics{}, share: 100, want: ResultPass},
		{name: "at 100% a bad canary still fails", canary: Metrics{Requests: 200, Errors: 100, ErrorRate: 50}, share: 100, want: ResultFail, failCheck: "error_rate"},
		{name: "NaN error rate is no pass", canary: Metrics{Requests: 200, ErrorRate: math.NaN()}, stable: stable, share: 10, want: ResultFail, failCheck: "error_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.canary, tt.stable, th, tt.share)
			if v.Result != tt.want {
				t.Fatalf("result %s, want %s (%s)\n%+v", v.Result, tt.want, v.Reason, v.Checks)
			}
			if tt.failCheck != "" {
				found := false
				for _, c := range v.Checks {
					if c.Name == tt.failCheck && c.Result == ResultFail {
						found = true
					}
				}
				if !found {
					t.Errorf("check %s did not fail: %+v", tt.failCheck, v.Checks)
				}
			}
			if tt.reason != "" && !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.reason)
			}
			for _, c := range v.Checks {
				if c.Detail == "" {
					t.Errorf("check %s has no detail", c.Name)
				}
			}
		})
	}
}

func TestFluxString(t *testing.T) {
	tests := map[string]string{
		"canary1":                 `"canary1"`,
		`x" or r.server != "`:     `"x\" or r.server != \""`,
		`back\slash`:              `"back\\slash"`,
		"${interpolate}":          `"\${interpolate}"`,
		"line\nbreak":             `"line\nbreak"`,
		`"; drop() //`:            `"\"; drop() //"`,
		`\" or true or r.a == "\`: `"\\\" or true or r.a == \"\\"`,
	}
	for in, want := range tests {
		if got := fluxString(in); got != want {
			t.Errorf("fluxString(%q) = %s, want %s", in, got, want)
		}
	}
}

// stubQuerier stands in for InfluxDB in the fail-closed tests of Analyze's own logic.
type stubQuerier struct {
	canary, stable Metrics
	err            error
}

func (s stubQuerier) Metrics(context.Context, time.Time, time.Time) (Metrics, Metrics, []string, error) {
	return s.canary, s.stable, []string{"q"}, s.err
}

func TestAnalyzeFailsClosed(t *testing.T) {
	th := Thresholds{MinRequests: 50, MaxErrorRate: 1}
	now := time.Now()
	for name, q := range map[string]stubQuerier{
		"unreachable": {err: ErrUnreachable},
		"no data":     {stable: Metrics{Requests: 900}, err: ErrNoData},
		// Whatever numbers came with an error, they are not judged.
		"error with good numbers": {canary: Metrics{Requests: 500}, stable: Metrics{Requests: 500}, err: ErrUnreachable},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewAnalyzer(q, th).Analyze(context.Background(), now.Add(-time.Minute), now, 10)
			if v.Result == ResultPass || err == nil || !errors.Is(err, q.err) {
				t.Fatalf("verdict %s, err %v: want no pass and the error", v.Result, err)
			}
			if v.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}
