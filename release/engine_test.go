package release

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fridaymorning/fridaymorning/verdict"
)

func TestRun(t *testing.T) {
	pass := verdict.Verdict{Result: verdict.ResultPass, Reason: "ok"}
	fail := verdict.Verdict{Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%"}
	inconclusive := verdict.Verdict{Result: verdict.ResultInconclusive, Reason: "canary has 3 requests, needs 50"}
	abortTail := "shift 0\ndrain canary\nremove app-canary"

	tests := []struct {
		name    string
		world   *world
		cfg     func(*Config)
		want    Outcome
		wantErr string
		calls   string
	}{
		{
			name:  "healthy canary is promoted in Flagger's order",
			world: &world{},
			want:  OutcomePromoted,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
		},
		{
			name:  "failing step aborts: canary to 0 first, then drain and remove, stable untouched",
			world: &world{verdicts: []verdict.Verdict{pass, fail}},
			want:  OutcomeAbortedAnalysis,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" + abortTail,
		},
		{
			name:  "inconclusive step is extended, then aborted: it never promotes",
			world: &world{verdicts: []verdict.Verdict{inconclusive}},
			cfg:   func(c *Config) { c.MaxExtensions = 2 },
			want:  OutcomeAbortedInconclusive,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nanalyze 10\n" + abortTail,
		},
		{
			name:  "inconclusive then pass goes on",
			world: &world{verdicts: []verdict.Verdict{inconclusive, pass, pass}},
			want:  OutcomePromoted,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
		},
		{
			name:  "unreachable metrics store never passes",
			world: &world{analyzeErr: errors.New("influxdb: connection refused")},
			cfg:   func(c *Config) { c.MaxExtensions = -1 },
			want:  OutcomeAbortedInconclusive,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\n" + abortTail,
		},
		{
			name:  "canary that never becomes ready is aborted",
			world: &world{readyErr: map[string]error{"app-canary": errors.New("task failed: exit 1")}},
			want:  OutcomeAbortedAnalysis,
			calls: "shift 0\ncreate app app:v2\nready app-canary\n" + abortTail,
		},
		{
			name:    "canary creation fails: nothing changed",
			world:   &world{createErr: errors.New("image not found")},
			want:    OutcomeFailed,
			wantErr: "nothing was changed",
			calls:   "shift 0\ncreate app app:v2",
		},
		{
			name:    "canary servers that cannot be set to 0 stop the release before the canary exists",
			world:   &world{shiftErr: map[float64]error{0: errors.New("haproxy: 500")}},
			want:    OutcomeFailed,
			wantErr: "no canary was created",
			calls:   "shift 0",
		},
		{
			name:    "shift failure mid-release aborts and says why",
			world:   &world{shiftErr: map[float64]error{50: errors.New("haproxy: 500")}},
			want:    OutcomeAbortedError,
			wantErr: "shifting 50% of traffic to the canary failed",
			calls:   "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\n" + abortTail,
		},
		{
			name:  "traffic back to stable is retried",
			world: &world{verdicts: []verdict.Verdict{fail}, shiftFailsN: 2},
			want:  OutcomeAbortedAnalysis,
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 0\nshift 0\n" + abortTail,
		},
		{
			name:    "stable that does not converge keeps traffic on the healthy canary",
			world:   &world{readyErr: map[string]error{"app": errors.New("task failed")}},
			want:    OutcomeFailed,
			wantErr: "all traffic stays on the healthy canary app-canary",
			calls: "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			out, err, events := run(t, context.Background(), cfg, tt.world)
			if out != tt.want {
				t.Errorf("outcome = %s, want %s (err %v)", out, tt.want, err)
			}
			if (err != nil) != (tt.want == OutcomeFailed) {
				t.Errorf("err = %v; want an error exactly when the outcome is failed", err)
			}
			last := events[len(events)-1]
			if msg := last.Message; tt.wantErr != "" && !strings.Contains(msg, tt.wantErr) {
				t.Errorf("finished with %q, want it to contain %q", msg, tt.wantErr)
			}
			if got := tt.world.log(); got != tt.calls {
				t.Errorf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			if last.Kind != KindFinished || last.Outcome != out {
				t.Errorf("last event = %+v, want finished with outcome %s", last, out)
			}
		})
	}
}

func TestRunFailsClosedWhenAnalyzerErrsWithPass(t *testing.T) {
	// An analyzer that reports an error must not let a step pass, whatever Result it set.
	w := &world{verdicts: []verdict.Verdict{{Result: verdict.ResultPass}}}
	w.analyzeErr = nil
	bad := &errorPassAnalyzer{world: w}
	cfg := testConfig()
	cfg.MaxExtensions = -1
	d := deps(w)
	d.Analyzer = bad
	e, err := New(cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := e.Run(context.Background())
	if out != OutcomeAbortedInconclusive {
		t.Fatalf("outcome = %s, want %s", out, OutcomeAbortedInconclusive)
	}
	if strings.Contains(w.log(), "update") {
		t.Fatalf("stable was updated although no step passed:\n%s", w.log())
	}
}

type errorPassAnalyzer struct{ world *world }

func (a *errorPassAnalyzer) Analyze(context.Context, verdict.Window) (verdict.Verdict, error) {
	a.world.record("analyze")
	return verdict.Verdict{Result: verdict.ResultPass}, errors.New("query timed out")
}

func TestRunInterruptAbortsSafely(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &world{onAnalyze: func(n int) { cancel() }}
	cfg := testConfig()
	out, err, _ := run(t, ctx, cfg, w)
	if out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("outcome %s, err %v; want %s", out, err, OutcomeAbortedOperator)
	}
	want := "shift 0\ncreate app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 0\ndrain canary\nremove app-canary"
	if got := w.log(); got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	w := &world{}
	d := deps(w)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no service", func(c *Config) { c.Service = "" }, "no service"},
		{"no steps", func(c *Config) { c.Steps = nil }, "no steps"},
		{"step above 100", func(c *Config) { c.Steps = []float64{10, 120} }, "step 2 is 120%"},
		{"zero step", func(c *Config) { c.Steps = []float64{0, 10} }, "step 1 is 0%"},
		{"decreasing", func(c *Config) { c.Steps = []float64{50, 25} }, "must increase"},
		{"no bake", func(c *Config) { c.Bake = 0 }, "bake interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mod(&cfg)
			_, err := New(cfg, d, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
