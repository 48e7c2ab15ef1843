package analysis

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// stream draws the requests of a group for looks: errors at a rate, latencies of a log-normal service
// (median in ms, spread sigma) times scale plus shift.
type stream struct {
	errRate, median, sigma, scale, shift float64
}

func (s stream) interval(rng *rand.Rand, n int, cuts []Cut) Interval {
	iv := Interval{Requests: int64(n), Timed: int64(n), Above: make([]int64, len(cuts))}
	for range n {
		if rng.Float64() < s.errRate {
			iv.Errors++
			iv.Errors5xx++
		}
		v := math.Round(s.scale*s.median*math.Exp(s.sigma*rng.NormFloat64()) + s.shift)
		iv.Latencies = append(iv.Latencies, v)
		for i, c := range cuts {
			if v > c.Ms {
				iv.Above[i]++
			}
		}
	}
	return iv
}

var healthyStream = stream{errRate: 0.001, median: 100, sigma: 0.4, scale: 1}

// release runs looks of 2 s at rate requests a second over windows of looksPer looks at the shares,
// with the canary drawn from canary, and returns the first failing verdict's look number (0 if none)
// and the last verdict.
func release(rng *rand.Rand, th Thresholds, rate float64, shares []float64, looksPer int, canary stream) (int, verdict.Verdict) {
	var seq *verdict.Sequence
	var v verdict.Verdict
	t0 := time.Unix(1_700_000_000, 0)
	look := 0
	for _, share := range shares {
		from := t0.Add(time.Duration(look) * 2 * time.Second)
		since := from
		for i := 1; i <= looksPer; i++ {
			look++
			to := from.Add(time.Duration(i) * 2 * time.Second)
			cuts := LookCuts(seq, th)
			nc := int(rate * 2 * share / 100)
			w := verdict.Window{From: from, To: to, Share: share, Early: i < looksPer, Sequence: seq}
			l := Look{Window: w, Since: since, Canary: canary.interval(rng, nc, cuts.Canary), Stable: healthyStream.interval(rng, int(rate*2)-nc, cuts.Stable)}
			v = JudgeLook(l, th)
			seq, since = v.Sequence, to
			if v.Result == verdict.ResultFail {
				return look, v
			}
		}
	}
	return 0, v
}

var seqThresholds = Thresholds{MinRequests: 50, MaxErrorRate: 1, MaxErrorRateIncrease: 1, MaxP99: ms(500), MaxLatencyRatio: 1.25, LatencySlack: ms(10)}

// TestJudgeLookHealthyRarelyFails: canaries identical to stable, looked at every 2 s over three steps,
// are aborted no more often than the release's budget allows.
func TestJudgeLookHealthyRarelyFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 37))
	const releases = 300
	failed := 0
	for range releases {
		if n, v := release(rng, seqThresholds, 100, []float64{10, 25, 50}, 15, healthyStream); n > 0 {
			failed++
			t.Logf("look %d: %s", n, v.Reason)
		}
	}
	if rate := float64(failed) / releases; rate > 0.02 {
		t.Errorf("%d of %d healthy releases failed (%.1f%%), budget 2%%", failed, releases, 100*rate)
	}
}

// TestJudgeLookFindsBadCanaries: a clearly bad canary fails within a few looks, and the reason says
// which test, with which evidence.
func TestJudgeLookFindsBadCanaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 43))
	tests := []struct {
		name    string
		canary  stream
		within  int
		failing string
	}{
		{"half the requests failing", stream{errRate: 0.5, median: 100, sigma: 0.4, scale: 1}, 1, verdict.CheckErrorRate},
		{"5% errors", stream{errRate: 0.05, median: 100, sigma: 0.4, scale: 1}, 20, verdict.CheckErrorRate},
		{"250 ms slower", stream{errRate: 0.001, median: 100, sigma: 0.4, scale: 1, shift: 250}, 2, verdict.CheckLatencyShift},
		{"50% slower", stream{errRate: 0.001, median: 100, sigma: 0.4, scale: 1.5}, 10, verdict.CheckLatencyShift},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, v := release(rng, seqThresholds, 100, []float64{10}, 30, tt.canary)
			if n == 0 || n > tt.within {
				t.Fatalf("failed at look %d, want within %d: %s", n, tt.within, v.Reason)
			}
			var first verdict.Check
			for _, c := range v.Checks {
				if c.Result == verdict.ResultFail {
					first = c
					break
				}
			}
			if first.Name != tt.failing {
				t.Errorf("first failing check %s, want %s: %s", first.Name, tt.failing, v.Reason)
			}
			if !(first.PValue < first.Alpha) || first.EValue < 1/first.Alpha || !strings.Contains(first.Statistic, "since the release began") {
				t.Errorf("evidence of %s: p %v, α %v, e %v, %q", first.Name, first.PValue, first.Alpha, first.EValue, first.Statistic)
			}
			if !strings.Contains(v.Reason, "sequential") || !strings.Contains(v.Reason, "always-valid p") {
				t.Errorf("reason %q does not name the test and its evidence", v.Reason)
			}
		})
	}
}

// TestJudgeLookIsPure: a look changes nothing of the sequence it was given; the same look twice gives
// the same verdict.
func TestJudgeLookIsPure(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	_, v := release(rng, seqThresholds, 100, []float64{10}, 5, healthyStream)
	prev := v.Sequence
	before, _ := json.Marshal(prev)
	stepBefore := *prev.Step.(*stepState)
	cuts := LookCuts(prev, seqThresholds)
	l := Look{Window: verdict.Window{From: prev.From, To: prev.Through.Add(2 * time.Second), Share: 10, Early: true, Sequence: prev},
		Since: prev.Through, Canary: stream{errRate: 0.3, median: 100, sigma: 0.4, scale: 2}.interval(rng, 20, cuts.Canary), Stable: healthyStream.interval(rng, 180, cuts.Stable)}
	a, b := JudgeLook(l, seqThresholds), JudgeLook(l, seqThresholds)
	after, _ := json.Marshal(prev)
	if string(before) != string(after) || !reflect.DeepEqual(stepBefore, *prev.Step.(*stepState)) {
		t.Error("JudgeLook changed the sequence it was given")
	}
	if a.Reason != b.Reason || !reflect.DeepEqual(a.Sequence.Evidence, b.Sequence.Evidence) {
		t.Error("the same look judged twice differs")
	}
}

// TestJudgeLookWindows: a new window starts the step's figures afresh and keeps the release's
// evidence; the sequence survives JSON (the release record) and a takeover starts a new window.
func TestJudgeLookWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	th := seqThresholds
	_, v := release(rng, th, 100, []float64{10, 25}, 5, healthyStream)
	seq := v.Sequence
	if seq.Windows != 2 || seq.Looks != 10 {
		t.Fatalf("windows %d, looks %d, want 2 and 10", seq.Windows, seq.Looks)
	}
	if got, all := v.Canary.Requests, seq.Evidence[verdict.CheckErrorRate].N; got != 5*50 || all != 5*20+5*50 {
		t.Errorf("the window has %d canary requests (want 250), the release %d (want 350)", got, all)
	}
	raw, err := json.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	var resumed verdict.Sequence
	if err := json.Unmarshal(raw, &resumed); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resumed.Evidence, seq.Evidence) || !reflect.DeepEqual(resumed.Cuts, seq.Cuts) {
		t.Error("the evidence does not survive JSON")
	}
	from := seq.Through.Add(10 * time.Second)
	cuts := LookCuts(&resumed, th)
	l := Look{Window: verdict.Window{From: from, To: from.Add(2 * time.Second), Share: 25, Early: true, Sequence: &resumed},
		Since: from, Canary: healthyStream.interval(rng, 50, cuts.Canary), Stable: healthyStream.interval(rng, 150, cuts.Stable)}
	v = JudgeLook(l, th)
	if v.Sequence.Windows != 3 || v.Canary.Requests != 50 || v.Sequence.Evidence[verdict.CheckErrorRate].N != 400 {
		t.Errorf("after a takeover: windows %d, window requests %d, release requests %d", v.Sequence.Windows, v.Canary.Requests, v.Sequence.Evidence[verdict.CheckErrorRate].N)
	}
	// A certain verdict (an error under a 0% limit) is a finite number JSON can carry.
	th.MaxErrorRate = 0
	_, v = release(rng, th, 100, []float64{10}, 1, stream{errRate: 1, median: 100, sigma: 0.4, scale: 1})
	if _, err := json.Marshal(v); err != nil {
		t.Errorf("verdict of a certain fail: %v", err)
	}
	if _, err := json.Marshal(v.Sequence); err != nil {
		t.Errorf("sequence of a certain fail: %v", err)
	}
}

// TestJudgeLookEarlyPass: at high traffic a healthy canary is shown within every limit before its bake
// ends; a canary beyond a limit never is.
func TestJudgeLookEarlyPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	run := func(canary stream) (int, verdict.Verdict) {
		var seq *verdict.Sequence
		var v verdict.Verdict
		from := time.Unix(1_700_000_000, 0)
		for i := 1; i <= 30; i++ {
			cuts := LookCuts(seq, seqThresholds)
			w := verdict.Window{From: from, To: from.Add(time.Duration(i) * 2 * time.Second), Share: 25, Early: true, Sequence: seq}
			v = JudgeLook(Look{Window: w, Canary: canary.interval(rng, 500, cuts.Canary), Stable: healthyStream.interval(rng, 1500, cuts.Stable)}, seqThresholds)
			seq = v.Sequence
			if v.PassEarly {
				return i, v
			}
		}
		return 0, v
	}
	if n, v := run(healthyStream); n == 0 {
		t.Errorf("a healthy canary at 250 requests a second was not shown within its limits in 60 s: %s", v.Reason)
	} else if v.Result != verdict.ResultPass || !strings.Contains(v.Reason, "step may end early") {
		t.Errorf("early pass at look %d: %s %s", n, v.Result, v.Reason)
	}
	if n, v := run(stream{errRate: 0.015, median: 100, sigma: 0.4, scale: 1}); n != 0 {
		t.Errorf("a canary with 1.5%% errors (limit 1%%) passed early at look %d: %s", n, v.Reason)
	}
}

// TestJudgeLookLostErrors: canary 5xx that HAProxy counted and InfluxDB lacks count against the canary
// once, however many looks see them.
func TestJudgeLookLostErrors(t *testing.T) {
	from := time.Unix(1_700_000_000, 0)
	iv := func(n, errs int64) Interval { return Interval{Requests: n, Errors: errs, Errors5xx: errs} }
	var seq *verdict.Sequence
	for i, tally := range []int64{0, 4, 4, 6} {
		w := verdict.Window{From: from, To: from.Add(time.Duration(i+1) * 2 * time.Second), Share: 10, Sequence: seq,
			Canary: &verdict.Tally{Requests: int64(20 * (i + 1)), Errors5xx: tally}}
		v := JudgeLook(Look{Window: w, Canary: iv(20, 0), Stable: iv(180, 0)}, seqThresholds)
		seq = v.Sequence
	}
	if k := seq.Evidence[verdict.CheckErrorRate].K; k != 6 {
		t.Errorf("%d lost errors counted, want 6", k)
	}
}

// TestJudgeLookFailedAttempts: attempts on the canary that HAProxy retried on stable (Tally.Failed; no
// log line names the canary for them) count against the canary in the error tests, once however many
// looks see them, and once in the window's figures; they fail a canary whose logged requests are clean.
func TestJudgeLookFailedAttempts(t *testing.T) {
	from := time.Unix(1_700_000_000, 0)
	iv := func(n int64) Interval { return Interval{Requests: n, Timed: n} }
	var seq *verdict.Sequence
	var v verdict.Verdict
	for i := range 4 {
		w := verdict.Window{From: from, To: from.Add(time.Duration(i+1) * 2 * time.Second), Share: 10, Sequence: seq,
			Canary: &verdict.Tally{Requests: int64(40 * (i + 1)), Failed: int64(10 * (i + 1))}, Stable: &verdict.Tally{Requests: int64(360 * (i + 1))}}
		v = JudgeLook(Look{Window: w, Canary: iv(40), Stable: iv(360)}, seqThresholds)
		seq = v.Sequence
	}
	if ev := seq.Evidence[verdict.CheckErrorRate]; ev.K != 40 || ev.N != 200 {
		t.Errorf("the error test saw %d errors in %d requests, want the 40 failed attempts in 200", ev.K, ev.N)
	}
	if v.Canary.Errors != 40 || v.Canary.Requests != 200 {
		t.Errorf("the window's figures %+v: want 40 errors in 200 requests, counted once", v.Canary)
	}
	if v.Result != verdict.ResultFail {
		t.Errorf("a canary failing 20%% of its attempts: %s %s", v.Result, v.Reason)
	}
	for _, c := range v.Checks {
		if c.Name == verdict.CheckTelemetry && c.Result != verdict.ResultPass {
			t.Errorf("telemetry %s: %s; the store's counts agree with HAProxy's", c.Result, c.Detail)
		}
	}
}

// BenchmarkJudgeLook is one look of 2 s at 100 requests a second, 10% to the canary, late in a step.
func BenchmarkJudgeLook(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	_, v := release(rng, seqThresholds, 100, []float64{10}, 20, healthyStream)
	seq := v.Sequence
	cuts := LookCuts(seq, seqThresholds)
	l := Look{Window: verdict.Window{From: seq.From, To: seq.Through.Add(2 * time.Second), Share: 10, Early: true, Sequence: seq},
		Since: seq.Through, Canary: healthyStream.interval(rng, 20, cuts.Canary), Stable: healthyStream.interval(rng, 180, cuts.Stable)}
	for b.Loop() {
		JudgeLook(l, seqThresholds)
	}
}

// TestJudgeLookLatePoints: points that landed after the look that read their interval are counted by
// the final look's recount, once, in the error tests and the window's figures, so that the telemetry
// check does not take them for lost.
func TestJudgeLookLatePoints(t *testing.T) {
	from := time.Unix(1_700_000_000, 0)
	iv := func(n, errs int64) Interval { return Interval{Requests: n, Errors: errs, Errors5xx: errs, Timed: n} }
	var seq *verdict.Sequence
	// Three looks each read 15 canary and 150 stable requests of the 20 and 180 served: the rest lands late.
	for i := range 3 {
		w := verdict.Window{From: from, To: from.Add(time.Duration(i+1) * 2 * time.Second), Share: 10, Early: true, Sequence: seq}
		seq = JudgeLook(Look{Window: w, Canary: iv(15, 0), Stable: iv(150, 0)}, seqThresholds).Sequence
	}
	tally := func(n, errs int64) *verdict.Tally { return &verdict.Tally{Requests: n, Errors5xx: errs} }
	w := verdict.Window{From: from, To: from.Add(8 * time.Second), Share: 10, Sequence: seq, Canary: tally(80, 2), Stable: tally(720, 0)}
	final := Look{Window: w, Canary: iv(20, 0), Stable: iv(180, 0), Recount: &Recount{Canary: iv(80, 2), Stable: iv(720, 0)}}
	v := JudgeLook(final, seqThresholds)
	if v.Canary.Requests != 80 || v.Stable.Requests != 720 || v.Canary.Errors != 2 || v.Canary.Timed != 80 {
		t.Errorf("the window's figures: canary %+v, stable %+v; want every request, late ones included", v.Canary, v.Stable)
	}
	if ev := v.Sequence.Evidence[verdict.CheckErrorRate]; ev.N != 80 || ev.K != 2 {
		t.Errorf("the error test saw %d requests and %d errors, want 80 and 2", ev.N, ev.K)
	}
	for _, c := range v.Checks {
		if c.Name == verdict.CheckTelemetry && c.Result != verdict.ResultPass {
			t.Errorf("telemetry: %s", c.Detail)
		}
	}
	// Without the recount the same window is short of HAProxy's counts.
	final.Recount = nil
	v = JudgeLook(final, seqThresholds)
	for _, c := range v.Checks {
		if c.Name == verdict.CheckTelemetry && c.Result != verdict.ResultInconclusive {
			t.Errorf("telemetry without the recount: %s %s", c.Result, c.Detail)
		}
	}
}
