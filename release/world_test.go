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
	// onCreate runs while the canary is being created; a cancelled ctx then fails the creation, as the
	// Docker client does, although Swarm may have created the service.
	onCreate func(ctx context.Context)
	// onCall runs after each effect is recorded, with its text ("update app app:v2").
	onCall func(call string)
	// gone are the services removed; a gone canary cannot be scaled or waited for.
	gone map[string]bool

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
	writes  int
	// writtenAt is when the record was last written, by the store's clock (the stable service "app"
	// changed then).
	writtenAt time.Time
	// mirror is the copy of the record kept on the canary (see Mirror); mirrorOff turns Mirror off.
	mirror []byte
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
	j.writtenAt = time.Now()
	return true, nil
}

func (j *memJournal) MirrorState(_ context.Context, canary string, record []byte) error {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	j.mirror = record
	return nil
}

func (j *memJournal) MirroredState(_ context.Context, stable string) ([]byte, error) {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	return j.mirror, nil
}

// removeRecord is what `docker service update --label-rm fridaymorning.state` does to the stable service.
func (j *memJournal) removeRecord() {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	j.rec, j.request = nil, ""
	j.version++
	j.writtenAt = time.Now()
}

func (j *memJournal) Beat(_ context.Context, service, owner string, at time.Time) error {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	if j.beats == nil {
		j.beats = map[string]time.Time{}
	}
	// The store stamps the change with its own clock; at, the driver's, is not trusted.
	j.beats[service] = time.Now()
	return nil
}

func (j *memJournal) LastBeat(_ context.Context, service string) (time.Duration, bool, error) {
	j.jmu.Lock()
	defer j.jmu.Unlock()
	if at, ok := j.beats[service]; ok {
		return time.Since(at), true, nil
	}
	if service == "app" && len(j.rec) > 0 {
		return time.Since(j.writtenAt), true, nil
	}
	return 0, false, nil
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
	if w.gone[service] {
		return "", fmt.Errorf("swarm: service %q not found", service)
	}
	if img, ok := w.images[service]; ok {
		return img, nil
	}
	return "app:v1", nil
}

func (w *world) record(format string, args ...any) {
	call := fmt.Sprintf(format, args...)
	w.mu.Lock()
	w.calls = append(w.calls, call)
	hook := w.onCall
	w.mu.Unlock()
	if hook != nil {
		hook(call)
	}
}

func (w *world) isGone(service string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone[service]
}

func (w *world) CreateCanary(ctx context.Context, stable, image, id string) (string, error) {
	w.record("create %s %s", stable, image)
	if w.createErr != nil {
		return "", w.createErr
	}
	if w.onCreate != nil {
		w.onCreate(ctx)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	w.mu.Lock()
	delete(w.gone, stable+"-canary")
	w.mu.Unlock()
	return stable + "-canary", nil
}

func (w *world) RemoveService(_ context.Context, name string) error {
	w.record("remove %s", name)
	if w.removeErr != nil {
		return w.removeErr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone == nil {
		w.gone = map[string]bool{}
	}
	w.gone[name] = true
	return nil
}

func (w *world) ScaleCanary(_ context.Context, canary, stable string, share float64) (bool, error) {
	if share < 100 && w.stableReplicas == 0 {
		// Below 100, the canary is scaled only where a test says stable has replicas to match.
		return false, nil
	}
	if share >= 100 {
		w.record("scale %s", canary)
	} else {
		w.record("scale %s to %g%% of %d", canary, share, w.stableReplicas)
	}
	if w.isGone(canary) {
		return false, fmt.Errorf("swarm: service %q not found", canary)
	}
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
	if w.isGone(service) {
		return fmt.Errorf("swarm: service %q not found", service)
	}
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
		RetryInterval:    time.Millisecond,
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

// countEvents counts the events of kind whose message contains part.
func countEvents(events []Event, kind Kind, part string) int {
	n := 0
	for _, ev := range events {
		if ev.Kind == kind && strings.Contains(ev.Message, part) {
			n++
		}
	}
	return n
}
