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
	hook     string
	statsOn  bool // run-time statistics were on during the slices (someone else's sysctl, say)
	slice    int
	judged   int // records answered with a benign verdict
	duration time.Duration
}

// alternate measures -pairs pairs of -pair-execs execs per slice.
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
	for i := range b.o.pairs {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		rates := map[bool]float64{}
		for _, on := range order {
			if rates[on], err = b.slice(tr, on); err != nil {
				return nil, err
			}
		}
		res.on, res.off = append(res.on, rates[true]), append(res.off, rates[false])
	}
	res.duration = time.Since(start)
	res.statsOn = res.statsOn || statsEnabled()
	res.ratio, res.geo = medianRatioInterval(res.on, res.off), ratioInterval(res.on, res.off)
	if err := tr.Close(); err != nil {
		return nil, err
	}
	res.judged = <-judged
	return res, nil
}

// slice attaches or detaches the hooks (untimed) and times one slice of
// the workload.
func (b *bench) slice(tr *tracer.Tracer, on bool) (float64, error) {
	var err error
	if on {
		err = tr.Attach()
	} else {
		err = tr.Detach()
	}
	if err != nil {
		return 0, fmt.Errorf("tracer on=%v: %w", on, err)
	}
	elapsed, err := b.workload(b.o.binary, b.o.pairExecs)
	if err != nil {
		return 0, err
	}
	return float64(b.o.pairExecs) / elapsed.Seconds(), nil
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
