// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// Detection latency: a known tool exec'd with a unique marker, timed from
// before the fork to the record's arrival at the sink; and the collector's
// CPU while detecting.

import (
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"
)

// markerPrefix starts every marker the benchmark puts into a tool's argv.
const markerPrefix = "mitmexec-bench-"

// latencyResult is what the detection-latency run measured.
type latencyResult struct {
	sent     int
	received int
	lat      []time.Duration // sorted
	rssKiB   uint64
	toolCPU  time.Duration // CPU during the tool execs
	toolSpan time.Duration
}

// latency starts a fresh collector, execs the tool -latency-execs times and
// times each detection to its arrival at the sink.
func (b *bench) latency() (*latencyResult, error) {
	fmt.Fprintln(os.Stderr, "  detection latency ...")
	cfg := latencyReceiverConfig
	if b.o.receiverCfg != "" {
		cfg = b.o.receiverCfg
	}
	tp, err := b.startCollectorWith(cfg)
	if err != nil {
		return nil, err
	}
	defer b.stop(tp)
	if b.o.warmup > 0 {
		if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
			return nil, err
		}
	}
	time.Sleep(warmSettle)
	res := &latencyResult{sent: b.o.latencyN}
	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	starts := make(map[string]time.Time, b.o.latencyN)
	attr := b.procAttr()
	c0, _ := tp.cpuTime()
	t0 := time.Now()
	for i := 0; i < b.o.latencyN; i++ {
		marker := fmt.Sprintf("%s%s-%d", markerPrefix, run, i)
		b.sink.Expect(marker)
		start := time.Now()
		pid, err := syscall.ForkExec(b.o.tool, []string{b.o.tool, "-h", marker}, attr)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", b.o.tool, err)
		}
		starts[marker] = start
		_ = wait(pid) // the exit status does not matter, only the record
		time.Sleep(b.o.latencyGap)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && b.sink.ArrivedCount(starts) < len(starts) {
		time.Sleep(20 * time.Millisecond)
	}
	res.toolSpan = time.Since(t0)
	c1, _ := tp.cpuTime()
	res.toolCPU = c1 - c0
	for m, st := range starts {
		if at, ok := b.sink.Arrival(m); ok {
			res.lat = append(res.lat, at.Sub(st))
		}
	}
	res.received = len(res.lat)
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	res.rssKiB = vmHWM(tp.pid)
	return res, nil
}
