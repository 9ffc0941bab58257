// SPDX-License-Identifier: Apache-2.0

package main

// The collector phase's figures from its windows: idle rate, CPU per 1000
// benign execs above it, BPF time per run. Pure, so that the arithmetic is
// tested with made-up windows.

import "time"

// runDelta is what a program ran between two statistics snapshots.
type runDelta struct {
	runs uint64
	ns   time.Duration
}

// perRun is the mean run time in ns, 0 without a run.
func (d runDelta) perRun() float64 {
	if d.runs == 0 {
		return 0
	}
	return float64(d.ns.Nanoseconds()) / float64(d.runs)
}

// window is the collector measured over an idle window or a workload slice.
type window struct {
	at        time.Duration // since the collector started
	dur       time.Duration
	cpu       time.Duration
	execs     int // the workload's, 0 for an idle window
	submitted uint64
	disturbed bool // a record went up in it or in the window before
	exec      runDelta
	fork      runDelta
}

// msPerS is the window's CPU rate in ms per second.
func (w window) msPerS() float64 {
	if w.dur <= 0 {
		return 0
	}
	return float64(w.cpu) / float64(time.Millisecond) / w.dur.Seconds()
}

// steadyFigures are the collector phase's figures.
type steadyFigures struct {
	quietIdle, quietSlices int
	idleMsPerS             float64 // over the undisturbed idle windows
	idleAllMsPerS          float64 // over every idle window
	excessMs               interval
	cpuPer1kMs             float64 // undisturbed slices' CPU per 1000 execs, idle included
	execNs, forkNs         float64 // per run, over every slice
	execRunsPerExec        float64
}

// pooledRate is the CPU rate over ws in ms per second (total CPU over total
// time), 0 for none.
func pooledRate(ws []window) float64 {
	var cpu, dur time.Duration
	for _, w := range ws {
		cpu += w.cpu
		dur += w.dur
	}
	return window{cpu: cpu, dur: dur}.msPerS()
}

// figures reduces the steady windows. The idle rate is pooled over the
// undisturbed idle windows; each undisturbed slice's excess is its CPU
// minus that rate over the slice's time, per 1000 of its execs.
func figures(idle, slices []window) steadyFigures {
	var f steadyFigures
	var quiet []window
	for _, w := range idle {
		if !w.disturbed {
			quiet = append(quiet, w)
		}
	}
	f.quietIdle = len(quiet)
	f.idleMsPerS, f.idleAllMsPerS = pooledRate(quiet), pooledRate(idle)
	var excess []float64
	var cpu time.Duration
	execs := 0
	var ex, fk runDelta
	for _, w := range slices {
		ex.runs, ex.ns = ex.runs+w.exec.runs, ex.ns+w.exec.ns
		fk.runs, fk.ns = fk.runs+w.fork.runs, fk.ns+w.fork.ns
		if w.disturbed || w.execs == 0 {
			continue
		}
		idleMs := f.idleMsPerS * w.dur.Seconds()
		excess = append(excess, (float64(w.cpu)/float64(time.Millisecond)-idleMs)/float64(w.execs)*1000)
		cpu += w.cpu
		execs += w.execs
	}
	f.quietSlices = len(excess)
	f.excessMs = meanInterval(excess)
	if execs > 0 {
		f.cpuPer1kMs = float64(cpu) / float64(time.Millisecond) / float64(execs) * 1000
	}
	f.execNs, f.forkNs = ex.perRun(), fk.perRun()
	total := 0
	for _, w := range slices {
		total += w.execs
	}
	if total > 0 {
		f.execRunsPerExec = float64(ex.runs) / float64(total)
	}
	return f
}
