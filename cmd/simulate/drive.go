package main

import (
	"math/rand/v2"
	"time"

	"github.com/fridaymorning/fridaymorning/analysis"
	"github.com/fridaymorning/fridaymorning/release"
	"github.com/fridaymorning/fridaymorning/verdict"
)

// epoch is the simulated release's start, the canary's first traffic.
var epoch = time.Unix(1_750_000_000, 0)

// Outcome is how a simulated release ended and when, counted from the canary's first traffic.
type Outcome struct {
	Result string
	At     time.Duration
}

// The outcomes of a release.
const (
	promoted            = "promoted"
	abortedAnalysis     = "aborted: a check failed"
	abortedInconclusive = "aborted: inconclusive"
	flaggerRolledBack   = "rolled back"
)

// The Flagger-style check, as its documentation shows it: every minute, success rate ≥ 99% and
// p99 ≤ 500 ms; rollback after 5 failed checks.
const (
	flaggerFailedChecks = 5
	flaggerInterval     = time.Minute
	flaggerMinSuccess   = 99.0
	flaggerMaxP99       = 500.0
)

// judger is a scheme's way of judging the looks of a release: the window judged on its own at every
// look (today's fixed-sample tests), or the release's sequential analysis.
type judger interface {
	// begin starts a step's window at from.
	begin(from time.Duration)
	// judge judges w, reading what the traffic served up to w.To that it has not read yet.
	judge(w verdict.Window) verdict.Verdict
	// sequence is the release's sequential analysis so far, for the next window (nil if none).
	sequence() *verdict.Sequence
}

// replay runs a release of steps through the engine's schedule s on traffic, judging every look with j,
// as release/bake.go does: early looks every EarlyInterval while a bake runs, the final look
// AnalysisDelay after it, up to MaxExtensions more bakes of an inconclusive step, the next step's
// window starting when the previous one passed.
func replay(s release.Schedule, steps []float64, j judger) Outcome {
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	t := time.Duration(0)
	for _, share := range steps {
		from := t
		j.begin(from)
		for ext := 0; ; ext++ {
			start := t
			until := start + s.Bake
			for look := start + s.EarlyInterval; look < until; look += s.EarlyInterval {
				w := s.EarlyWindow(at(from), at(look), share, j.sequence())
				if w == nil {
					continue
				}
				v := j.judge(*w)
				if v.Result == verdict.ResultFail {
					return Outcome{abortedAnalysis, look}
				}
				if s.EndsEarly(v, at(from), at(look)) {
					until = look
					break
				}
			}
			t = until + s.AnalysisDelay
			v := j.judge(s.FinalWindow(at(from), at(until), share, j.sequence()))
			if v.Result == verdict.ResultPass {
				break
			}
			if v.Result == verdict.ResultFail {
				return Outcome{abortedAnalysis, t}
			}
			if ext >= s.MaxExtensions {
				return Outcome{abortedInconclusive, t}
			}
		}
	}
	return Outcome{promoted, t}
}

// fixedJudger is today's scheme: every look judges the whole window since the step began with the
// fixed-sample tests, an early look at α/looks.
type fixedJudger struct {
	th             analysis.Thresholds
	tr             *Traffic
	canary, stable window
	read           time.Duration
	share          float64
}

func (f *fixedJudger) begin(from time.Duration) {
	f.canary, f.stable, f.read = window{}, window{}, from
}

func (f *fixedJudger) sequence() *verdict.Sequence { return nil }

func (f *fixedJudger) judge(w verdict.Window) verdict.Verdict {
	to := w.To.Sub(epoch)
	c, s := f.tr.Serve(f.read, to, w.Share)
	f.read = max(f.read, to)
	f.canary.add(c)
	f.stable.add(s)
	return analysis.Judge(analysis.Input{Canary: f.canary.metrics(), Stable: f.stable.metrics(), Window: w}, f.th)
}

// metrics are a window's figures as a store reports them: nearest-rank percentiles, and a sample of
// at most analysis.SampleSize latencies (every k-th of them).
func (w window) metrics() verdict.Metrics {
	m := verdict.Metrics{Requests: w.requests, Errors: w.errors, Errors5xx: w.errors, Timed: int64(len(w.sorted))}
	if m.Requests > 0 {
		m.ErrorRate = 100 * float64(m.Errors) / float64(m.Requests)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	m.P50, m.P90, m.P95, m.P99 = ms(nearestRank(w.sorted, 0.5)), ms(nearestRank(w.sorted, 0.9)), ms(nearestRank(w.sorted, 0.95)), ms(nearestRank(w.sorted, 0.99))
	m.Latencies = w.sorted
	if n := len(w.sorted); n > analysis.SampleSize {
		k := (n + analysis.SampleSize - 1) / analysis.SampleSize
		m.Latencies = make([]float64, 0, n/k+1)
		for i := 0; i < n; i += k {
			m.Latencies = append(m.Latencies, w.sorted[i])
		}
	}
	return m
}

// seqJudger is the sequential scheme: every look reads only the interval since the previous one and
// folds it into the release's sequence.
type seqJudger struct {
	th   analysis.Thresholds
	tr   *Traffic
	seq  *verdict.Sequence
	read time.Duration
	rng  *rand.Rand
}

func (q *seqJudger) begin(from time.Duration) { q.read = from }

func (q *seqJudger) sequence() *verdict.Sequence { return q.seq }

func (q *seqJudger) judge(w verdict.Window) verdict.Verdict {
	to := w.To.Sub(epoch)
	since := q.read
	c, s := q.tr.Serve(since, to, w.Share)
	q.read = max(q.read, to)
	cuts := analysis.LookCuts(q.seq, q.th)
	look := analysis.Look{Window: w, Since: epoch.Add(since), Canary: q.interval(c, cuts.Canary), Stable: q.interval(s, cuts.Stable)}
	v := analysis.JudgeLook(look, q.th)
	q.seq = v.Sequence
	return v
}

// interval is what a store reads of a batch for a look: counts, counts of slow requests, a uniform
// sample of at most analysis.LookSample latencies.
func (q *seqJudger) interval(b Batch, cuts []analysis.Cut) analysis.Interval {
	iv := analysis.Interval{Requests: b.Requests, Errors: b.Errors, Errors5xx: b.Errors, Timed: int64(len(b.Latencies)), Above: make([]int64, len(cuts))}
	for _, v := range b.Latencies {
		for i, c := range cuts {
			if v > c.Ms {
				iv.Above[i]++
			}
		}
	}
	iv.Latencies = b.Latencies
	if len(b.Latencies) > analysis.LookSample {
		iv.Latencies = make([]float64, len(b.Latencies))
		copy(iv.Latencies, b.Latencies)
		q.rng.Shuffle(len(iv.Latencies), func(i, j int) { iv.Latencies[i], iv.Latencies[j] = iv.Latencies[j], iv.Latencies[i] })
		iv.Latencies = iv.Latencies[:analysis.LookSample]
	}
	return iv
}

// flagger is a Flagger-style fixed check: every interval (a minute) the canary's success rate must be
// at least 99% and its p99 at most 500 ms; a passing interval moves to the next step (promoting after
// the last), a failing one counts, and the fifth failure rolls back.
func flagger(steps []float64, tr *Traffic) Outcome {
	step, failures := 0, 0
	for t := time.Duration(0); ; t += flaggerInterval {
		c, _ := tr.Serve(t, t+flaggerInterval, steps[step])
		var w window
		w.add(c)
		ok := w.requests > 0 && 100*float64(w.requests-w.errors)/float64(w.requests) >= flaggerMinSuccess && nearestRank(w.sorted, 0.99) <= flaggerMaxP99
		end := t + flaggerInterval
		if !ok {
			if failures++; failures >= flaggerFailedChecks {
				return Outcome{flaggerRolledBack, end}
			}
			continue
		}
		if step++; step == len(steps) {
			return Outcome{promoted, end}
		}
	}
}
