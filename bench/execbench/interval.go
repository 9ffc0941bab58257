// SPDX-License-Identifier: Apache-2.0

package main

// Confidence intervals: a t-interval of a mean, and the interval of a
// throughput ratio from paired slices (tracer on and off back to back), the
// geometric mean of the per-pair ratios with the t-interval of their logs.
// Pairs share the machine's noise, so the per-pair ratio cancels most of
// it; what is left is symmetric in the logs.

import (
	"math"
	"sort"
)

// interval is an estimate and its two-sided confidence bounds.
type interval struct {
	est, lo, hi float64
	n           int
}

// confidence is the level of every interval in the report.
const confidence = 0.95

// meanInterval is the mean of xs and its t-interval; with fewer than two
// values the bounds are the estimate itself.
func meanInterval(xs []float64) interval {
	n := len(xs)
	if n == 0 {
		return interval{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(n)
	if n < 2 {
		return interval{est: mean, lo: mean, hi: mean, n: n}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	se := math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
	h := tQuantile975(n-1) * se
	return interval{est: mean, lo: mean - h, hi: mean + h, n: n}
}

// ratioInterval is the geometric mean of on[i]/off[i] over the pairs, with
// the t-interval of the log ratios mapped back. Pairs with a non-positive
// rate are skipped.
func ratioInterval(on, off []float64) interval {
	var logs []float64
	for i := range min(len(on), len(off)) {
		if on[i] > 0 && off[i] > 0 {
			logs = append(logs, math.Log(on[i]/off[i]))
		}
	}
	iv := meanInterval(logs)
	if iv.n == 0 {
		return iv
	}
	return interval{est: math.Exp(iv.est), lo: math.Exp(iv.lo), hi: math.Exp(iv.hi), n: iv.n}
}

// medianRatioInterval is the median of the per-pair ratios on[i]/off[i]
// with its distribution-free interval: the order statistics a sign test
// puts around the median (ranks n/2 -+ 1.96 sqrt(n)/2), which holds
// whatever the shape of the noise. A burst of other work that lands in one
// slice of a pair moves that pair's ratio far; it moves the median by one
// rank at most. Pairs with a non-positive rate are skipped; fewer than 6
// pairs give no bounds but the extremes.
func medianRatioInterval(on, off []float64) interval {
	var rs []float64
	for i := range min(len(on), len(off)) {
		if on[i] > 0 && off[i] > 0 {
			rs = append(rs, on[i]/off[i])
		}
	}
	n := len(rs)
	if n == 0 {
		return interval{}
	}
	sort.Float64s(rs)
	k := int(math.Floor((float64(n) - 1.959964*math.Sqrt(float64(n))) / 2)) // 0-based lower rank
	k = max(k, 0)
	return interval{est: medianSorted(rs), lo: rs[k], hi: rs[n-1-k], n: n}
}

// medianSorted is the median of sorted, non-empty s.
func medianSorted(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// tTable is the 0.975 quantile of Student's t for 1 to 30 degrees of
// freedom.
var tTable = [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom: the table up to 30, then the Cornish-Fisher expansion around the
// normal quantile (within 0.001 of the exact value above 30).
func tQuantile975(df int) float64 {
	if df < 1 {
		return math.Inf(1)
	}
	if df <= len(tTable) {
		return tTable[df-1]
	}
	const z = 1.959964
	d := float64(df)
	return z + (z*z*z+z)/(4*d) + (5*math.Pow(z, 5)+16*z*z*z+3*z)/(96*d*d)
}
