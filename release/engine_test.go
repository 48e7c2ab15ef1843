package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// world is a scripted stand-in for Swarm, HAProxy and InfluxDB that records every call in order, so a
// test can assert the exact sequence of effects the engine produced. Unscripted failures are zero.
type world struct {
	mu    sync.Mutex
	calls []string

	verdicts     []verdict.Verdict // returned by Analyze in turn; the last one repeats
	early        []verdict.Verdict // returned by early looks in turn; the last one repeats; none: inconclusive
	earlyCalls   int
	windows      []verdict.Window // every final window judged
	counts       map[string]verdict.Tally
	analyzeErr   error
	createErr    error
	readyErr     map[string]error // by service
	updateErr    error
	shiftErr     map[float64]error
	shiftFailsN  int // Shift(0) fails this many times before succeeding
	removeErr    error
	onAnalyze    func(n int)
	analyzeCalls int

	images map[string]string // service → image, for Image and UpdateImage
	memJournal
}

// memJournal is an in-memory Journal and Pulse with Swarm's compare-and-swap on a version.
type memJournal struct {
	jmu     sync.Mutex
	rec     []byte
	request string
	version uint64
	beats   map[string]time.Time
	owners  map[string]string
	writes  int
}

func (j *memJournal) ReadState(_ context.Context, service string) ([]byte, string, uint64, error) {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	return j.rec, j.request, j.version, nil
}

func (j *memJournal) WriteState(_ context.Context, service string, version uint64, record []byte, request string) (bool, error) {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	if version != j.version {
		return false, nil
	}
	j.rec, j.request = record, request
	j.version++
	j.writes++
	return true, nil
}

func (j *memJournal) Beat(_ context.Context, service, owner string, at time.Time) error {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	if j.beats == nil {
		j.beats, j.owners = map[string]time.Time{}, map[string]string{}
	}
	j.beats[service], j.owners[service] = at, owner
	return nil
}

func (j *memJournal) LastBeat(_ context.Context, service string) (string, time.Time, error) {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	return j.owners[service], j.beats[service], nil
}

func (j *memJournal) stored(t *testing.T) *Record {
	t.Helper()
	j.jmu.Lock()
	defer j.jmu.Unlock()
	r, err := ParseRecord(j.rec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *world) Image(_ context.Context, service string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if img, ok := w.images[service]; ok {
		return img, nil
	}
	return "app:v1", nil
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

func (w *world) ScaleCanary(_ context.Context, canary, stable string) error {
	w.record("scale %s", canary)
	return nil
}

func (w *world) UpdateImage(_ context.Context, service, image string) error {
	w.record("update %s %s", service, image)
	if w.updateErr != nil {
		return w.updateErr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.images == nil {
		w.images = map[string]string{}
	}
	w.images[service] = image
	return nil
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

func (w *world) Counts(context.Context) (map[string]verdict.Tally, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]verdict.Tally{}
	for k, v := range w.counts {
		out[k] = v
	}
	// Every reading finds 100 more stable and 10 more canary requests, one a 5xx.
	for k, d := range map[string]verdict.Tally{GroupStable: {Requests: 100}, GroupCanary: {Requests: 10, Errors5xx: 1}} {
		t := w.counts[k]
		w.counts[k] = verdict.Tally{Requests: t.Requests + d.Requests, Errors5xx: t.Errors5xx + d.Errors5xx}
	}
	return out, nil
}

func (w *world) Analyze(_ context.Context, win verdict.Window) (verdict.Verdict, error) {
	from, to, share := win.From, win.To, win.Share
	if win.Early {
		w.mu.Lock()
		n := w.earlyCalls
		w.earlyCalls++
		w.mu.Unlock()
		if win.Looks < 1 || !to.After(from) {
			return verdict.Verdict{}, fmt.Errorf("early look with %d looks over %s..%s", win.Looks, from, to)
		}
		if len(w.early) == 0 {
			return verdict.Verdict{Result: verdict.ResultInconclusive, Early: true}, nil
		}
		w.record("early %g", share)
		return w.early[min(n, len(w.early)-1)], nil
	}
	w.record("analyze %g", share)
	w.mu.Lock()
	w.windows = append(w.windows, win)
	n := w.analyzeCalls
	w.analyzeCalls++
	w.mu.Unlock()
	if w.onAnalyze != nil {
		w.onAnalyze(n)
	}
	if !to.After(from) {
		return verdict.Verdict{}, fmt.Errorf("empty window %s..%s", from, to)
	}
	if w.analyzeErr != nil {
		return verdict.Verdict{Result: verdict.ResultInconclusive, Reason: w.analyzeErr.Error()}, w.analyzeErr
	}
	if len(w.verdicts) == 0 {
		return verdict.Verdict{Result: verdict.ResultPass, Reason: "all checks pass"}, nil
	}
	v := w.verdicts[min(n, len(w.verdicts)-1)]
	return v, nil
}

func (w *world) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.calls, "\n")
}

func deps(w *world, pre ...Preflight) Deps {
	return Deps{Canaries: w, Rollout: w, Router: w, Analyzer: w, Journal: &w.memJournal, Pulse: &w.memJournal, Preflight: pre}
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
		PollInterval:     time.Millisecond,
		BeatInterval:     time.Millisecond,
		EarlyInterval:    -1,
		StartedBy:        "tester",
	}
}

func run(t *testing.T, ctx context.Context, cfg Config, w *world, pre ...Preflight) (Outcome, error, []Event) {
	t.Helper()
	var events []Event
	e, err := New(cfg, deps(w, pre...), func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(ctx)
	return out, err, events
}

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
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
		},
		{
			name:  "failing step aborts: canary to 0 first, then drain and remove, stable untouched",
			world: &world{verdicts: []verdict.Verdict{pass, fail}},
			want:  OutcomeAbortedAnalysis,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" + abortTail,
		},
		{
			name:  "inconclusive step is extended, then aborted: it never promotes",
			world: &world{verdicts: []verdict.Verdict{inconclusive}},
			cfg:   func(c *Config) { c.MaxExtensions = 2 },
			want:  OutcomeAbortedInconclusive,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nanalyze 10\n" + abortTail,
		},
		{
			name:  "inconclusive then pass goes on",
			world: &world{verdicts: []verdict.Verdict{inconclusive, pass, pass}},
			want:  OutcomePromoted,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nanalyze 10\nshift 50\nanalyze 50\n" +
				"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary",
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
			world: &world{verdicts: []verdict.Verdict{fail}, shiftFailsN: 2},
			want:  OutcomeAbortedAnalysis,
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 0\nshift 0\n" + abortTail,
		},
		{
			name:    "stable that does not converge keeps traffic on the healthy canary",
			world:   &world{readyErr: map[string]error{"app": errors.New("task failed")}},
			want:    OutcomeFailed,
			wantErr: "all traffic stays on the healthy canary app-canary",
			calls: "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
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

func TestFormatWeights(t *testing.T) {
	if got := FormatWeights(map[string]int{"stable1": 230, "canary1": 26}); got != "canary1:26,stable1:230" {
		t.Fatalf("got %q", got)
	}
}

func TestRecordKeptInJournal(t *testing.T) {
	w := &world{}
	out, err, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("%s %v", out, err)
	}
	r := w.stored(t)
	if r.ID != "r-test" || r.Phase != PhasePromoted || r.Outcome != OutcomePromoted || r.Active() ||
		r.StableImage != "app:v1" || r.Image != "app:v2" || r.StartedBy != "tester" || r.LastVerdict == nil || r.LastVerdict.Step != 2 {
		t.Fatalf("record %+v", r)
	}
	if w.writes < 6 {
		t.Errorf("only %d journal writes: each transition should be kept", w.writes)
	}
}

func storeRecord(t *testing.T, w *world, r Record) {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	w.rec = raw
	w.version++
}

func TestRunRefusesWhenAReleaseIsInProgress(t *testing.T) {
	w := &world{}
	storeRecord(t, w, Record{ID: "r-other", Service: "app", Image: "app:v9", Phase: PhaseBaking, Step: 1, Steps: []float64{10},
		StartedBy: "bob@ci", StartedAt: time.Now(), UpdatedAt: time.Now(), Owner: "someone"})
	out, err, _ := run(t, context.Background(), testConfig(), w)
	var locked *LockedError
	if out != OutcomeFailed || !errors.As(err, &locked) || locked.Record.ID != "r-other" {
		t.Fatalf("%s %v", out, err)
	}
	for _, want := range []string{"r-other", "bob@ci", "fridaymorning abort app", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := w.log(); got != "" {
		t.Fatalf("a refused release changed things:\n%s", got)
	}
}

func TestConcurrentReleasesOnlyOneProceeds(t *testing.T) {
	w := &world{}
	var wg sync.WaitGroup
	outs := make([]Outcome, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := testConfig()
			cfg.ReleaseID = fmt.Sprintf("r-%d", i)
			cfg.Bake = 50 * time.Millisecond // long enough for the two to overlap
			e, err := New(cfg, deps(w), nil)
			if err != nil {
				errs[i] = err
				return
			}
			outs[i], errs[i] = e.Run(context.Background())
		}()
	}
	wg.Wait()
	var promoted, locked int
	for i := range 2 {
		var le *LockedError
		switch {
		case outs[i] == OutcomePromoted:
			promoted++
		case errors.As(errs[i], &le):
			locked++
		}
	}
	if promoted != 1 || locked != 1 {
		t.Fatalf("outcomes %v, errors %v: want exactly one promoted and one refused", outs, errs)
	}
}

func TestRequestsFromAnotherProcess(t *testing.T) {
	t.Run("abort", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Bake = 30 * time.Millisecond
		w.onAnalyze = func(n int) {
			if _, err := Request(context.Background(), &w.memJournal, "app", CommandAbort); err != nil {
				t.Error(err)
			}
		}
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomeAbortedOperator || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		log := w.log()
		if !strings.HasSuffix(log, "shift 0\ndrain canary\nremove app-canary") || strings.Contains(log, "update") {
			t.Fatalf("calls:\n%s", log)
		}
		if r := w.stored(t); r.Outcome != OutcomeAbortedOperator || r.Cause != "operator" {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("promote skips the remaining steps", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Steps = []float64{10, 50, 75}
		cfg.Bake = 30 * time.Millisecond
		w.onAnalyze = func(n int) {
			if n == 0 {
				if _, err := Request(context.Background(), &w.memJournal, "app", CommandPromote); err != nil {
					t.Error(err)
				}
			}
		}
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if log := w.log(); strings.Contains(log, "analyze 75") || !strings.Contains(log, "update app app:v2") {
			t.Fatalf("calls:\n%s", log)
		}
	})
	t.Run("no release to ask", func(t *testing.T) {
		w := &world{}
		if _, err := Request(context.Background(), &w.memJournal, "app", CommandAbort); !errors.Is(err, ErrNoRelease) {
			t.Fatalf("err = %v", err)
		}
	})
}

// deadRelease stores a release whose process died in phase at step, with its canary running.
func deadRelease(t *testing.T, w *world, phase Phase, step int) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
		Steps: []float64{10, 50}, Step: step, Phase: phase, Cause: "analysis", Message: "step 1 failed",
		StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
}

func resume(t *testing.T, w *world, mode ResumeMode, force bool) (Outcome, error) {
	t.Helper()
	cfg := testConfig()
	cfg.ReleaseID, cfg.Image, cfg.Steps = "", "", []float64{99} // all three come from the record
	e, err := New(cfg, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.Resume(context.Background(), mode, force)
}

func TestResume(t *testing.T) {
	promoteTail := "scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"
	abortTail := "shift 0\ndrain canary\nremove app-canary"
	tests := []struct {
		name  string
		phase Phase
		step  int
		mode  ResumeMode
		setup func(w *world)
		want  Outcome
		calls string
	}{
		{"starting: the existing canary is reused", PhaseStarting, 0, ResumeContinue, nil, OutcomePromoted,
			"create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" + promoteTail},
		{"baking step 2: the step is baked again", PhaseBaking, 2, ResumeContinue, nil, OutcomePromoted,
			"shift 50\nanalyze 50\n" + promoteTail},
		{"promoting: the promotion runs again", PhasePromoting, 2, ResumeContinue, nil, OutcomePromoted, promoteTail},
		{"promoting with stable already updated: no second update", PhasePromoting, 2, ResumeContinue,
			func(w *world) { w.images = map[string]string{"app": "app:v2"} }, OutcomePromoted,
			"scale app-canary\nready app-canary\nup canary\nshift 100\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"},
		{"aborting: the abort runs again", PhaseAborting, 1, ResumeContinue, nil, OutcomeAbortedAnalysis, abortTail},
		{"abort a baking release", PhaseBaking, 1, ResumeAbort, nil, OutcomeAbortedOperator, abortTail},
		{"promote a baking release", PhaseBaking, 1, ResumePromote, nil, OutcomePromoted, promoteTail},
		{"abort after a promotion that failed half-way: stable back to its image first", PhasePromoting, 2, ResumeAbort,
			func(w *world) { w.images = map[string]string{"app": "app:v2"} }, OutcomeAbortedOperator,
			"update app app:v1\nready app\nup stable\n" + abortTail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{}
			deadRelease(t, w, tt.phase, tt.step)
			if tt.setup != nil {
				tt.setup(w)
			}
			out, err := resume(t, w, tt.mode, false)
			if out != tt.want {
				t.Fatalf("outcome %s (%v), want %s\ncalls:\n%s", out, err, tt.want, w.log())
			}
			if got := w.log(); got != tt.calls {
				t.Fatalf("calls:\n%s\nwant:\n%s", got, tt.calls)
			}
			r := w.stored(t)
			if r.Active() || r.ID != "r-dead" || r.StartedBy != "alice" || r.Owner == "dead-process" {
				t.Fatalf("record after resume %+v", r)
			}
		})
	}
}

func TestResumeRefusesALiveRelease(t *testing.T) {
	w := &world{}
	deadRelease(t, w, PhaseBaking, 1)
	_ = w.Beat(context.Background(), "app-canary", "dead-process", time.Now())
	if _, err := resume(t, w, ResumeContinue, false); err == nil || !strings.Contains(err.Error(), "driven by a live process") {
		t.Fatalf("err = %v", err)
	}
	if got := w.log(); got != "" {
		t.Fatalf("calls:\n%s", got)
	}
	if out, err := resume(t, w, ResumeAbort, true); out != OutcomeAbortedOperator || err != nil {
		t.Fatalf("forced take-over: %s %v", out, err)
	}
}

func TestResumeWithoutARelease(t *testing.T) {
	w := &world{}
	if _, err := resume(t, w, ResumeContinue, false); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("err = %v", err)
	}
}

func TestLosingOwnershipStopsAtOnce(t *testing.T) {
	w := &world{}
	w.onAnalyze = func(n int) {
		// Another process takes the release over while this one bakes.
		_, err := casRecord(context.Background(), &w.memJournal, "app", func(cur *Record, req string) (*Record, string, error) {
			cur.Owner = "usurper"
			return cur, req, nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	out, err, _ := run(t, context.Background(), testConfig(), w)
	if out != OutcomeFailed || !errors.Is(err, ErrLostOwnership) {
		t.Fatalf("%s %v", out, err)
	}
	if log := w.log(); strings.Contains(log, "shift 0") || strings.Contains(log, "remove") || strings.Contains(log, "update") {
		t.Fatalf("the process kept acting after losing the release:\n%s", log)
	}
}

func TestWarmStandby(t *testing.T) {
	promoted := "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10\nshift 50\nanalyze 50\n" +
		"scale app-canary\nready app-canary\nup canary\nshift 100\nupdate app app:v2\nready app\nup stable\nshift 0\n" +
		"update app-canary app:v1\nready app-canary\nup canary\n"
	t.Run("kept until its time is up, then removed", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Standby = 50 * time.Millisecond
		out, err, events := run(t, context.Background(), cfg, w)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), promoted+"drain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
		sawStandby := false
		for _, ev := range events {
			sawStandby = sawStandby || ev.Phase == PhaseStandby
		}
		if !sawStandby {
			t.Error("no event in phase standby")
		}
	})
	t.Run("rollback from another process sends traffic back at once", func(t *testing.T) {
		w := &world{}
		cfg := testConfig()
		cfg.Standby = time.Hour
		go func() {
			for {
				if r := w.stored(t); r != nil && r.Phase == PhaseStandby {
					if _, err := Request(context.Background(), &w.memJournal, "app", CommandRollback); err != nil {
						t.Error(err)
					}
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		out, err, _ := run(t, context.Background(), cfg, w)
		if out != OutcomeRolledBack || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		want := promoted + "shift 100\nupdate app app:v1\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"
		if got := w.log(); got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
		if r := w.stored(t); r.Phase != PhaseRolledBack || r.Outcome != OutcomeRolledBack || r.Active() {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("rollback after the process died", func(t *testing.T) {
		w := &world{images: map[string]string{"app": "app:v2"}}
		until := time.Now().Add(time.Hour)
		old := time.Now().Add(-time.Hour)
		storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
			Steps: []float64{10, 50}, Phase: PhaseStandby, Outcome: OutcomePromoted, StandbyUntil: &until,
			StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
		out, err := resume(t, w, ResumeRollback, false)
		if out != OutcomeRolledBack || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), "shift 100\nupdate app app:v1\nready app\nup stable\nshift 0\ndrain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("an expired standby is removed, not rolled back to", func(t *testing.T) {
		w := &world{images: map[string]string{"app": "app:v2"}}
		until := time.Now().Add(-time.Minute)
		old := time.Now().Add(-time.Hour)
		storeRecord(t, w, Record{ID: "r-dead", Service: "app", StableImage: "app:v1", Image: "app:v2", Canary: "app-canary",
			Steps: []float64{10, 50}, Phase: PhaseStandby, Outcome: OutcomePromoted, StandbyUntil: &until,
			StartedBy: "alice", StartedAt: old, UpdatedAt: old, Owner: "dead-process"})
		out, err := resume(t, w, ResumeRollback, false)
		if out != OutcomePromoted || err != nil {
			t.Fatalf("%s %v", out, err)
		}
		if got, want := w.log(), "drain canary\nremove app-canary"; got != want {
			t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("a new release is refused while the standby runs", func(t *testing.T) {
		w := &world{}
		until := time.Now().Add(time.Hour)
		storeRecord(t, w, Record{ID: "r-prev", Service: "app", Phase: PhaseStandby, StandbyUntil: &until, Owner: "x", StartedAt: time.Now(), UpdatedAt: time.Now()})
		if out, err, _ := run(t, context.Background(), testConfig(), w); out != OutcomeFailed || err == nil || !strings.Contains(err.Error(), "r-prev") {
			t.Fatalf("%s %v", out, err)
		}
	})
}

func TestEarlyLookAbortsAtOnce(t *testing.T) {
	w := &world{early: []verdict.Verdict{{Result: verdict.ResultInconclusive}, {Result: verdict.ResultInconclusive}, {Result: verdict.ResultFail, Reason: "canary error rate 50% > 1%"}}}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval, cfg.ProgressInterval = time.Hour, 5*time.Millisecond, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err, events := run(t, ctx, cfg, w)
	if out != OutcomeAbortedAnalysis || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got, want := w.log(), "create app app:v2\nready app-canary\nup canary\nshift 10\nearly 10\nearly 10\nearly 10\nshift 0\ndrain canary\nremove app-canary"; got != want {
		t.Errorf("calls:\n%s\nwant\n%s", got, want)
	}
	var early *Event
	for i := range events {
		if events[i].Kind == KindAnalysis {
			early = &events[i]
		}
	}
	if early == nil || !early.Verdict.Early || !strings.Contains(early.Message, "early look after") || w.earlyCalls != 3 {
		t.Errorf("early verdict event %+v after %d looks", early, w.earlyCalls)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if rec.LastVerdict == nil || rec.LastVerdict.Result != verdict.ResultFail || !strings.Contains(rec.Message, "failed an early look") {
		t.Errorf("record %+v", rec)
	}
}

func TestEarlyLooksThatFindNothingLetTheBakeEnd(t *testing.T) {
	w := &world{early: []verdict.Verdict{{Result: verdict.ResultInconclusive}, {Result: verdict.ResultPass}}}
	cfg := testConfig()
	cfg.Bake, cfg.EarlyInterval = 60*time.Millisecond, 5*time.Millisecond
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if w.earlyCalls < 4 {
		t.Errorf("only %d early looks in two bakes of 60ms every 5ms", w.earlyCalls)
	}
}

func TestSecondSignalReachesTheAnalyzer(t *testing.T) {
	w := &world{counts: map[string]verdict.Tally{}}
	d := deps(w)
	d.Counter = w
	var events []Event
	e, err := New(testConfig(), d, func(ev Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(w.windows) != 2 {
		t.Fatalf("%d windows judged", len(w.windows))
	}
	for _, win := range w.windows {
		// One reading when the step starts, one when its bake ends: one increment each.
		if win.Canary == nil || *win.Canary != (verdict.Tally{Requests: 10, Errors5xx: 1}) || win.Stable == nil || win.Stable.Requests != 100 {
			t.Errorf("window counts canary %+v stable %+v", win.Canary, win.Stable)
		}
	}
	for _, ev := range events {
		if ev.Kind == KindAnalysis && (ev.Observed == nil || ev.Observed.Canary != 10 || ev.Observed.Stable != 100) {
			t.Errorf("analysis event without the observed split: %+v", ev.Observed)
		}
	}
}

func TestInconclusiveCanPauseForAHuman(t *testing.T) {
	w := &world{verdicts: []verdict.Verdict{{Result: verdict.ResultInconclusive, Reason: "canary has 3 requests, needs 50"}, {Result: verdict.ResultPass}}}
	cfg := testConfig()
	cfg.OnInconclusive, cfg.MaxExtensions = "pause", -1
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePaused || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got, want := w.log(), "create app app:v2\nready app-canary\nup canary\nshift 10\nanalyze 10"; got != want {
		t.Errorf("a pause changed traffic:\n%s\nwant\n%s", got, want)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if !rec.Active() || rec.Outcome != OutcomePaused || rec.Phase != PhaseBaking || !strings.Contains(rec.Message, "paused for a human") {
		t.Fatalf("record %+v", rec)
	}
	// No process drives a paused release: another one may take it up at once, here to promote it.
	if _, alive, _ := Liveness(context.Background(), &w.memJournal, rec, time.Hour, time.Now()); alive {
		t.Error("a paused release counts as driven by a live process")
	}
	e, err := New(Config{Service: "app", Steps: []float64{1}, Bake: time.Millisecond, PollInterval: time.Millisecond, EarlyInterval: -1}, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumePromote, false); out != OutcomePromoted || err != nil {
		t.Fatalf("promote after pause: %s, %v", out, err)
	}
}

// steered runs a release whose emit function answers events with bake commands.
func steered(t *testing.T, cfg Config, w *world, on func(e *Engine, ev Event)) (Outcome, error, []Event) {
	t.Helper()
	var events []Event
	var e *Engine
	e, err := New(cfg, deps(w), func(ev Event) {
		events = append(events, ev)
		on(e, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background())
	return out, err, events
}

func TestSkipEndsTheBakeNow(t *testing.T) {
	cfg := testConfig()
	cfg.Bake = time.Hour
	out, err, events := steered(t, cfg, &world{}, func(e *Engine, ev Event) {
		if ev.Kind == KindBake {
			e.Request(CommandSkip)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	n := 0
	for _, ev := range events {
		if ev.Kind == KindControl && strings.Contains(ev.Message, "skipped") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d skip events, want one per step", n)
	}
}

func TestPauseStopsTheClockUntilContinue(t *testing.T) {
	cfg := testConfig()
	cfg.Bake, cfg.ProgressInterval = 30*time.Millisecond, 10*time.Millisecond
	var pausedAt time.Time
	var continued time.Duration
	out, err, events := steered(t, cfg, &world{}, func(e *Engine, ev Event) {
		switch {
		case ev.Kind == KindBake && ev.Step == 1 && pausedAt.IsZero():
			pausedAt = time.Now()
			e.Request(CommandPause)
		case ev.Kind == KindProgress && strings.HasPrefix(ev.Message, "paused") && time.Since(pausedAt) > 150*time.Millisecond && continued == 0:
			continued = time.Since(pausedAt)
			e.Request(CommandContinue)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	// The bake is 30ms; it lasted until the operator continued it, well after.
	var got []string
	for _, ev := range events {
		if ev.Kind == KindControl {
			got = append(got, strings.SplitN(ev.Message, ":", 2)[0])
		}
	}
	if strings.Join(got, ",") != "paused by an operator,continued by an operator" || continued == 0 {
		t.Errorf("control events %q, continued after %s", got, continued)
	}
}

func TestNudgeMovesTheShareAndRestartsTheWindow(t *testing.T) {
	cfg := testConfig()
	cfg.Bake = time.Hour
	cfg.Steps = []float64{10}
	w := &world{}
	nudged := false
	out, err, _ := steered(t, cfg, w, func(e *Engine, ev Event) {
		switch {
		case ev.Kind == KindBake && !nudged:
			nudged = true
			e.Request(CommandNudgeUp)
			e.Request(CommandNudgeUp)
			e.Request(CommandNudgeDown)
			e.Request(CommandSkip)
		}
	})
	if out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got := w.log(); !strings.Contains(got, "shift 10\nshift 15\nshift 20\nshift 15\nanalyze 15\n") {
		t.Errorf("calls:\n%s", got)
	}
}

func TestPauseBeforePromoteStopsAtTheGate(t *testing.T) {
	w := &world{}
	cfg := testConfig()
	cfg.PauseBeforePromote = true
	out, err, _ := run(t, context.Background(), cfg, w)
	if out != OutcomePaused || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if got := w.log(); strings.Contains(got, "update") || strings.Contains(got, "remove") || !strings.HasSuffix(got, "analyze 50") {
		t.Errorf("the gate changed more than the steps:\n%s", got)
	}
	rec, _ := Load(context.Background(), &w.memJournal, "app")
	if !rec.Active() || rec.Outcome != OutcomePaused || !strings.Contains(rec.Message, "promotion gate") {
		t.Fatalf("record %+v", rec)
	}
	// A later job promotes it.
	e, err := New(Config{Service: "app", Steps: []float64{1}, Bake: time.Millisecond, PollInterval: time.Millisecond, EarlyInterval: -1}, deps(w), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Resume(context.Background(), ResumePromote, false); out != OutcomePromoted || err != nil {
		t.Fatalf("promote at the gate: %s, %v", out, err)
	}
	if got := w.log(); !strings.Contains(got, "update app app:v2") {
		t.Errorf("not promoted:\n%s", got)
	}
}

func TestCountersThatGoBackAreNoSecondSignal(t *testing.T) {
	w := &world{counts: map[string]verdict.Tally{GroupStable: {Requests: 1e6}, GroupCanary: {Requests: 1e5}}}
	d := deps(w)
	d.Counter = w
	var warnings []string
	cfg := testConfig()
	cfg.Steps = []float64{10}
	e, err := New(cfg, d, func(ev Event) {
		if ev.Kind == KindTraffic && ev.CanaryPercent == 10 {
			// HAProxy reloads: its new worker counts from zero.
			w.mu.Lock()
			w.counts = map[string]verdict.Tally{}
			w.mu.Unlock()
		}
		if ev.Kind == KindWarning {
			warnings = append(warnings, ev.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.Run(context.Background()); out != OutcomePromoted || err != nil {
		t.Fatalf("outcome %s, %v", out, err)
	}
	if len(w.windows) != 1 || w.windows[0].Canary != nil || w.windows[0].Stable != nil {
		t.Errorf("the window carried counts across a reset: %+v", w.windows)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "counters went back") {
		t.Errorf("warnings %q", warnings)
	}
}
