// SPDX-License-Identifier: Apache-2.0

package main

import (
	"testing"
	"time"
)

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// Made-up windows: quiet idle at 0.2 ms/s, one disturbed idle window at
// 10 ms/s left out of the rate, slices whose CPU is exactly idle plus
// 0.05 ms per 1000 execs, and one disturbed slice left out of the excess.
func TestFigures(t *testing.T) {
	idle := []window{
		{dur: 3 * time.Second, cpu: ms(0.6)},
		{dur: 3 * time.Second, cpu: ms(0.6)},
		{dur: 2 * time.Second, cpu: ms(20), disturbed: true},
	}
	slice := func(dur time.Duration, disturbed bool) window {
		return window{dur: dur, execs: 1000, cpu: ms(0.2*dur.Seconds() + 0.05), disturbed: disturbed,
			exec: runDelta{runs: 1000, ns: 400 * time.Microsecond}, fork: runDelta{runs: 1000, ns: 300 * time.Microsecond}}
	}
	slices := []window{slice(time.Second, false), slice(2*time.Second, false), slice(time.Second, true)}
	slices[2].cpu = ms(50)
	f := figures(idle, slices)
	if f.quietIdle != 2 || f.quietSlices != 2 {
		t.Fatalf("quiet idle %d, quiet slices %d: want 2 and 2", f.quietIdle, f.quietSlices)
	}
	if !near(f.idleMsPerS, 0.2, 1e-6) {
		t.Errorf("idle %.4f ms/s, want 0.2", f.idleMsPerS)
	}
	if !near(f.idleAllMsPerS, 21.2/8, 1e-6) {
		t.Errorf("idle over every window %.4f ms/s, want %.4f", f.idleAllMsPerS, 21.2/8)
	}
	if !near(f.excessMs.est, 0.05, 1e-6) || f.excessMs.n != 2 {
		t.Errorf("excess %+v, want 0.05 ms over 2 slices", f.excessMs)
	}
	// (0.25 + 0.45) ms over 2000 execs
	if !near(f.cpuPer1kMs, 0.35, 1e-6) {
		t.Errorf("CPU per 1000 execs %.4f, want 0.35", f.cpuPer1kMs)
	}
	// BPF over every slice, disturbed or not: 400 and 300 ns per run
	if !near(f.execNs, 400, 1e-9) || !near(f.forkNs, 300, 1e-9) || !near(f.execRunsPerExec, 1, 1e-9) {
		t.Errorf("exec %.1f ns, fork %.1f ns, runs/exec %.2f: want 400, 300, 1", f.execNs, f.forkNs, f.execRunsPerExec)
	}
}

// Every window disturbed: no idle rate and no excess, so the targets fail
// rather than pass on nothing.
func TestFiguresAllDisturbed(t *testing.T) {
	w := window{dur: time.Second, cpu: ms(5), execs: 1000, disturbed: true}
	f := figures([]window{{dur: time.Second, cpu: ms(5), disturbed: true}}, []window{w})
	if f.quietIdle != 0 || f.quietSlices != 0 || f.excessMs.n != 0 {
		t.Fatalf("got %+v, want nothing undisturbed", f)
	}
}
