package analysis

import (
	"math"
	"slices"
)

// histogram is a window's latency distribution as the looks sampled it: weights (requests) by bucket,
// 1 ms wide up to fineLimit (HAProxy logs whole milliseconds, so there it is exact) and 1% wide above.
// It is a value: add returns a new one, so that a look never changes the state it was given.
type histogram struct {
	buckets []int32
	weights []float64
	total   float64
}

// fineLimit is where the buckets turn from 1 ms to 1% wide.
const fineLimit = 2048

var logWide = math.Log(1.01)

func bucketOf(ms float64) int32 {
	if ms < fineLimit {
		return int32(math.Round(max(ms, 0)))
	}
	return fineLimit + int32(math.Log(ms/fineLimit)/logWide)
}

// bucketValue is the latency a bucket stands for: its millisecond, or the middle of a wide bucket.
func bucketValue(b int32) float64 {
	if b < fineLimit {
		return float64(b)
	}
	return fineLimit * math.Exp((float64(b-fineLimit)+0.5)*logWide)
}

// add returns h with the latencies of sample (sorted), each standing for weight requests.
func (h histogram) add(sample []float64, weight float64) histogram {
	if len(sample) == 0 || !(weight > 0) {
		return h
	}
	bs := make([]int32, 0, len(sample))
	for _, v := range sample {
		if v >= 0 && !math.IsInf(v, 1) {
			bs = append(bs, bucketOf(v))
		}
	}
	if !slices.IsSorted(bs) {
		slices.Sort(bs)
	}
	out := histogram{buckets: make([]int32, 0, len(h.buckets)+len(bs)), weights: make([]float64, 0, len(h.buckets)+len(bs)), total: h.total}
	i := 0
	put := func(b int32, w float64) {
		if n := len(out.buckets); n > 0 && out.buckets[n-1] == b {
			out.weights[n-1] += w
			return
		}
		out.buckets = append(out.buckets, b)
		out.weights = append(out.weights, w)
	}
	for _, b := range bs {
		for i < len(h.buckets) && h.buckets[i] < b {
			put(h.buckets[i], h.weights[i])
			i++
		}
		put(b, weight)
		out.total += weight
	}
	for ; i < len(h.buckets); i++ {
		put(h.buckets[i], h.weights[i])
	}
	return out
}

// quantile is the nearest-rank q-quantile in ms: the smallest latency with at least q of the weight at
// or below it (what both stores return for a window); NaN when h is empty.
func (h histogram) quantile(q float64) float64 {
	if h.total <= 0 {
		return math.NaN()
	}
	target := q*h.total - 1e-9*h.total
	var cum float64
	for i, w := range h.weights {
		cum += w
		if cum >= target {
			return bucketValue(h.buckets[i])
		}
	}
	return bucketValue(h.buckets[len(h.buckets)-1])
}
