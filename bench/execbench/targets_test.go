// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// passing is a summary that meets every target.
func passing() summary {
	return summary{
		hasBPF: true, execHookNs: 450, spawnNs: 900,
		hasExcess: true, excessMs: interval{est: 0.02, lo: -0.01, hi: 0.05, n: 20},
		hasIdle: true, idleMsPerS: 0.2,
		hasRatio: true, ratio: interval{est: 0.998, lo: 0.992, hi: 1.004, n: 300},
		rssMiB:     60,
		hasLatency: true, p99: 5 * time.Millisecond,
		hasCIBuild: true, ciBuildShare: 0.4,
	}
}

func failing(vs []verdict) []string {
	var out []string
	for _, v := range vs {
		if !v.pass {
			out = append(out, v.name)
		}
	}
	return out
}

func TestVerdictsAllPass(t *testing.T) {
	if f := failing(verdicts(passing())); len(f) != 0 {
		t.Fatalf("failing: %v", f)
	}
}

// Each target fails on its own, at its bound's far side, and a measure not
// taken fails too.
func TestVerdictsEachFails(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(*summary)
		want  string
	}{
		{"exec hook", func(s *summary) { s.execHookNs = 501 }, "exec hook"},
		{"spawn", func(s *summary) { s.spawnNs = 1001 }, "all hooks"},
		{"excess", func(s *summary) { s.excessMs.est = 0.11 }, "per 1000 benign execs"},
		{"idle", func(s *summary) { s.idleMsPerS = 0.31 }, "idle CPU"},
		{"ratio", func(s *summary) { s.ratio.est = 0.994 }, "throughput"},
		{"ratio lower bound", func(s *summary) { s.ratio.lo = 0.989 }, "throughput"},
		{"rss", func(s *summary) { s.rssMiB = 81 }, "RSS"},
		{"latency", func(s *summary) { s.p99 = 101 * time.Millisecond }, "latency"},
		{"ci build", func(s *summary) { s.ciBuildShare = 1.01 }, "CI build"},
		{"no BPF figures", func(s *summary) { s.hasBPF = false }, "exec hook"},
		{"no ratio", func(s *summary) { s.hasRatio = false }, "throughput"},
		{"no idle", func(s *summary) { s.hasIdle = false }, "idle CPU"},
		{"no latency", func(s *summary) { s.hasLatency = false }, "latency"},
	} {
		s := passing()
		c.spoil(&s)
		f := failing(verdicts(s))
		if len(f) != 1 && !(c.name == "no BPF figures" && len(f) == 2) {
			t.Errorf("%s: failing %v, want one", c.name, f)
			continue
		}
		if !strings.Contains(f[0], c.want) {
			t.Errorf("%s: failing %q, want the %s target", c.name, f[0], c.want)
		}
	}
}

// The bounds themselves pass.
func TestVerdictsAtTheBounds(t *testing.T) {
	s := passing()
	s.execHookNs, s.spawnNs, s.excessMs.est, s.idleMsPerS = 500, 1000, 0.1, 0.3
	s.ratio = interval{est: 0.995, lo: 0.99, hi: 1, n: 9}
	s.rssMiB, s.p99, s.ciBuildShare = 80, 100*time.Millisecond, 1
	if f := failing(verdicts(s)); len(f) != 0 {
		t.Fatalf("failing at the bounds: %v", f)
	}
}

func TestWriteVerdicts(t *testing.T) {
	var b bytes.Buffer
	s := passing()
	s.idleMsPerS = 0.5
	writeVerdicts(&b, verdicts(s))
	out := b.String()
	if !strings.Contains(out, "  FAIL  collector idle CPU <= 0.3 ms/s, steady from 30 s after start: 0.500 ms/s\n") {
		t.Errorf("no FAIL line for idle in:\n%s", out)
	}
	if strings.Count(out, "  PASS  ") != 7 {
		t.Errorf("want 7 PASS lines in:\n%s", out)
	}
}
