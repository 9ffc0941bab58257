// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The peer's rounds: execsnoop and a no-tracer baseline, each on a fresh
// process, in a rotating order; a round is measured again when other work
// on the machine disturbed it. (The receiver's own throughput is measured
// by alternating its hooks within one loaded tracer: alternate.go.)

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/mitmexec/mitmexec/test/harness"
)

const (
	settleAfter   = 20 * time.Millisecond // > the reader's 10 ms straggler look
	warmSettle    = 200 * time.Millisecond
	betweenConfig = 300 * time.Millisecond
)

// bench is one run of the benchmark: its options, the sink every collector
// exports to, and the tracers running now (so that Ctrl-C can stop them).
type bench struct {
	o       options
	work    string
	devnull uintptr
	sinkURL string
	sink    *harness.Sink
	stats   *runStats

	mu      sync.Mutex
	running []*tracerProc
	seq     int

	redone          int // rounds measured again because they were disturbed
	disturbedRounds int // rounds kept although still disturbed
}

// config is what runs beside the workload in a round: nothing (the
// baseline) or the peer.
type config string

const (
	cfgBaseline  config = "baseline"
	cfgExecsnoop config = "execsnoop"
)

// sample is one configuration's measurement in one round.
type sample struct {
	cfg        config
	round      int
	execs      int
	elapsed    time.Duration
	execsPerS  float64
	bpfNsRun   float64 // exec path: sum over the tracer's exec-path programs of delta runtime / delta runs
	bpfRuns    uint64  // exec path: summed delta runs
	bpfAllNs   float64 // every program of the tracer
	bpfProgs   []string
	cpu        time.Duration
	cpuSource  string
	rssHWMKiB  uint64
	foreign    []string // other programs that ran about once per exec
	otherForks uint64   // forks on the machine during the workload beyond the workload's own
}

// disturbed tells whether something else on the machine ran on the exec
// path during the measured workload.
func (s sample) disturbed(execs int) bool {
	return len(s.foreign) > 0 || s.otherForks > uint64(max(execs/100, 5))
}

// peerRounds measures the baseline and the peer in -rounds rounds.
func (b *bench) peerRounds() ([]sample, error) {
	configs := []config{cfgBaseline, cfgExecsnoop}
	fmt.Fprintf(os.Stderr, "  peer: %d rounds x %v, %d execs each ...\n", b.o.rounds, configs, b.o.execs)
	var samples []sample
	for r := 0; r < b.o.rounds; r++ {
		order := make([]config, len(configs))
		for i := range configs {
			order[i] = configs[(i+r)%len(configs)]
		}
		round, err := b.round(r, order)
		if err != nil {
			return nil, err
		}
		samples = append(samples, round...)
	}
	return samples, nil
}

// round measures one round, again (up to -retries times) when other work
// on the machine (other execs, another tracer on the exec path) disturbed
// it.
func (b *bench) round(r int, order []config) ([]sample, error) {
	for attempt := 0; ; attempt++ {
		var round []sample
		disturbed := false
		for _, c := range order {
			s, err := b.measure(c, r)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r+1, c, err)
			}
			round = append(round, s)
			b.logSample(s)
			disturbed = disturbed || s.disturbed(b.o.execs)
			time.Sleep(betweenConfig)
		}
		if !disturbed || attempt >= b.o.retries {
			if disturbed {
				b.disturbedRounds++
			}
			return round, nil
		}
		b.redone++
		fmt.Fprintf(os.Stderr, "  round %d disturbed by other activity on the machine; measuring it again in %s\n", r+1, b.o.retryWait)
		time.Sleep(b.o.retryWait)
	}
}

// logSample prints a measurement as it is taken, in full with -v.
func (b *bench) logSample(s sample) {
	if !b.o.verbose {
		fmt.Fprintf(os.Stderr, "  round %d %-9s %7.0f exec/s (other forks %d, other exec hooks %d)\n", s.round+1, s.cfg, s.execsPerS, s.otherForks, len(s.foreign))
		return
	}
	fmt.Fprintf(os.Stderr, "  round %d %-9s %7.0f exec/s  bpf exec path %.0f ns (%d runs), all %.0f ns %v  cpu %v (%s)  hwm %d KiB  other forks %d  foreign %v\n",
		s.round+1, s.cfg, s.execsPerS, s.bpfNsRun, s.bpfRuns, s.bpfAllNs, s.bpfProgs, s.cpu, s.cpuSource, s.rssHWMKiB, s.otherForks, s.foreign)
}

// measure starts the configuration's tracer, warms up, measures the workload
// and stops the tracer.
func (b *bench) measure(c config, round int) (sample, error) {
	s := sample{cfg: c, round: round, execs: b.o.execs}
	var tp *tracerProc
	if c == cfgExecsnoop {
		var err error
		if tp, err = b.startExecsnoop(); err != nil {
			return s, err
		}
		defer b.stop(tp)
	}
	if b.o.warmup > 0 {
		if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
			return s, err
		}
		time.Sleep(warmSettle)
	}
	all0 := snapshotAllPrograms()
	var before tracerSnapshot
	if tp != nil {
		var err error
		if before, err = tp.snapshot(); err != nil {
			return s, err
		}
	}
	forks0 := forkCount()
	elapsed, err := b.workload(b.o.binary, b.o.execs)
	if err != nil {
		return s, err
	}
	forks1 := forkCount()
	time.Sleep(settleAfter)
	all1 := snapshotAllPrograms()
	if d := forks1 - forks0; d > uint64(b.o.execs) {
		s.otherForks = d - uint64(b.o.execs)
	}
	s.elapsed = elapsed
	s.execsPerS = float64(b.o.execs) / elapsed.Seconds()
	var own map[ebpf.ProgramID]bool
	if tp != nil {
		after, err := tp.snapshot()
		if err != nil {
			return s, err
		}
		own = s.addTracer(tp, before, after)
	}
	s.foreign = foreignExecHooks(all0, all1, own, b.o.execs)
	return s, nil
}

// addTracer fills in what the tracer's programs and process cost between
// two snapshots, and returns the tracer's own program ids.
func (s *sample) addTracer(tp *tracerProc, before, after tracerSnapshot) map[ebpf.ProgramID]bool {
	own := map[ebpf.ProgramID]bool{}
	for id := range tp.progs {
		own[id] = true
	}
	for id, a := range after.progs {
		d := progDelta(before.progs[id], a)
		name := tp.names[id]
		s.bpfProgs = append(s.bpfProgs, fmt.Sprintf("%s: %.0f ns/run (%d runs)", name, d.perRun(), d.runs))
		s.bpfAllNs += d.perRun()
		s.bpfRuns += d.runs
		s.bpfNsRun += d.perRun()
	}
	sort.Strings(s.bpfProgs)
	s.cpu = after.cpu - before.cpu
	s.cpuSource = tp.cpuSource
	s.rssHWMKiB = vmHWM(tp.pid)
	return own
}

func progDelta(before, after ebpf.ProgramStats) runDelta {
	return runDelta{runs: after.RunCount - before.RunCount, ns: after.Runtime - before.Runtime}
}
