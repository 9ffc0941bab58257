// SPDX-License-Identifier: Apache-2.0

package main

// The targets and their PASS/FAIL verdicts, computed from a summary
// of the measurements so that the logic is tested without a kernel.

import (
	"fmt"
	"io"
	"time"
)

// Targets from the issues.
const (
	targetExecHookNs   = 500.0  // BPF ns on the exec hook per benign exec
	targetSpawnNs      = 1000.0 // BPF ns over every hook per spawned process
	targetExcessMs     = 0.1    // collector CPU per 1000 benign execs above idle
	targetIdleMsPerS   = 0.3    // steady idle CPU, from idleSteadyAfter after start
	targetRatio        = 0.995  // throughput with the tracer on / off
	targetRatioLow     = 0.99   // the ratio's lower confidence bound
	targetRSSMiB       = 80.0
	targetP99          = 100 * time.Millisecond
	targetCIBuildShare = 1.0 // percent of a CI build's CPU
)

// summary is what the targets are checked against; a measure that was not
// taken has its has* flag false and fails.
type summary struct {
	hasBPF       bool
	execHookNs   float64
	spawnNs      float64
	hasExcess    bool
	excessMs     interval // collector CPU per 1000 benign execs minus idle over the same time
	hasIdle      bool
	idleMsPerS   float64 // steady idle
	hasRatio     bool
	ratio        interval
	rssMiB       float64
	hasLatency   bool
	p99          time.Duration
	latencyNote  string // why there is no p99
	hasCIBuild   bool
	ciBuildShare float64 // percent
}

// verdict is one target checked.
type verdict struct {
	name string
	pass bool
	got  string
}

// verdicts checks every target.
func verdicts(s summary) []verdict {
	na := "not measured"
	v := []verdict{
		{"BPF on the exec hook <= 500 ns per benign exec (run-time statistics on)", s.hasBPF && s.execHookNs <= targetExecHookNs, na},
		{"BPF over all hooks <= 1000 ns per spawned process (fork + exec)", s.hasBPF && s.spawnNs <= targetSpawnNs, na},
		{"collector CPU per 1000 benign execs <= its idle CPU over the same time + 0.1 ms", s.hasExcess && s.excessMs.est <= targetExcessMs, na},
		{"collector idle CPU <= 0.3 ms/s, steady from 30 s after start", s.hasIdle && s.idleMsPerS <= targetIdleMsPerS, na},
		{"throughput ratio (tracer on / off) >= 0.995 with the 95% lower bound >= 0.99", s.hasRatio && s.ratio.est >= targetRatio && s.ratio.lo >= targetRatioLow, na},
		{"peak RSS <= 80 MiB", s.rssMiB > 0 && s.rssMiB <= targetRSSMiB, na},
		{"detection latency p99 <= 100 ms", s.hasLatency && s.p99 <= targetP99, na},
		{"collector CPU <= 1% of a CI build's", s.hasCIBuild && s.ciBuildShare <= targetCIBuildShare, na},
	}
	if s.hasBPF {
		v[0].got = fmt.Sprintf("%.0f ns", s.execHookNs)
		v[1].got = fmt.Sprintf("%.0f ns", s.spawnNs)
	}
	if s.hasExcess {
		v[2].got = fmt.Sprintf("%+.3f ms above idle (95%% interval %+.3f .. %+.3f, %d slices)", s.excessMs.est, s.excessMs.lo, s.excessMs.hi, s.excessMs.n)
	}
	if s.hasIdle {
		v[3].got = fmt.Sprintf("%.3f ms/s", s.idleMsPerS)
	}
	if s.hasRatio {
		v[4].got = fmt.Sprintf("%.4f (95%% interval %.4f .. %.4f, %d pairs)", s.ratio.est, s.ratio.lo, s.ratio.hi, s.ratio.n)
	}
	if s.rssMiB > 0 {
		v[5].got = fmt.Sprintf("%.1f MiB", s.rssMiB)
	}
	if s.hasLatency {
		v[6].got = fmtDur(s.p99)
	} else if s.latencyNote != "" {
		v[6].got = s.latencyNote
	}
	if s.hasCIBuild {
		v[7].got = fmt.Sprintf("%.2f%%", s.ciBuildShare)
	}
	return v
}

// writeVerdicts prints one line per target, PASS or FAIL first.
func writeVerdicts(w io.Writer, vs []verdict) {
	fmt.Fprintf(w, "\nTargets:\n")
	for _, v := range vs {
		word := "FAIL"
		if v.pass {
			word = "PASS"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", word, v.name, v.got)
	}
}

// fmtDur prints a duration in milliseconds with two decimals, the unit of
// every latency in the report.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
