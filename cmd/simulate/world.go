package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Service is how a version answers: its error rate and its latency distribution, a log-normal body
// (Median ms, spread Sigma) with a few slow outliers (GC pauses, cold caches), scaled and shifted for a
// slower canary, in whole milliseconds as HAProxy logs them.
type Service struct {
	ErrorRate     float64
	Median, Sigma float64
	// Outliers is the share of requests Outliers×(2…5) slower.
	Outliers float64
	// Scale multiplies every latency (1.5: 50% slower); Shift adds to it (ms).
	Scale, Shift float64
}

// stableService is the stable version of every simulation: 0.1% errors, a 100 ms median, p99 about
// 270 ms.
var stableService = Service{ErrorRate: 0.001, Median: 100, Sigma: 0.4, Outliers: 0.005, Scale: 1}

// loadSpread is how much the load moves latency from one 2-second slot to the next, for both versions
// alike (a log-normal factor of this spread).
const loadSpread = 0.1

// Traffic is one release's simulated requests: rate requests a second, a share of them to the canary,
// drawn in intervals as the looks ask for them. It is seeded, so that a run is the same whatever the
// worker that runs it, and every scheme sees the same traffic until its decisions differ.
type Traffic struct {
	Rate           float64
	Canary, Stable Service
	rng            *rand.Rand
	load           []float64
	seed           uint64
}

// NewTraffic is the traffic of run seed.
func NewTraffic(rate float64, canary Service, seed uint64) *Traffic {
	return &Traffic{Rate: rate, Canary: canary, Stable: stableService, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), seed: seed}
}

// loadAt is the load factor of the 2-second slot holding t (since the release began).
func (tr *Traffic) loadAt(t time.Duration) float64 {
	slot := int(t / (2 * time.Second))
	if slot < 0 {
		slot = 0
	}
	if slot >= len(tr.load) {
		// The same seed draws the same factors again, and as many more as needed.
		need := max(slot+1, 2*len(tr.load), 1024)
		r := rand.New(rand.NewPCG(tr.seed, 0x5bd1e995))
		tr.load = tr.load[:0]
		for range need {
			tr.load = append(tr.load, math.Exp(loadSpread*r.NormFloat64()))
		}
	}
	return tr.load[slot]
}

// Batch is what one group served in an interval: requests, errors and each request's latency (ms).
type Batch struct {
	Requests, Errors int64
	Latencies        []float64
}

// Serve draws the requests of [from, to) (since the release began) at the canary share (percent).
func (tr *Traffic) Serve(from, to time.Duration, share float64) (canary, stable Batch) {
	if to <= from {
		return
	}
	n := poisson(tr.rng, tr.Rate*(to-from).Seconds())
	for range n {
		at := from + time.Duration(tr.rng.Float64()*float64(to-from))
		b, svc := &stable, tr.Stable
		if tr.rng.Float64()*100 < share {
			b, svc = &canary, tr.Canary
		}
		b.Requests++
		if tr.rng.Float64() < svc.ErrorRate {
			b.Errors++
		}
		v := svc.Median * math.Exp(svc.Sigma*tr.rng.NormFloat64()) * tr.loadAt(at)
		if tr.rng.Float64() < svc.Outliers {
			v *= 2 + 3*tr.rng.Float64()
		}
		b.Latencies = append(b.Latencies, max(math.Round(v*svc.Scale+svc.Shift), 1))
	}
	return canary, stable
}

// poisson draws a Poisson count of mean m (normal approximation above 50).
func poisson(rng *rand.Rand, m float64) int {
	if m > 50 {
		return max(int(math.Round(m+math.Sqrt(m)*rng.NormFloat64())), 0)
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// window adds up what a group served over a step's window, for the scheme that judges the whole
// window at every look: counts and every latency, sorted.
type window struct {
	requests, errors int64
	sorted           []float64
}

func (w *window) add(b Batch) {
	w.requests += b.Requests
	w.errors += b.Errors
	if len(b.Latencies) == 0 {
		return
	}
	add := slices.Clone(b.Latencies)
	slices.Sort(add)
	// Merge in place from the back, into the room the new values need.
	i, j := len(w.sorted)-1, len(add)-1
	w.sorted = append(w.sorted, add...)
	for k := len(w.sorted) - 1; j >= 0; k-- {
		if i >= 0 && w.sorted[i] > add[j] {
			w.sorted[k] = w.sorted[i]
			i--
		} else {
			w.sorted[k] = add[j]
			j--
		}
	}
}

// nearestRank is the q-quantile of sorted values as both stores return it: the value at rank ceil(q·n).
func nearestRank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}
