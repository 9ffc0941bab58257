// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The report: the collector's start-up, idle and workload windows, the
// alternating throughput measure, the peer's rounds, the configurations
// side by side, detection latency, the CI build, the storm check, and the
// targets, PASS or FAIL.

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// report writes the report to w.
func (b *bench) report(w io.Writer, r results) {
	f := figures(r.steady.idle, r.steady.slices)
	b.writeCollector(w, r.steady, f)
	b.writeAlternation(w, r.alt)
	peer := b.writePeer(w, r.peer)
	writeSideBySide(w, r, f, peer)
	b.writeLatency(w, r.lat)
	writeCIBuild(w, r.ciBuild)
	b.writeStorm(w, r.storm)
	writeVerdicts(w, verdicts(summaryOf(r, f)))
	fmt.Fprintf(w, "\nexecbench took %s.\n", r.wall.Round(time.Second))
}

// summaryOf gathers what the targets are checked against.
func summaryOf(r results, f steadyFigures) summary {
	s := summary{
		hasBPF: f.execNs > 0, execHookNs: f.execNs, spawnNs: f.execNs + f.forkNs,
		hasExcess: f.quietSlices > 0, excessMs: f.excessMs,
		hasIdle: f.quietIdle > 0, idleMsPerS: f.idleMsPerS,
		rssMiB: float64(r.steady.rssKiB) / 1024,
	}
	if r.alt != nil && r.alt.ratio.n > 1 {
		s.hasRatio, s.ratio = true, r.alt.ratio
	}
	if l := r.lat; l != nil {
		s.rssMiB = math.Max(s.rssMiB, float64(l.rssKiB)/1024)
		switch {
		case len(l.lat) == 0:
			s.latencyNote = "no samples"
		case l.received < l.sent:
			s.latencyNote = fmt.Sprintf("%d of %d detections arrived", l.received, l.sent)
		default:
			s.hasLatency, s.p99 = true, pct(l.lat, 99)
		}
	}
	if c := r.ciBuild; c != nil && c.buildCPU > 0 {
		s.hasCIBuild, s.ciBuildShare = true, 100*float64(c.collectorCPU)/float64(c.buildCPU)
	}
	return s
}

// writeCollector reports the collector phase: start-up apart, then the
// steady idle windows and workload slices.
func (b *bench) writeCollector(w io.Writer, st *steadyResult, f steadyFigures) {
	fmt.Fprintf(w, "\nCollector at its defaults (CPU source %s; a window is disturbed when the kernel sent a record up in it or in the window before):\n", st.cpuSource)
	fmt.Fprintf(w, "  start-up, first %s: %.2f ms/s (utime+stime of /proc/PID/stat, start-up scan and the %d-exec warm-up included); 5 s windows:",
		idleSteadyAfter, float64(st.startupTicks)/float64(time.Millisecond)/idleSteadyAfter.Seconds(), b.o.warmup)
	for _, win := range st.startup {
		fmt.Fprintf(w, " %.2f", win.msPerS())
	}
	fmt.Fprintf(w, " ms/s\n")
	fmt.Fprintf(w, "  steady idle, from %s after start: %.3f ms/s over %d of %d undisturbed %s windows (%.3f ms/s over all of them)\n",
		idleSteadyAfter, f.idleMsPerS, f.quietIdle, len(st.idle), b.o.idleWindow, f.idleAllMsPerS)
	fmt.Fprintf(w, "  cross-check: utime+stime of /proc/PID/stat over the %s of steady windows and slices: %s (10 ms ticks)\n",
		st.steadyWall.Round(time.Second), st.steadyTicks)
	fmt.Fprintf(w, "  workload slices of %d execs: CPU %.3f ms per 1000 execs, %+.3f ms above idle over the same time (95%% interval %+.3f .. %+.3f) over %d of %d undisturbed slices\n",
		b.o.sliceExecs, f.cpuPer1kMs, f.excessMs.est, f.excessMs.lo, f.excessMs.hi, f.quietSlices, len(st.slices))
	fmt.Fprintf(w, "  BPF per run over every slice (run-time statistics on, their ~0.2 us included): exec hook %.0f ns (%.2f runs per exec), fork hook %.0f ns; per spawned process %.0f ns\n",
		f.execNs, f.execRunsPerExec, f.forkNs, f.execNs+f.forkNs)
	fmt.Fprintf(w, "  %-8s %8s %8s %10s %9s %10s\n", "window", "at s", "len s", "CPU ms/s", "execs", "submitted")
	for i := range st.idle {
		for _, win := range []window{st.idle[i], st.slices[i]} {
			kind := "idle"
			if win.execs > 0 {
				kind = "workload"
			}
			mark := ""
			if win.disturbed {
				mark = "  disturbed"
			}
			fmt.Fprintf(w, "  %-8s %8.1f %8.2f %10.3f %9d %10d%s\n", kind, win.at.Seconds(), win.dur.Seconds(), win.msPerS(), win.execs, win.submitted, mark)
		}
	}
}

// writeAlternation reports the throughput measure.
func (b *bench) writeAlternation(w io.Writer, a *alternation) {
	if a == nil {
		return
	}
	stats := "off"
	if a.statsOn {
		stats = "ON (someone else's; every program run costs ~0.2 us more)"
	}
	fmt.Fprintf(w, "\nThroughput, tracer on / off: %d pairs of %d-exec slices in %s, the hooks (%s) attached and detached between slices (each toggle followed by %d untimed execs), pair order alternating; run-time statistics %s; %d records answered benign.\n",
		a.ratio.n, a.slice, a.duration.Round(time.Second), a.hook, toggleSettle, stats, a.judged)
	fmt.Fprintf(w, "  ratio %.4f, 95%% interval %.4f .. %.4f (median of the per-pair ratios, sign-test interval); geometric mean %.4f (t-interval of the logs %.4f .. %.4f)\n",
		a.ratio.est, a.ratio.lo, a.ratio.hi, a.geo.est, a.geo.lo, a.geo.hi)
	fmt.Fprintf(w, "  exec/s on %.0f, off %.0f (medians over slices); per-pair ratios %s; pairs on first %.4f (%.4f .. %.4f), off first %.4f (%.4f .. %.4f)\n",
		median(a.on), median(a.off), spread(a.on, a.off), a.onFirst.est, a.onFirst.lo, a.onFirst.hi, a.offFirst.est, a.offFirst.lo, a.offFirst.hi)
}

// spread names the per-pair ratios' 5th, 50th and 95th percentiles.
func spread(on, off []float64) string {
	var rs []float64
	for i := range min(len(on), len(off)) {
		if off[i] > 0 {
			rs = append(rs, on[i]/off[i])
		}
	}
	return fmt.Sprintf("p5 %.3f, p50 %.3f, p95 %.3f", quantile(rs, 5), quantile(rs, 50), quantile(rs, 95))
}

// writeSideBySide puts the receiver and the peer next to each other.
func writeSideBySide(w io.Writer, r results, f steadyFigures, peer *peerRow) {
	fmt.Fprintf(w, "\nSide by side:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tracer\tthroughput ratio (95% interval)\tBPF ns per exec (exec path)\tBPF ns per spawned process (all hooks)\tCPU ms per 1000 execs\tpeak RSS MiB")
	ratio := "-"
	if r.alt != nil {
		ratio = fmt.Sprintf("%.4f (%.4f .. %.4f)", r.alt.ratio.est, r.alt.ratio.lo, r.alt.ratio.hi)
	}
	fmt.Fprintf(tw, "mitmexec\t%s\t%.0f\t%.0f\t%.3f\t%.1f\n", ratio, f.execNs, f.execNs+f.forkNs, f.cpuPer1kMs, float64(r.steady.rssKiB)/1024)
	if peer != nil {
		fmt.Fprintf(tw, "execsnoop\t%.3f (%.3f .. %.3f)\t%.0f\t%.0f\t%.2f\t%.1f\n", peer.ratio.est, peer.ratio.lo, peer.ratio.hi, peer.bpfNs, peer.bpfNs, peer.cpuPer1kMs, peer.rssMiB)
	}
	tw.Flush()
	fmt.Fprintf(w, "Ratios are medians of per-pair (per-round) ratios with their sign-test 95%% intervals. mitmexec: ratio from the alternating slices, the rest from the collector's undisturbed workload slices. execsnoop: ratio over its rounds against the round's baseline, the rest medians over rounds; its exec path is the execve enter and exit programs, and it has no fork hook.\n")
}

// peerRow is the peer's line of the side-by-side table.
type peerRow struct {
	ratio      interval
	bpfNs      float64
	cpuPer1kMs float64
	rssMiB     float64
}

// writePeer reports the peer's rounds and returns its summary (nil
// without rounds).
func (b *bench) writePeer(w io.Writer, samples []sample) *peerRow {
	if len(samples) == 0 {
		return nil
	}
	base := map[int]float64{}
	for _, s := range samples {
		if s.cfg == cfgBaseline {
			base[s.round] = s.execsPerS
		}
	}
	fmt.Fprintf(w, "\nPeer rounds (%d execs per run, a fresh process per run, order rotating), exec/s:\n", b.o.execs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tbaseline\texecsnoop (ratio)")
	p := &peerRow{}
	var on, off, bpf, cpu []float64
	for _, s := range samples {
		if s.cfg != cfgExecsnoop {
			continue
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f (%.3f)\n", s.round+1, base[s.round], s.execsPerS, s.execsPerS/base[s.round])
		on, off = append(on, s.execsPerS), append(off, base[s.round])
		bpf = append(bpf, s.bpfNsRun)
		cpu = append(cpu, float64(s.cpu)/float64(time.Millisecond)/float64(s.execs)*1000)
		p.rssMiB = math.Max(p.rssMiB, float64(s.rssHWMKiB)/1024)
	}
	tw.Flush()
	p.ratio, p.bpfNs, p.cpuPer1kMs = medianRatioInterval(on, off), median(bpf), median(cpu)
	fmt.Fprintf(w, "Rounds measured again because other work on the machine disturbed them: %d; kept although still disturbed: %d.\n", b.redone, b.disturbedRounds)
	return p
}

// writeLatency reports the detection latency.
func (b *bench) writeLatency(w io.Writer, lat *latencyResult) {
	if lat == nil {
		return
	}
	fmt.Fprintf(w, "\nDetection latency: %d of %d execs of %s detected at the sink; exec (before fork) to arrival at the OTLP/HTTP sink; p99 of %d samples is nearest-rank.\n",
		lat.received, lat.sent, b.o.tool, len(lat.lat))
	if len(lat.lat) > 0 {
		fmt.Fprintf(w, "  min %s  p50 %s  p90 %s  p99 %s  max %s\n", fmtDur(lat.lat[0]), fmtDur(pct(lat.lat, 50)), fmtDur(pct(lat.lat, 90)), fmtDur(pct(lat.lat, 99)), fmtDur(lat.lat[len(lat.lat)-1]))
	}
	fmt.Fprintf(w, "  during the tool execs: %.1f ms CPU over %s (%.2f ms per detection); peak RSS %.1f MiB\n",
		float64(lat.toolCPU)/float64(time.Millisecond), lat.toolSpan.Round(time.Millisecond),
		float64(lat.toolCPU)/float64(time.Millisecond)/float64(max(lat.received, 1)), float64(lat.rssKiB)/1024)
}

// writeCIBuild reports the CI-build share.
func writeCIBuild(w io.Writer, c *ciBuildResult) {
	if c == nil || c.buildCPU <= 0 {
		return
	}
	fmt.Fprintf(w, "\nCI build: `go %s` of %s with a warm build cache, every test binary new and run once: build CPU %.1f s over %s, collector CPU %.1f ms = %.2f%% of the build's.\n",
		strings.Join(ciBuildArgs, " "), c.dir, c.buildCPU.Seconds(), c.wall.Round(time.Second), float64(c.collectorCPU)/float64(time.Millisecond),
		100*float64(c.collectorCPU)/float64(c.buildCPU))
}

// writeStorm reports the storm check (-storm).
func (b *bench) writeStorm(w io.Writer, storm *stormResult) {
	if storm == nil {
		return
	}
	fmt.Fprintf(w, "\nStorm check:\n")
	fmt.Fprintf(w, "  first sight: %d distinct copies of %s, one exec each: %.0f exec/s (cached binary: %.0f exec/s), %d submitted, %d reservations failed, collector CPU %.1f ms (%.2f ms per new file)\n",
		storm.files, b.o.binary, float64(storm.files)/storm.filesElapsed.Seconds(), storm.cachedEPS, storm.filesSubmit, storm.filesRsvFail,
		float64(storm.filesCPU)/float64(time.Millisecond), float64(storm.filesCPU)/float64(time.Millisecond)/float64(storm.files))
	fmt.Fprintf(w, "  tool burst: %d execs of %s back to back in %s: %d arrived at the sink, %d reservations failed, collector CPU %.1f ms; peak RSS %.1f MiB\n",
		storm.tools, b.o.tool, storm.toolsElapsed.Round(time.Millisecond), storm.toolsArrived, storm.toolsRsvFail,
		float64(storm.toolsCPU)/float64(time.Millisecond), float64(storm.rssKiB)/1024)
}
