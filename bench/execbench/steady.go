// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The collector's own cost, on one fresh collector at its defaults: its
// CPU in the first idleSteadyAfter after start (reported apart), then in
// steady state idle windows alternating with workload slices of benign
// execs, and its hooks' BPF run time over those slices. A window or slice
// in which the kernel sent a record up (someone else's first sight or tool
// on this shared machine) is disturbed: the collector was told something
// there, and the figures are over the undisturbed ones.

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
)

// idleSteadyAfter is when the steady state starts: the first sights of the
// warm-up judged, the start-up scan's memory returned.
const idleSteadyAfter = 30 * time.Second

// steadyResult is what the collector phase measured.
type steadyResult struct {
	cpuSource    string
	startup      []window
	startupTicks time.Duration // utime+stime over the first idleSteadyAfter (/proc/PID/stat)
	steadyTicks  time.Duration // utime+stime over the steady windows, a cross-check of cpuacct
	steadyWall   time.Duration
	idle         []window
	slices       []window
	rssKiB       uint64
}

// steady runs the collector phase.
func (b *bench) steady() (*steadyResult, error) {
	fmt.Fprintf(os.Stderr, "  collector: start-up (%s), then %d x [%s idle, %d execs] ...\n", idleSteadyAfter, b.o.slices, b.o.idleWindow, b.o.sliceExecs)
	t0 := time.Now()
	tp, err := b.startCollector()
	if err != nil {
		return nil, err
	}
	defer b.stop(tp)
	res := &steadyResult{cpuSource: tp.cpuSource}
	if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
		return nil, err
	}
	prev, err := tp.snapshot()
	if err != nil {
		return nil, err
	}
	for since := time.Since(t0); since < idleSteadyAfter; since = time.Since(t0) {
		w, next, err := b.window(tp, t0, prev, min(5*time.Second, idleSteadyAfter-since), 0)
		if err != nil {
			return nil, err
		}
		res.startup, prev = append(res.startup, w), next
	}
	res.startupTicks, _ = harness.ProcStatCPU(tp.pid)
	steadyStart := time.Now()
	for range b.o.slices {
		w, next, err := b.window(tp, t0, prev, b.o.idleWindow, 0)
		if err != nil {
			return nil, err
		}
		res.idle, prev = append(res.idle, w), next
		w, next, err = b.window(tp, t0, prev, 0, b.o.sliceExecs)
		if err != nil {
			return nil, err
		}
		res.slices, prev = append(res.slices, w), next
	}
	res.steadyWall = time.Since(steadyStart)
	if end, err := harness.ProcStatCPU(tp.pid); err == nil {
		res.steadyTicks = end - res.startupTicks
	}
	res.rssKiB = vmHWM(tp.pid)
	return res, nil
}

// window measures the collector over an idle pause (execs 0) or a workload
// of execs benign execs, from the snapshot prev taken at its start.
func (b *bench) window(tp *tracerProc, t0 time.Time, prev tracerSnapshot, idle time.Duration, execs int) (window, tracerSnapshot, error) {
	w := window{at: time.Since(t0), execs: execs}
	start := time.Now()
	if execs > 0 {
		if _, err := b.workload(b.o.binary, execs); err != nil {
			return w, prev, err
		}
		time.Sleep(settleAfter)
	} else {
		time.Sleep(idle)
	}
	next, err := tp.snapshot()
	if err != nil {
		return w, prev, err
	}
	w.dur = time.Since(start)
	w.cpu = next.cpu - prev.cpu
	w.submitted = next.submitted() - prev.submitted()
	w.disturbed = w.submitted > 0 || prev.lastSubmitted > 0
	next.lastSubmitted = w.submitted
	for id, a := range next.progs {
		d := progDelta(prev.progs[id], a)
		switch name := tp.names[id]; {
		case strings.HasPrefix(name, execHookPrefix):
			w.exec = d
		case strings.HasPrefix(name, forkHookPrefix):
			w.fork = d
		}
	}
	return w, next, nil
}
