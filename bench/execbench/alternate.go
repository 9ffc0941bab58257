// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The receiver's throughput cost under the machine's own noise: one loaded
// tracer (internal/tracer, the programs the collector loads) whose exec and
// fork hooks are attached and detached between short slices of the
// workload, in pairs (on, off) and (off, on) by turns. Each pair's ratio of
// exec rates shares whatever else the machine did in that half second.
// This process stands in for the receiver's judge: a record that comes up
// (the benign binary's first sight, someone else's exec) is answered with a
// benign verdict, as the receiver caches one, so that later execs of the
// file stay in the kernel.

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/tracer"
)

// alternation is what the alternating slices measured.
type alternation struct {
	on, off  []float64 // exec/s per slice, paired by index
	ratio    interval  // median of the per-pair ratios, sign-test interval
	geo      interval  // geometric mean, t-interval of the logs
	onFirst  interval  // the pairs measured on then off
	offFirst interval  // the pairs measured off then on
	hook     string
	statsOn  bool // run-time statistics were on during the slices (someone else's sysctl, say)
	slice    int
	judged   int // records answered with a benign verdict
	duration time.Duration
}

// alternate measures -pairs pairs of -pair-execs execs per slice, or as
// many as -pair-budget allows on a slow machine.
func (b *bench) alternate() (*alternation, error) {
	fmt.Fprintf(os.Stderr, "  throughput: %d pairs of slices of %d execs, tracer on and off by turns ...\n", b.o.pairs, b.o.pairExecs)
	tr, err := tracer.New(tracer.Options{})
	if err != nil {
		return nil, fmt.Errorf("load the tracer: %w", err)
	}
	defer tr.Close()
	judged := make(chan int, 1)
	go func() { judged <- judgeBenign(tr) }()
	res := &alternation{hook: tr.Hook(), slice: b.o.pairExecs, statsOn: statsEnabled()}
	if _, err := b.workload(b.o.binary, b.o.warmup); err != nil {
		return nil, err
	}
	time.Sleep(warmSettle)
	start := time.Now()
	attached := true
	for i := 0; i < b.o.pairs && (i < 2 || time.Since(start) < b.o.pairBudget); i++ {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		rates := map[bool]float64{}
		for _, on := range order {
			if rates[on], err = b.slice(tr, on, on != attached); err != nil {
				return nil, err
			}
			attached = on
		}
		res.on, res.off = append(res.on, rates[true]), append(res.off, rates[false])
	}
	res.duration = time.Since(start)
	res.statsOn = res.statsOn || statsEnabled()
	res.ratio, res.geo = medianRatioInterval(res.on, res.off), ratioInterval(res.on, res.off)
	res.onFirst = medianRatioInterval(everyOther(res.on, 0), everyOther(res.off, 0))
	res.offFirst = medianRatioInterval(everyOther(res.on, 1), everyOther(res.off, 1))
	if err := tr.Close(); err != nil {
		return nil, err
	}
	res.judged = <-judged
	return res, nil
}

// toggleSettle execs follow every attach and detach untimed: the kernel's
// work behind a toggle (text patching, RCU grace periods, freeing the
// link) runs on this machine's two CPUs right after it, and would
// otherwise land in the next slice.
const toggleSettle = 20

// slice attaches or detaches the hooks and settles (untimed) and times one
// slice of the workload.
func (b *bench) slice(tr *tracer.Tracer, on bool, toggle bool) (float64, error) {
	if toggle {
		var err error
		if on {
			err = tr.Attach()
		} else {
			err = tr.Detach()
		}
		if err != nil {
			return 0, fmt.Errorf("tracer on=%v: %w", on, err)
		}
		if _, err := b.workload(b.o.binary, toggleSettle); err != nil {
			return 0, err
		}
	}
	elapsed, err := b.workload(b.o.binary, b.o.pairExecs)
	if err != nil {
		return 0, err
	}
	return float64(b.o.pairExecs) / elapsed.Seconds(), nil
}

// everyOther is v[first], v[first+2], ...
func everyOther(v []float64, first int) []float64 {
	var out []float64
	for i := first; i < len(v); i += 2 {
		out = append(out, v[i])
	}
	return out
}

// judgeBenign answers every record with a benign verdict until the tracer
// closes, and returns how many it answered.
func judgeBenign(tr *tracer.Tracer) int {
	n := 0
	for raw := range tr.Records() {
		e, err := event.Decode(raw)
		if err != nil {
			continue
		}
		if tr.PutVerdict(e.File, event.Verdict{Kind: event.VerdictBenign}) == nil {
			n++
		}
	}
	return n
}

// statsEnabled reads whether BPF run-time statistics are on machine-wide
// (this process's EnableStats, or anyone's sysctl).
func statsEnabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
