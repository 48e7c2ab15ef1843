package release

import (
	"context"
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

	verdicts    []verdict.Verdict // returned by Analyze in turn; the last one repeats
	early       []verdict.Verdict // returned by early looks in turn; the last one repeats; none: inconclusive
	earlyCalls  int
	windows     []verdict.Window // every final window judged
	counts      map[string]verdict.Tally
	analyzeErr  error
	createErr   error
	readyErr    map[string]error // by service
	updateErr   error
	shiftErr    map[float64]error
	shiftFailsN int // Shift(0) fails this many times, once the canary had traffic, before succeeding
	hadTraffic  bool
	// stableReplicas, when set, makes ScaleCanary below 100% add tasks (and fail with scaleErr).
	stableReplicas int
	scaleErr       error
	removeErr      error
	onAnalyze      func(n int)
	onEarly        func(n int) // called with each scripted early look's number, before it answers
	// verify answers Verify's n-th call (from 0); nil: nothing drifted, nothing stale.
	verify       func(n int) (drifted map[string]int, stale bool)
	verifyCalls  int
	analyzeCalls int

	images map[string]string // service → image, for Image, Current and Update
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

func (w *world) ScaleCanary(_ context.Context, canary, stable string, share float64) (bool, error) {
	if share >= 100 {
		w.record("scale %s", canary)
		return true, nil
	}
	// Below 100, the canary is scaled only where a test says stable has replicas to match.
	if w.stableReplicas == 0 {
		return false, nil
	}
	w.record("scale %s to %g%% of %d", canary, share, w.stableReplicas)
	return true, w.scaleErr
}

// Current is the image: the world's targets are images.
func (w *world) Current(ctx context.Context, service string) (string, error) {
	return w.Image(ctx, service)
}

func (w *world) Update(_ context.Context, service, image string) error {
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
	w.mu.Lock()
	w.hadTraffic = w.hadTraffic || pct > 0
	w.mu.Unlock()
	if pct == 0 && w.shiftFailsN > 0 && w.hadTraffic {
		w.shiftFailsN--
		return nil, 0, errors.New("api down")
	}
	if err := w.shiftErr[pct]; err != nil {
		return nil, 0, err
	}
	return map[string]int{"stable1": int(100 - pct), "canary1": int(pct)}, pct, nil
}

func (w *world) Verify(_ context.Context, pct float64, set map[string]int) (map[string]int, bool, error) {
	w.mu.Lock()
	n := w.verifyCalls
	w.verifyCalls++
	w.mu.Unlock()
	if w.verify == nil {
		return nil, false, nil
	}
	drifted, stale := w.verify(n)
	if len(drifted) > 0 || stale {
		w.record("verify %g: drifted %v, stale %v", pct, drifted, stale)
	}
	return drifted, stale, nil
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
		if w.onEarly != nil {
			w.onEarly(n)
		}
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
