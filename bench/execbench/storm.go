// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The storm check (-storm): a first-sight storm of distinct copies of the
// benign binary, each judged once, and a burst of tool execs that must all
// arrive; what the collector lost or spent.

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/internal/event"
)

// stormResult is what the storm check measured.
type stormResult struct {
	files        int
	filesElapsed time.Duration
	filesCPU     time.Duration
	filesSubmit  uint64
	filesRsvFail uint64
	cachedEPS    float64 // the same loop length on the cached benign binary
	tools        int
	toolsElapsed time.Duration
	toolsCPU     time.Duration
	toolsArrived int
	toolsRsvFail uint64
	rssKiB       uint64
}

// stormCheck runs a fresh collector through the first-sight storm and the
// tool burst.
func (b *bench) stormCheck() (*stormResult, error) {
	fmt.Fprintln(os.Stderr, "  storm check ...")
	paths, err := b.stormCopies()
	if err != nil {
		return nil, err
	}
	tp, err := b.startCollector()
	if err != nil {
		return nil, err
	}
	defer b.stop(tp)
	if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
		return nil, err
	}
	time.Sleep(warmSettle)
	res := &stormResult{files: len(paths), tools: b.o.stormBurst}
	cached, err := b.workload(b.o.binary, len(paths))
	if err != nil {
		return nil, err
	}
	res.cachedEPS = float64(len(paths)) / cached.Seconds()
	s1, err := b.firstSights(tp, paths, res)
	if err != nil {
		return nil, err
	}
	return res, b.toolBurst(tp, s1, res)
}

// stormCopies writes -storm-files distinct copies of the benign binary.
func (b *bench) stormCopies() ([]string, error) {
	dir := filepath.Join(b.work, "storm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	src, err := os.ReadFile(b.o.binary)
	if err != nil {
		return nil, err
	}
	paths := make([]string, b.o.stormN)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("benign-%05d", i))
		if err := os.WriteFile(paths[i], src, 0o755); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// firstSights execs each copy once: each goes up once and is hashed.
func (b *bench) firstSights(tp *tracerProc, paths []string, res *stormResult) (tracerSnapshot, error) {
	s0, err := tp.snapshot()
	if err != nil {
		return s0, err
	}
	start := time.Now()
	for _, p := range paths {
		if _, err := b.workload(p, 1); err != nil {
			return s0, err
		}
	}
	res.filesElapsed = time.Since(start)
	time.Sleep(time.Second) // let user space catch up
	s1, err := tp.snapshot()
	if err != nil {
		return s1, err
	}
	res.filesCPU = s1.cpu - s0.cpu
	res.filesSubmit = s1.counters[event.CounterSubmitted] - s0.counters[event.CounterSubmitted]
	res.filesRsvFail = s1.counters[event.CounterReserveFailed] - s0.counters[event.CounterReserveFailed]
	return s1, nil
}

// toolBurst execs the tool back to back: every one must arrive.
func (b *bench) toolBurst(tp *tracerProc, s1 tracerSnapshot, res *stormResult) error {
	run := fmt.Sprintf("storm-%d-%d", os.Getpid(), time.Now().UnixNano())
	markers := make(map[string]time.Time, b.o.stormBurst)
	attr := b.procAttr()
	start := time.Now()
	for i := 0; i < b.o.stormBurst; i++ {
		m := fmt.Sprintf("%s%s-%d", markerPrefix, run, i)
		b.sink.Expect(m)
		markers[m] = time.Now()
		pid, err := syscall.ForkExec(b.o.tool, []string{b.o.tool, "-h", m}, attr)
		if err != nil {
			return err
		}
		_ = wait(pid) // the exit status does not matter, only the record
	}
	res.toolsElapsed = time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && b.sink.ArrivedCount(markers) < len(markers) {
		time.Sleep(50 * time.Millisecond)
	}
	s2, err := tp.snapshot()
	if err != nil {
		return err
	}
	res.toolsCPU = s2.cpu - s1.cpu
	res.toolsArrived = b.sink.ArrivedCount(markers)
	res.toolsRsvFail = s2.counters[event.CounterReserveFailed] - s1.counters[event.CounterReserveFailed]
	res.rssKiB = vmHWM(tp.pid)
	return nil
}
