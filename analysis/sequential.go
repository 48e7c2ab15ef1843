package analysis

import (
	"math"
	"slices"

	"github.com/fridaymorning/fridaymorning/verdict"
)

// The sequential tests of a release. Each check that can abort a release keeps an e-process over all
// of the release's looks: a running product, one factor per look, whose expectation under the check's
// null hypothesis (the canary is within its limit) is at most 1 whatever happened before. By Ville's
// inequality such a process ever reaches 1/α with probability at most α, however often it is looked
// at, however long the release runs, whatever the looks, extensions, pauses and nudges. That is what
// makes the looks free: the release's false-abort budget is spent once, by the process that crosses,
// not once per look.
//
// Each factor is a bet on the look's new data only: the counts of the interval since the previous look,
// so a look costs what is new, never the whole window again. The bets are:
//
//   - logBinomialBet, for a rate against a fixed limit (the canary's error rate against
//     max_error_rate; the share of canary requests slower than a latency limit against 1 − q): the
//     likelihood ratio of the look's k of n at an alternative rate against the limit, which is a
//     supermartingale for every rate at or below the limit.
//   - logIncreaseBet, for the canary's rate against stable's plus a margin: a bet on canary errors
//     and against stable errors whose price is set by the worst case of stable's unknown rate, so it
//     needs no estimate of it and stays valid when stable's rate changes from look to look.
//   - logConditionalBet, for the canary's share of slow requests against stable's (the tail checks):
//     given how many slow requests both groups had in the look, the canary's count is hypergeometric
//     when the shares are equal; the bet is priced by the binomial with the same mean, which is more
//     spread (Hoeffding 1963), so it stays a supermartingale.
//   - logRankBet, for canary latencies being larger than stable's (latency_shift): a bet on the
//     canary's rank scores among the look's pooled latencies, priced as if drawn with replacement.
//
// Every bet is stratified by look: it compares the two groups over the same seconds, so load that
// changes over a release, or a share that changes from step to step, cannot make a canary look worse.
// Each test mixes the alternatives of a grid (tilts), most of the weight on the small ones, so it finds a 50-fold error
// rate within a look and a doubled one given time, and it restarts at every step with a share of the
// weight (windows), so a fault that shows only at a higher share is not held back by the evidence of
// the healthy steps before.
//
// See Lindon, Sanden, Shirikian, "Rapid Regression Detection in Software Deployments through
// Sequential Testing" (KDD 2022) for sequential tests of stochastic order on canaries, and Ramdas et
// al., "Game-theoretic statistics and safe anytime-valid inference" (2023) for e-processes.

// tilts are the alternatives a test mixes: log-odds offsets of the alternative rate from the limit (or
// log odds ratios), from a small effect (a rate 1.5 times the limit) to a very large one, 1.6 apart.
// A very large effect needs no weight to speak of (its likelihood ratio grows by orders of magnitude a
// look), so seven are enough.
var tilts = []float64{0.4, 0.65, 1.05, 1.7, 2.7, 4.3, 7}

// rankTilts are the tilts of the rank test, whose scores lie in (−½, ½).
var rankTilts = []float64{0.8, 1.3, 2.1, 3.4, 5.4, 8.7, 14}

// tiltWeights are the weights of the alternatives of either grid (logarithms). A small effect needs
// every bit of weight (its evidence grows slowly: a rate twice its limit takes a thousand requests), a
// large one hardly any (its evidence grows by orders of magnitude a look), so the small ones get most.
var tiltWeights = logs(0.2, 0.2, 0.14, 0.12, 0.12, 0.12, 0.1)

func logs(ws ...float64) []float64 {
	out := make([]float64, len(ws))
	for i, w := range ws {
		out[i] = math.Log(w)
	}
	return out
}

// maxLog bounds a log e-value, so that a certain verdict (an error under a 0% limit) stays a finite
// number that JSON can carry; e^700 is beyond any threshold.
const maxLog = 700

// maxStableBet bounds the stable side of logIncreaseBet: the share of its stake lost per stable error.
const maxStableBet = 0.9

// logBinomialBet is the log factor of one look for the test of a rate against the limit p0, k bad out
// of n, at the alternative whose log odds are tilt above p0's. A positive tilt bets that the rate is
// above p0 (H0: rate ≤ p0); a negative one that it is below (H0: rate ≥ p0). Its expectation under
// H0 is at most 1: it is (1+(e^tilt−1)p)ⁿ / (1+(e^tilt−1)p0)ⁿ at the true rate p.
func logBinomialBet(k, n int64, p0, tilt float64) float64 {
	if n <= 0 || math.IsNaN(p0) {
		return 0
	}
	p0 = min(max(p0, 0), 1)
	return tilt*float64(k) - float64(n)*math.Log1p(math.Expm1(tilt)*p0)
}

// logIncreaseBet is the log factor of one look for the test of H0: canary rate ≤ stable rate + delta,
// with kc bad out of nc canary requests and ks out of ns stable ones. It wins e^tilt per canary error
// and loses a share b per stable error, where b is what keeps the bet fair for stable's most likely
// rates; its price G is the largest expectation the bet can have under H0, maximized over stable's
// unknown rate s (the expectation is (1+a(s+δ))^nc·(1−b·s)^ns, concave in log), so no estimate of s is
// needed. To first order it wins as fast as a test against the limit s + delta would with s known.
func logIncreaseBet(kc, nc, ks, ns int64, delta, tilt float64) float64 {
	if nc <= 0 || ns <= 0 || math.IsNaN(delta) {
		return 0
	}
	delta = min(max(delta, 0), 1)
	a := math.Expm1(tilt)
	fc, fs := float64(nc), float64(ns)
	b := min(fc*a/(fs*(1+a*delta)), maxStableBet)
	s := min(max((fc*a-fs*b*(1+a*delta))/(a*b*(fc+fs)), 0), 1-delta)
	g := fc*math.Log1p(a*(s+delta)) + fs*math.Log1p(-b*s)
	return tilt*float64(kc) + math.Log1p(-b)*float64(ks) - g
}

// logNoIncreaseBet is logIncreaseBet the other way round, for an early pass: the log factor of one look
// for the test of H0: canary rate ≥ stable rate + delta. It wins when the canary has few errors and
// stable has its usual share.
func logNoIncreaseBet(kc, nc, ks, ns int64, delta, tilt float64) float64 {
	if nc <= 0 || ns <= 0 || math.IsNaN(delta) {
		return 0
	}
	delta = min(max(delta, 0), 1)
	a := -math.Expm1(-tilt)
	fc, fs := float64(nc), float64(ns)
	b := fc * a / (fs * (1 - a*delta))
	s := min(max((fs*b*(1-a*delta)-fc*a)/(a*b*(fc+fs)), 0), 1-delta)
	g := fc*math.Log1p(-a*(s+delta)) + fs*math.Log1p(b*s)
	return -tilt*float64(kc) + math.Log1p(b)*float64(ks) - g
}

// logConditionalBet is the log factor of one look for the test of H0: the canary's share of slow
// requests (kc of nc) is at most stable's (ks of ns), at log odds ratio logPsi (negative: the test of
// at least). Given k = kc + ks, kc is hypergeometric when the shares are equal and stochastically
// smaller under H0; ψ^kc is convex, so its expectation is at most the binomial's, (1−ρ+ρψ)^k with
// ρ = nc/(nc+ns), which is the bet's price.
func logConditionalBet(kc, nc, ks, ns int64, logPsi float64) float64 {
	if nc <= 0 || ns <= 0 {
		return 0
	}
	rho := float64(nc) / float64(nc+ns)
	return logPsi*float64(kc) - float64(kc+ks)*math.Log1p(rho*math.Expm1(logPsi))
}

// ranks is one look's pooled latencies as rank scores: each latency's mid-rank among all n of them,
// scaled to (−½, ½) (0 for the middle one; ties share their mean score). Only the canary's sum of
// scores is kept: the bet's price does not depend on the ties.
type ranks struct {
	canarySum float64
	canaryN   int
	n         int
}

// rankScores ranks a look's canary and stable latencies together; both must be sorted.
func rankScores(canary, stable []float64) ranks {
	r := ranks{canaryN: len(canary), n: len(canary) + len(stable)}
	n := float64(r.n)
	tieGroups(canary, stable, func(first, inCanary, count int) {
		// Positions first … first+count−1 have ranks first+1 … first+count, whose mean scales to this.
		r.canarySum += float64(inCanary) * ((float64(first)+float64(count)/2)/n - 0.5)
	})
	return r
}

// logRankBet is the log factor of one look for the test of H0: canary and stable latencies come from
// the same distribution, betting that the canary's are larger, at tilt lambda. Under H0 the canary's
// scores are a sample without replacement of the pooled ones, so e^(λ·sum) has an expectation at most
// that of a sample with replacement, (mean e^(λu))^nc (Hoeffding 1963). Ties make that mean smaller
// (e^λu is convex, and tied scores are the mean of the untied ones), so the mean of the untied scores
// (i−½)/n − ½, a geometric series, is the bet's price.
func logRankBet(r ranks, lambda float64) float64 {
	if r.canaryN == 0 || r.canaryN == r.n {
		return 0
	}
	n := float64(r.n)
	// mean over i = 1…n of e^(λ((i−½)/n − ½)) = e^(−λ/2) · e^(λ/2n) · (e^λ − 1) / (n (e^(λ/n) − 1))
	logMean := -lambda/2 + lambda/(2*n) + math.Log(math.Expm1(lambda)/(n*math.Expm1(lambda/n)))
	return lambda*r.canarySum - float64(r.canaryN)*logMean
}

// windowWeight is the log of the weight of the k-th window (1-based) of a release: ¾ for the first,
// which sees a fault that is there from the start, then ¼·2^−(k−1), so that the weights of every window
// a release can have sum to at most 1.
func windowWeight(k int) float64 {
	if k <= 1 {
		return math.Log(0.75)
	}
	return math.Log(0.25) - float64(k-1)*math.Ln2
}

// newEvidence is a test's evidence before its first look: a stake of e^logWeight, spread over the
// alternatives by their weights.
func newEvidence(components int, logWeight float64) verdict.Evidence {
	ev := verdict.Evidence{Log: make([]float64, components)}
	for i := range ev.Log {
		ev.Log[i] = logWeight + tiltWeights[i]
	}
	ev.Max = logE(ev)
	return ev
}

// restart stakes the weight of the k-th window anew, spread over the alternatives by their weights,
// beside what they hold.
func restart(ev verdict.Evidence, k int) verdict.Evidence {
	ev.Log = slices.Clone(ev.Log)
	for i := range ev.Log {
		ev.Log[i] = logAddExp(ev.Log[i], windowWeight(k)+tiltWeights[i])
	}
	return ev
}

// fold multiplies each alternative's stake by the look's factor for it (given as logs) and records
// the largest e-value reached.
func fold(ev verdict.Evidence, logf []float64) verdict.Evidence {
	ev.Log = slices.Clone(ev.Log)
	for i := range ev.Log {
		if i < len(logf) && !math.IsNaN(logf[i]) {
			ev.Log[i] = min(ev.Log[i]+logf[i], maxLog)
		}
	}
	ev.Max = max(ev.Max, logE(ev))
	return ev
}

// logE is the log of the test's e-value: the sum of its alternatives' stakes.
func logE(ev verdict.Evidence) float64 {
	if len(ev.Log) == 0 {
		return 0
	}
	return logSumExp(ev.Log)
}

func logSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, l := range xs {
		m = max(m, l)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, l := range xs {
		s += math.Exp(l - m)
	}
	return m + math.Log(s)
}

func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// moreToCross is how many more canary requests it would take, at the rates seen in the current window
// (perRequest: each alternative's mean log factor per canary request), for the e-value to reach
// e^threshold: the fewest over the alternatives that gain, or -1 when none gains (more of the same
// would not settle it).
func moreToCross(ev verdict.Evidence, perRequest []float64, threshold float64) int64 {
	best := math.Inf(1)
	for i, d := range perRequest {
		if i >= len(ev.Log) || !(d > 0) {
			continue
		}
		// One alternative's stake alone is enough once it reaches e^threshold.
		need := (threshold - ev.Log[i]) / d
		best = min(best, max(need, 1))
	}
	if math.IsInf(best, 1) || best > 1e9 {
		return -1
	}
	return int64(math.Ceil(best))
}
