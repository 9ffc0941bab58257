// SPDX-License-Identifier: Apache-2.0

package main

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestTQuantile(t *testing.T) {
	// exact values: 1.984 (df 100), 1.962 (df 1000); the table's ends
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {30, 2.042}, {31, 2.040}, {60, 2.000}, {100, 1.984}, {1000, 1.962}} {
		if got := tQuantile975(c.df); !near(got, c.want, 0.001) {
			t.Errorf("t(0.975, %d) = %.4f, want %.3f", c.df, got, c.want)
		}
	}
	if !math.IsInf(tQuantile975(0), 1) {
		t.Error("no degree of freedom must give an unbounded interval")
	}
}

func TestMeanInterval(t *testing.T) {
	// mean 3, sample sd sqrt(2.5), n 5: half-width 2.776*sqrt(2.5)/sqrt(5)
	iv := meanInterval([]float64{1, 2, 3, 4, 5})
	h := 2.776 * math.Sqrt(2.5) / math.Sqrt(5)
	if iv.n != 5 || !near(iv.est, 3, 1e-12) || !near(iv.lo, 3-h, 1e-9) || !near(iv.hi, 3+h, 1e-9) {
		t.Fatalf("got %+v, want 3 +- %.4f over 5", iv, h)
	}
	if iv := meanInterval([]float64{7}); iv.est != 7 || iv.lo != 7 || iv.hi != 7 {
		t.Fatalf("one value: %+v", iv)
	}
	if iv := meanInterval(nil); iv.n != 0 {
		t.Fatalf("no value: %+v", iv)
	}
}

func TestRatioInterval(t *testing.T) {
	// every pair 1% slower with the tracer on, whatever the machine's
	// speed in that pair: the ratio is exactly 0.99 with no spread
	off := []float64{1000, 700, 1300, 900}
	on := make([]float64, len(off))
	for i := range off {
		on[i] = off[i] * 0.99
	}
	iv := ratioInterval(on, off)
	if iv.n != 4 || !near(iv.est, 0.99, 1e-12) || !near(iv.lo, 0.99, 1e-12) || !near(iv.hi, 0.99, 1e-12) {
		t.Fatalf("got %+v, want 0.99 exactly", iv)
	}
	// ratios 1.1 and 1/1.1: geometric mean 1, the interval around it
	iv = ratioInterval([]float64{1100, 1000}, []float64{1000, 1100})
	if !near(iv.est, 1, 1e-12) || iv.lo >= 1 || iv.hi <= 1 {
		t.Fatalf("got %+v, want 1 inside a wide interval", iv)
	}
	// a pair without a rate is skipped
	if iv := ratioInterval([]float64{0, 990}, []float64{1000, 1000}); iv.n != 1 || !near(iv.est, 0.99, 1e-12) {
		t.Fatalf("got %+v, want the one valid pair", iv)
	}
}

func TestMedianRatioInterval(t *testing.T) {
	// 100 pairs: ratios 0.950, 0.951, ... 1.049 in shuffled order
	var on, off []float64
	for i := range 100 {
		j := (i * 37) % 100
		off = append(off, 1000)
		on = append(on, 1000*(0.95+float64(j)/1000))
	}
	iv := medianRatioInterval(on, off)
	// ranks 40 and 59 (0-based): (100 - 19.6)/2 = 40.2 -> 40
	if iv.n != 100 || !near(iv.est, 0.9995, 1e-9) || !near(iv.lo, 0.990, 1e-9) || !near(iv.hi, 1.009, 1e-9) {
		t.Fatalf("got %+v, want 0.9995 in 0.990 .. 1.009 over 100", iv)
	}
	// a burst that wrecks a few pairs moves the median by little
	for i := range 5 {
		on[i] = 100
	}
	if iv2 := medianRatioInterval(on, off); iv2.est < 0.99 || iv2.lo < 0.98 {
		t.Fatalf("5 wrecked pairs moved the median to %+v", iv2)
	}
	if iv := medianRatioInterval([]float64{990, 0}, []float64{1000, 1000}); iv.n != 1 || !near(iv.est, 0.99, 1e-12) || iv.lo != iv.est || iv.hi != iv.est {
		t.Fatalf("one valid pair: %+v", iv)
	}
	if iv := medianRatioInterval(nil, nil); iv.n != 0 {
		t.Fatalf("no pair: %+v", iv)
	}
}
