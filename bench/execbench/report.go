// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The report: per-round throughput, the configurations side by side, notes
// and warnings, detection latency and idle CPU, the storm check, and the
// issue's targets checked against the collector's numbers.

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from the issue.
const (
	targetRatio      = 0.99
	targetBPFNs      = 1000.0
	targetCPUMsPer1k = 2.0
	targetRSSMiB     = 80.0
	targetP99        = 100 * time.Millisecond
)

// row is one configuration's line of the side-by-side table.
type row struct {
	cfg        config
	eps        float64
	ratio      float64
	hasRatio   bool
	bpfNs      float64
	runsPerEx  float64
	bpfAllNs   float64
	cpuMsPer1k float64
	rssMiB     float64
	submitted  uint64
	rsvFailed  uint64
	cpuSource  string
	foreign    int
}

// summarize reduces cfg's samples to medians over rounds (peak RSS: the
// maximum; records submitted: the sum).
func summarize(cfg config, samples []sample, baseEPS map[int]float64) row {
	r := row{cfg: cfg}
	var eps, ratios, bpf, runs, all, cpu []float64
	var hwm uint64
	for _, s := range samples {
		if s.cfg != cfg {
			continue
		}
		eps = append(eps, s.execsPerS)
		if be, ok := baseEPS[s.round]; ok && cfg != cfgBaseline {
			ratios = append(ratios, s.execsPerS/be)
		}
		if cfg != cfgBaseline {
			bpf = append(bpf, s.bpfNsRun)
			all = append(all, s.bpfAllNs)
			runs = append(runs, float64(s.bpfRuns)/float64(s.execs))
			cpu = append(cpu, float64(s.cpu)/float64(time.Millisecond)/float64(s.execs)*1000)
			hwm = max(hwm, s.rssHWMKiB)
			r.submitted += s.submitted
			r.rsvFailed += s.rsvFailed
			r.cpuSource = s.cpuSource
		}
		if len(s.foreign) > 0 {
			r.foreign++
		}
	}
	r.eps = median(eps)
	if len(ratios) > 0 {
		r.ratio, r.hasRatio = median(ratios), true
	}
	r.bpfNs = median(bpf)
	r.runsPerEx = median(runs)
	r.bpfAllNs = median(all)
	r.cpuMsPer1k = median(cpu)
	r.rssMiB = float64(hwm) / 1024
	return r
}

// report writes the report to w.
func (b *bench) report(w io.Writer, configs []config, samples []sample, lat *latencyResult, storm *stormResult) {
	o := b.o
	baseEPS := map[int]float64{}
	for _, s := range samples {
		if s.cfg == cfgBaseline {
			baseEPS[s.round] = s.execsPerS
		}
	}
	rows := map[config]row{}
	for _, c := range configs {
		rows[c] = summarize(c, samples, baseEPS)
	}

	fmt.Fprintf(w, "\nPer round, exec/s (ratio to the round's baseline):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "round\t")
	for _, c := range configs {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw, "order")
	for r := 0; r < o.rounds; r++ {
		fmt.Fprintf(tw, "%d\t", r+1)
		var order []string
		for _, c := range configs {
			for _, s := range samples {
				if s.round == r && s.cfg == c {
					if c == cfgBaseline {
						fmt.Fprintf(tw, "%.0f\t", s.execsPerS)
					} else {
						fmt.Fprintf(tw, "%.0f (%.3f)\t", s.execsPerS, s.execsPerS/baseEPS[r])
					}
				}
			}
		}
		for i := range configs {
			order = append(order, string(configs[(i+r)%len(configs)]))
		}
		fmt.Fprintln(tw, strings.Join(order, ","))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSide by side (%d rounds, %d execs of %s per run; medians over rounds, peak RSS the maximum):\n", o.rounds, o.execs, o.binary)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "config\texec/s\tratio vs baseline\tBPF ns/exec (exec path)\texec-path runs/exec\tBPF ns/fork+exec (all hooks)\tCPU ms/1000 execs\tpeak RSS MiB\trecords submitted\tlatency p50 / p99")
	for _, c := range configs {
		r := rows[c]
		ratio, bpf, runs, all, cpu, rss, sub, l := "-", "-", "-", "-", "-", "-", "-", "-"
		if r.hasRatio {
			ratio = fmt.Sprintf("%.3f", r.ratio)
		}
		if c != cfgBaseline {
			bpf = fmt.Sprintf("%.0f", r.bpfNs)
			runs = fmt.Sprintf("%.2f", r.runsPerEx)
			all = fmt.Sprintf("%.0f", r.bpfAllNs)
			cpu = fmt.Sprintf("%.2f", r.cpuMsPer1k)
			rss = fmt.Sprintf("%.1f", r.rssMiB)
		}
		if c == cfgCollector {
			sub = fmt.Sprintf("%d", r.submitted)
			if lat != nil && len(lat.lat) > 0 {
				l = fmt.Sprintf("%s / %s", fmtDur(pct(lat.lat, 50)), fmtDur(pct(lat.lat, 99)))
			}
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c, r.eps, ratio, bpf, runs, all, cpu, rss, sub, l)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nNotes: BPF ns/exec (exec path) = sum over the tracer's exec-path programs (the receiver's sched_process_exec hook; execsnoop's execve enter and exit) of delta run time / delta run count; all hooks adds the receiver's sched_process_fork hook, which runs once per fork. Run-time statistics are on and add their own ~0.2 us per run.\n")
	fmt.Fprintf(w, "CPU = the tracer process's CPU during the workload (+%s), source %s. records submitted = the receiver's kernel counter (every exec on the machine, not only ours), summed over all measured workloads (%d execs).\n",
		settleAfter, rows[cfgCollector].cpuSource, o.rounds*o.execs)
	rc := o.receiverCfg
	if rc == "" {
		rc = "{} (defaults)"
	}
	fmt.Fprintf(w, "Receiver config: mitmexec: %s. Rounds measured again because other work on the machine disturbed them: %d; rounds kept although still disturbed: %d.\n",
		rc, b.redone, b.disturbedRounds)
	for _, c := range configs {
		if n := rows[c].foreign; n > 0 {
			fmt.Fprintf(w, "WARNING: %s: in %d of %d runs another program ran about once per exec (another tracer on the exec path); see -v.\n", c, n, o.rounds)
		}
	}
	if rsv := rows[cfgCollector].rsvFailed; rsv > 0 {
		fmt.Fprintf(w, "WARNING: collector: %d ring-buffer reservations failed during the workloads.\n", rsv)
	}
	if lat != nil {
		fmt.Fprintf(w, "Detection latency: %d of %d execs of %s detected at the sink; exec (before fork) to arrival at the OTLP/HTTP sink; p99 of %d samples is nearest-rank.\n",
			lat.received, lat.sent, o.tool, len(lat.lat))
		if len(lat.lat) > 0 {
			fmt.Fprintf(w, "  min %s  p50 %s  p90 %s  p99 %s  max %s\n", fmtDur(lat.lat[0]), fmtDur(pct(lat.lat, 50)), fmtDur(pct(lat.lat, 90)), fmtDur(pct(lat.lat, 99)), fmtDur(lat.lat[len(lat.lat)-1]))
		}
		idle := float64(lat.idleCPU) / float64(time.Millisecond) / lat.idleWin.Seconds()
		col := rows[cfgCollector]
		fmt.Fprintf(w, "Collector idle CPU: %.2f ms per second over %s with no exec of ours (%d forks elsewhere on the machine meanwhile); target <= 0.5 ms/s: %s.\n",
			idle, lat.idleWin, lat.idleForks, map[bool]string{true: "met", false: "NOT met"}[idle <= 0.5])
		if col.eps > 0 {
			perK := idle * 1000 / col.eps
			verdict := "the poll loop, not the execs, is most of the collector's CPU"
			if perK < col.cpuMsPer1k/2 {
				verdict = "the execs are most of the collector's CPU"
			}
			fmt.Fprintf(w, "  At the measured %.0f exec/s that idle rate alone would be %.2f ms per 1000 execs, against %.2f ms measured during the workloads: %s.\n",
				col.eps, perK, col.cpuMsPer1k, verdict)
		}
		fmt.Fprintf(w, "During the %d tool execs: %.1f ms CPU over %s (%.2f ms per detection). Peak RSS %.1f MiB.\n",
			lat.sent,
			float64(lat.toolCPU)/float64(time.Millisecond), lat.toolSpan.Round(time.Millisecond),
			float64(lat.toolCPU)/float64(time.Millisecond)/float64(max(lat.received, 1)), float64(lat.rssKiB)/1024)
	}
	if c := b.ciBuildRes; c != nil && c.buildCPU > 0 {
		share := 100 * float64(c.collectorCPU) / float64(c.buildCPU)
		fmt.Fprintf(w, "\nCI build: `go %s` of %s with a warm build cache, every test binary new and run once: build CPU %.1f s over %s, collector CPU %.1f ms = %.2f%% of the build's; target <= 1%%: %s.\n",
			strings.Join(ciBuildArgs, " "), c.dir, c.buildCPU.Seconds(), c.wall.Round(time.Second), float64(c.collectorCPU)/float64(time.Millisecond), share,
			map[bool]string{true: "met", false: "NOT met"}[share <= 1])
	}
	if storm != nil {
		fmt.Fprintf(w, "\nStorm check:\n")
		fmt.Fprintf(w, "  first sight: %d distinct copies of %s, one exec each: %.0f exec/s (cached binary: %.0f exec/s), %d submitted, %d reservations failed, collector CPU %.1f ms (%.2f ms per new file)\n",
			storm.files, o.binary, float64(storm.files)/storm.filesElapsed.Seconds(), storm.cachedEPS, storm.filesSubmit, storm.filesRsvFail,
			float64(storm.filesCPU)/float64(time.Millisecond), float64(storm.filesCPU)/float64(time.Millisecond)/float64(storm.files))
		fmt.Fprintf(w, "  tool burst: %d execs of %s back to back in %s: %d arrived at the sink, %d reservations failed, collector CPU %.1f ms; peak RSS %.1f MiB\n",
			storm.tools, o.tool, storm.toolsElapsed.Round(time.Millisecond), storm.toolsArrived, storm.toolsRsvFail,
			float64(storm.toolsCPU)/float64(time.Millisecond), float64(storm.rssKiB)/1024)
	}

	col := rows[cfgCollector]
	fmt.Fprintf(w, "\nTargets (collector):\n")
	check := func(name string, ok bool, got string) {
		v := "FAIL"
		if ok {
			v = "PASS"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", v, name, got)
	}
	check("exec throughput ratio >= 0.99 (median of per-round ratios)", col.hasRatio && col.ratio >= targetRatio, fmt.Sprintf("%.3f over %d rounds", col.ratio, o.rounds))
	check("BPF time <= 1 us per benign exec on the exec hook", col.bpfNs <= targetBPFNs, fmt.Sprintf("%.0f ns", col.bpfNs))
	check("collector CPU <= 2 ms per 1000 benign execs", col.cpuMsPer1k <= targetCPUMsPer1k, fmt.Sprintf("%.2f ms", col.cpuMsPer1k))
	peak := col.rssMiB
	if lat != nil {
		peak = math.Max(peak, float64(lat.rssKiB)/1024)
	}
	check("peak RSS <= 80 MiB", peak <= targetRSSMiB, fmt.Sprintf("%.1f MiB", peak))
	if lat != nil && lat.received == lat.sent && len(lat.lat) > 0 {
		p99 := pct(lat.lat, 99)
		check("detection latency p99 <= 100 ms", p99 <= targetP99, fmtDur(p99))
	} else {
		got := "no samples"
		if lat != nil {
			got = fmt.Sprintf("%d of %d detections arrived", lat.received, lat.sent)
		}
		check("detection latency p99 <= 100 ms", false, got)
	}
}

// fmtDur prints a duration in milliseconds with two decimals, the unit of
// every latency in the report.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
