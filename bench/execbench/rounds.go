// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The rounds: each configuration measured on a fresh tracer process, in a
// rotating order, and a round measured again when other work on the machine
// disturbed it.

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/mitmexec/mitmexec/internal/event"
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

	mu      sync.Mutex
	running []*tracerProc
	seq     int

	redone          int // rounds measured again because they were disturbed
	disturbedRounds int // rounds kept although still disturbed

	ciBuildRes *ciBuildResult // -cibuild
}

// config is what runs beside the workload: nothing (the baseline), the
// collector, or execsnoop.
type config string

const (
	cfgBaseline  config = "baseline"
	cfgCollector config = "collector"
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
	bpfAllNs   float64 // every program of the tracer (the collector's fork hook too)
	bpfAllRuns uint64
	bpfProgs   []string // name: ns/run (runs), per program
	bpfNsTotal time.Duration
	cpu        time.Duration
	cpuSource  string
	rssHWMKiB  uint64
	submitted  uint64 // collector: records its kernel side sent up during the workload
	rsvFailed  uint64
	kernExecs  uint64
	foreign    []string // other programs that ran about once per exec
	otherForks uint64   // forks on the machine during the workload beyond the workload's own
}

// disturbed tells whether something else on the machine ran on the exec
// path during the measured workload.
func (s sample) disturbed(execs int) bool {
	return len(s.foreign) > 0 || s.otherForks > uint64(max(execs/100, 5))
}

// run measures the rounds, then the detection latency and (with -storm)
// the storm check, and writes the report to stdout.
func (b *bench) run() error {
	configs := []config{cfgBaseline, cfgCollector}
	if b.o.execsnoop != "" {
		configs = append(configs, cfgExecsnoop)
	}
	host := hostInfo()
	fmt.Printf("execbench: %s\n", host)
	fmt.Printf("execbench: %d rounds x %v, %d execs of %s per run (warm-up %d), started %s\n",
		b.o.rounds, configs, b.o.execs, b.o.binary, b.o.warmup, time.Now().UTC().Format(time.RFC3339))

	var samples []sample
	for r := 0; r < b.o.rounds; r++ {
		order := make([]config, len(configs))
		for i := range configs {
			order[i] = configs[(i+r)%len(configs)]
		}
		// A round disturbed by other work on the machine (other execs, another
		// tracer on the exec path) is measured again, all of it, a few times.
		for attempt := 0; ; attempt++ {
			var round []sample
			disturbed := false
			for _, c := range order {
				s, err := b.measure(c, r)
				if err != nil {
					return fmt.Errorf("round %d, %s: %w", r+1, c, err)
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
				samples = append(samples, round...)
				break
			}
			b.redone++
			fmt.Fprintf(os.Stderr, "  round %d disturbed by other activity on the machine; measuring it again in %s\n", r+1, b.o.retryWait)
			time.Sleep(b.o.retryWait)
		}
	}

	lat, err := b.latency()
	if err != nil {
		return fmt.Errorf("detection latency: %w", err)
	}

	var storm *stormResult
	if b.o.storm {
		storm, err = b.stormCheck()
		if err != nil {
			return fmt.Errorf("storm check: %w", err)
		}
	}

	if b.o.ciBuildDir != "" {
		if b.ciBuildRes, err = b.ciBuild(); err != nil {
			return fmt.Errorf("CI build: %w", err)
		}
	}

	b.report(os.Stdout, configs, samples, lat, storm)
	return nil
}

// logSample prints a measurement as it is taken, in full with -v.
func (b *bench) logSample(s sample) {
	if !b.o.verbose {
		fmt.Fprintf(os.Stderr, "  round %d %-9s %7.0f exec/s (other forks %d, other exec hooks %d)\n", s.round+1, s.cfg, s.execsPerS, s.otherForks, len(s.foreign))
		return
	}
	fmt.Fprintf(os.Stderr, "  round %d %-9s %7.0f exec/s  bpf exec path %.0f ns (%d runs), all %.0f ns %v  cpu %v (%s)  hwm %d KiB  submitted %d  other forks %d  foreign %v\n",
		s.round+1, s.cfg, s.execsPerS, s.bpfNsRun, s.bpfRuns, s.bpfAllNs, s.bpfProgs, s.cpu, s.cpuSource, s.rssHWMKiB, s.submitted, s.otherForks, s.foreign)
}

// measure starts the configuration's tracer, warms up, measures the workload
// and stops the tracer.
func (b *bench) measure(c config, round int) (sample, error) {
	s := sample{cfg: c, round: round, execs: b.o.execs}
	var tp *tracerProc
	var err error
	switch c {
	case cfgCollector:
		tp, err = b.startCollector()
	case cfgExecsnoop:
		tp, err = b.startExecsnoop()
	}
	if err != nil {
		return s, err
	}
	defer func() {
		if tp != nil {
			b.stop(tp)
		}
	}()

	if b.o.warmup > 0 {
		if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
			return s, err
		}
		time.Sleep(warmSettle)
	}

	all0 := snapshotAllPrograms()
	var before tracerSnapshot
	if tp != nil {
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
		own = map[ebpf.ProgramID]bool{}
		for id := range tp.progs {
			own[id] = true
		}
		for id, a := range after.progs {
			bp := before.progs[id]
			runs := a.RunCount - bp.RunCount
			rt := a.Runtime - bp.Runtime
			var ns float64
			if runs > 0 {
				ns = float64(rt.Nanoseconds()) / float64(runs)
			}
			name := tp.names[id]
			s.bpfProgs = append(s.bpfProgs, fmt.Sprintf("%s: %.0f ns/run (%d runs)", name, ns, runs))
			s.bpfAllRuns += runs
			s.bpfAllNs += ns
			s.bpfNsTotal += rt
			if !isForkHook(name) {
				s.bpfRuns += runs
				s.bpfNsRun += ns
			}
		}
		sort.Strings(s.bpfProgs)
		s.cpu = after.cpu - before.cpu
		s.cpuSource = tp.cpuSource
		s.submitted = after.counters[event.CounterSubmitted] - before.counters[event.CounterSubmitted]
		s.rsvFailed = after.counters[event.CounterReserveFailed] - before.counters[event.CounterReserveFailed]
		s.kernExecs = after.counters[event.CounterExecs] - before.counters[event.CounterExecs]
		s.rssHWMKiB = vmHWM(tp.pid)
	}
	s.foreign = foreignExecHooks(all0, all1, own, b.o.execs)
	return s, nil
}
