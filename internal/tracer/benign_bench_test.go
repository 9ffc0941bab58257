// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"slices"
	"syscall"
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// BenchmarkBenignExec measures the kernel side of the benign exec path:
// /bin/true, whose identity has a cached benign verdict, fork+exec'd b.N
// times. It reports the exec hook's mean run time per exec (exec-ns/op) and
// the exec and fork hooks' mean runs added, what one spawned process costs
// (spawn-ns/op), from
// the kernel's run-time statistics, which add their own ~0.1-0.2 us per run.
// Every exec on the host runs the hooks too: measure on a quiet machine.
//
//	go test -run '^$' -bench BenignExec -benchtime 20000x ./internal/tracer/
func BenchmarkBenignExec(b *testing.B) {
	testenv.RequireRoot(b)
	stats, err := EnableRunTimeStats()
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	tr, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	const bin = "/bin/true"
	id, err := fileid.Path(bin)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.PutVerdict(id, event.Verdict{Kind: event.VerdictBenign}); err != nil {
		b.Fatal(err)
	}
	// The host's other execs run the hooks too: each file they exec is
	// cached benign at its first sight, as the collector would, so that
	// they cost what a benign exec costs instead of a record each.
	go func() {
		for rec := range tr.Records() {
			if e, err := event.Decode(rec); err == nil {
				_ = tr.PutVerdict(e.File, event.Verdict{Kind: event.VerdictBenign})
			}
		}
	}()
	spawn := func() {
		pid, err := syscall.ForkExec(bin, []string{bin}, &syscall.ProcAttr{})
		if err != nil {
			b.Fatal(err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	spawn() // the first exec after load pays for cold caches
	countsBefore, err := tr.Stats()
	if err != nil {
		b.Fatal(err)
	}
	// Rounds of execs, each measured on its own: the median round is what
	// a benign exec costs, the others' share of the host's noise aside.
	const round = 1000
	var execNs, spawnNs []float64
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		before, err := tr.ProgramStats()
		if err != nil {
			b.Fatal(err)
		}
		for range min(round, b.N-done) {
			spawn()
		}
		after, err := tr.ProgramStats()
		if err != nil {
			b.Fatal(err)
		}
		execs, forks := after["exec"].Sub(before["exec"]), after["fork"].Sub(before["fork"])
		execNs = append(execNs, float64(execs.PerRun().Nanoseconds()))
		spawnNs = append(spawnNs, float64((execs.PerRun() + forks.PerRun()).Nanoseconds()))
	}
	b.StopTimer()
	counts, err := tr.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(median(execNs), "exec-ns/op")
	b.ReportMetric(median(spawnNs), "spawn-ns/op")
	b.ReportMetric(float64(counts.Submitted-countsBefore.Submitted)/float64(b.N), "submitted/op")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
