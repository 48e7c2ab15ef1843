package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// world is a scripted stand-in for Swarm, HAProxy and InfluxDB that records every call in order, so a
// test can assert the exact sequence of effects the engine produced. Unscripted failures are zero.
type world struct {
	mu    sync.Mutex
	calls []string

	verdicts     []Verdict // returned by Analyze in turn; the last one repeats
	analyzeErr   error
	createErr    error
	readyErr     map[string]error // by service
	updateErr    error
	shiftErr     map[float64]error
	shiftFailsN  int // Shift(0) fails this many times before succeeding
	removeErr    error
	onAnalyze    func(n int)
	analyzeCalls int
}

func (w *world) record(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, fmt.Sprintf(format, args...))
}

func (w *world) CreateCanary(_ context.Context, stable, image, id string) (string, error) {
	w.record("create %s %s", stable, image)
	if w.createErr != nil {
		return "", w.createErr
	}
	return stable + "-canary", nil
}

func (w *world) RemoveService(_ context.Context, name string) error {
	w.record("remove %s", name)
	return w.removeErr
}

func (w *world) UpdateImage(_ context.Context, service, image string) error {
	w.record("update %s %s", service, image)
	return w.updateErr
}

func (w *world) WaitReady(_ context.Context, service string, progress func(string)) error {
	w.record("ready %s", service)
	progress("1/1 running")
	return w.readyErr[service]
}

func (w *world) Shift(_ context.Context, pct float64) (map[string]int, float64, error) {
	w.record("shift %g", pct)
	if pct == 0 && w.shiftFailsN > 0 {
		w.shiftFailsN--
		return nil, 0, errors.New("api down")
	}
	if err := w.shiftErr[pct]; err != nil {
		return nil, 0, err
	}
	return map[string]int{"stable1": int(100 - pct), "canary1": int(pct)}, pct, nil
}

func (w *world) WaitUp(_ context.Context, group string) error {
	w.record("up %s", group)
	return nil
}

func (w *world) Drain(_ context.Context, group string) error {
	w.record("drain %s", group)
	return nil
}

func (w *world) Analyze(_ context.Context, from, to time.Time, share float64) (Verdict, error) {
	w.record("analyze %g", share)
	w.mu.Lock()
	n := w.analyzeCalls
	w.analyzeCalls++
	w.mu.Unlock()
	if w.onAnalyze != nil {
		w.onAnalyze(n)
	}
	if !to.After(from) {
		return Verdict{}, fmt.Errorf("empty window %s..%s", from, to)
	}
	if w.analyzeErr != nil {
		return Verdict{Result: ResultInconclusive, Reason: w.analyzeErr.Error()}, w.analyzeErr
	}
	if len(w.verdicts) == 0 {
		return Verdict{Result: ResultPass, Reason: "all checks pass"}, nil
	}
	v := w.verdicts[min(n, len(w.verdicts)-1)]
	return v, nil
}

func (w *world) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.calls, "\n")
}

func testConfig() Config {
	return Config{
		ReleaseID:        "r-test",
		Service:          "app",
		Image:            "app:v2",
		Steps:            []float64{10, 50},
		Bake:             time.Millisecond,
		AnalysisDelay:    time.Millisecond,
		ProgressInterval: time.Millisecond,
	}
}

func run(t *testing.T, ctx context.Context, cfg Config, w *world, pre ...Preflight) (Outcome, error, []Event) {
	t.Helper()
	var events []Event
	e, err := New(cfg, Deps{Canaries: w, Rollout: w, Router: w, Analyzer: w, Preflight: pre}, func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(ctx)
	return out, err, events
}

func TestRun(t *testing.T) {
	pass := Verdict{Result: ResultPass, Reason: "ok"}
	fail := Verdict{Result: ResultFail, Reason: "canary error rate 50% > 1%"}
	inconclusive := Verdict{Result: ResultInconclusive, Reason: "canary has 3 requests, needs 50"}
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
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"shift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
		},
		{
			name:  "failing step aborts: canary to 0 first, then drain and remove, stable untouched",
			world: &world{verdicts: []Verdict{pass, fail}},
			want:  OutcomeAbortedAnalysis,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" + abortTail,
		},
		{
			name:  "inconclusive step is extended, then aborted: it never promotes",
			world: &world{verdicts: []Verdict{inconclusive}},
			cfg:   func(c *Config) { c.MaxExtensions = 2 },
			want:  OutcomeAbortedInconclusive,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nanalyze 10\n" + abortTail,
		},
		{
			name:  "inconclusive then pass goes on",
			world: &world{verdicts: []Verdict{inconclusive, pass, pass}},
			want:  OutcomePromoted,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"shift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
		},
		{
			name:  "unreachable metrics store never passes",
			world: &world{analyzeErr: errors.New("influxdb: connection refused")},
			cfg:   func(c *Config) { c.MaxExtensions = -1 },
			want:  OutcomeAbortedInconclusive,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\n" + abortTail,
		},
		{
			name:  "canary that never becomes ready is aborted",
			world: &world{readyErr: map[string]error{"app-canary": errors.New("task failed: exit 1")}},
			want:  OutcomeAbortedAnalysis,
			calls: "create app app:v2\nready app-canary\n" + abortTail,
		},
		{
			name:    "canary creation fails: nothing changed",
			world:   &world{createErr: errors.New("image not found")},
			want:    OutcomeFailed,
			wantErr: "nothing was changed",
			calls:   "create app app:v2",
		},
		{
			name:    "shift failure mid-release aborts and reports failure",
			world:   &world{shiftErr: map[float64]error{50: errors.New("haproxy: 500")}},
			want:    OutcomeFailed,
			wantErr: "shifting 50% of traffic to the canary failed",
			calls:   "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\n" + abortTail,
		},
		{
			name:  "traffic back to stable is retried",
			world: &world{verdicts: []Verdict{fail}, shiftFailsN: 2},
			want:  OutcomeAbortedAnalysis,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 0\nshift 0\n" + abortTail,
		},
		{
			name:    "stable that does not converge keeps traffic on the healthy canary",
			world:   &world{readyErr: map[string]error{"app": errors.New("task failed")}},
			want:    OutcomeFailed,
			wantErr: "all traffic stays on the healthy canary app-canary",
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"shift 100\nupdate app app:v2\nready app",
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
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := tt.world.log(); got != tt.calls {
				t.Errorf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			last := events[len(events)-1]
			if last.Kind != KindFinished || last.Outcome != out {
				t.Errorf("last event = %+v, want finished with outcome %s", last, out)
			}
		})
	}
}

func TestRunFailsClosedWhenAnalyzerErrsWithPass(t *testing.T) {
	// An analyzer that reports an error must not let a step pass, whatever Result it set.
	w := &world{verdicts: []Verdict{{Result: ResultPass}}}
	w.analyzeErr = nil
	bad := &errorPassAnalyzer{world: w}
	cfg := testConfig()
	cfg.MaxExtensions = -1
	e, err := New(cfg, Deps{Canaries: w, Rollout: w, Router: w, Analyzer: bad}, nil)
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

func (a *errorPassAnalyzer) Analyze(context.Context, time.Time, time.Time, float64) (Verdict, error) {
	a.world.record("analyze")
	return Verdict{Result: ResultPass}, errors.New("query timed out")
}

func TestRunPreflightFailureChangesNothing(t *testing.T) {
	w := &world{}
	out, err, _ := run(t, context.Background(), testConfig(), w,
		Preflight{Name: "swarm", Run: func(context.Context) error { return nil }},
		Preflight{Name: "haproxy", Run: func(context.Context) error { return errors.New(`backend "be_x" not found`) }},
	)
	if out != OutcomeFailed || err == nil || !strings.Contains(err.Error(), `preflight haproxy: backend "be_x" not found`) {
		t.Fatalf("outcome %s, err %v", out, err)
	}
	if got := w.log(); got != "" {
		t.Fatalf("preflight failure made calls:\n%s", got)
	}
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
	want := "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 0\ndrain canary\nremove app-canary"
	if got := w.log(); got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	w := &world{}
	deps := Deps{Canaries: w, Rollout: w, Router: w, Analyzer: w}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no service", func(c *Config) { c.Service = "" }, "no service"},
		{"no image", func(c *Config) { c.Image = "" }, "no image"},
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
			_, err := New(cfg, deps, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFormatWeights(t *testing.T) {
	if got := FormatWeights(map[string]int{"stable1": 230, "canary1": 26}); got != "canary1:26,stable1:230" {
		t.Fatalf("got %q", got)
	}
}
