// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// A tracer under measurement (the collector or execsnoop): its process, the
// BPF programs it holds, the cgroup that accounts its CPU; snapshots of
// those, and stopping it, also on Ctrl-C.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/test/harness"
)

const (
	startTimeout = 60 * time.Second
	stopGrace    = 15 * time.Second
)

// tracerProc is a running tracer and what the benchmark reads about it.
type tracerProc struct {
	proc      *harness.Process
	name      string
	pid       int
	cgroup    string // cpuacct cgroup directory, "" when not in use
	cpuSource string
	progs     map[ebpf.ProgramID]*ebpf.Program
	names     map[ebpf.ProgramID]string
	counters  *ebpf.Map // the collector's per-CPU counters map, nil for others
	frameCtrs *ebpf.Map // the collector's per-CPU frame_counters map, nil when the tier is off
}

// tracerSnapshot is a tracer's cumulative numbers at one moment; a
// measurement is the difference of two.
type tracerSnapshot struct {
	progs    map[ebpf.ProgramID]ebpf.ProgramStats
	cpu      time.Duration
	counters map[uint32]uint64
	frames   uint64 // frame records the behaviour tier sent up
	// lastSubmitted is what went up in the window that ended at this
	// snapshot: the collector may still be at work on it.
	lastSubmitted uint64
}

// submitted is every record the collector's kernel side sent up so far:
// exec records and frame records.
func (s tracerSnapshot) submitted() uint64 {
	return s.counters[event.CounterSubmitted] + s.frames
}

// nextSeq numbers work directories and cgroups, unique within the run.
func (b *bench) nextSeq() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return b.seq
}

// tracerDir makes the work directory of one tracer run (config, log).
func (b *bench) tracerDir(name string) (string, error) {
	dir := filepath.Join(b.work, fmt.Sprintf("%s-%03d", name, b.nextSeq()))
	return dir, os.MkdirAll(dir, 0o700)
}

// dieWithUs makes the kernel kill a tracer when the benchmark dies, so that
// no tracer outlives it on the exec path.
func dieWithUs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// track registers a started tracer for stop on Ctrl-C and moves it into a
// cpuacct cgroup of its own.
func (b *bench) track(name string, p *harness.Process) *tracerProc {
	tp := &tracerProc{proc: p, name: name, pid: p.Pid(),
		progs: map[ebpf.ProgramID]*ebpf.Program{}, names: map[ebpf.ProgramID]string{}}
	b.mu.Lock()
	b.running = append(b.running, tp)
	b.mu.Unlock()
	tp.cgroup, tp.cpuSource = joinCPUAcct(tp.pid, fmt.Sprintf("execbench-%d-%s-%d", os.Getpid(), name, b.nextSeq()))
	return tp
}

// exited reports whether the tracer has exited (it should not have).
func (tp *tracerProc) exited() bool { return tp.proc.Exited() }

// snapshot reads the tracer's program statistics, CPU time and (for the
// collector) kernel counters.
func (tp *tracerProc) snapshot() (tracerSnapshot, error) {
	s := tracerSnapshot{progs: map[ebpf.ProgramID]ebpf.ProgramStats{}, counters: map[uint32]uint64{}}
	for id, p := range tp.progs {
		st, err := p.Stats()
		if err != nil {
			return s, fmt.Errorf("%s program %d stats: %w", tp.name, id, err)
		}
		s.progs[id] = *st
	}
	var err error
	if s.cpu, err = tp.cpuTime(); err != nil {
		return s, err
	}
	if tp.counters != nil {
		for _, idx := range []uint32{event.CounterExecs, event.CounterSubmitted, event.CounterReserveFailed} {
			if s.counters[idx], err = sumPerCPU(tp.counters, idx); err != nil {
				return s, fmt.Errorf("collector counter %d: %w", idx, err)
			}
		}
	}
	if tp.frameCtrs != nil {
		if s.frames, err = sumPerCPU(tp.frameCtrs, frameCounterSubmitted); err != nil {
			return s, fmt.Errorf("collector frame counter: %w", err)
		}
	}
	return s, nil
}

// cpuTime is the CPU the process used so far: its cpuacct cgroup's usage
// (every thread, exited ones too, ns), else the sum of its threads'
// schedstat run times.
func (tp *tracerProc) cpuTime() (time.Duration, error) {
	if tp.cgroup != "" {
		return cpuacctUsage(tp.cgroup)
	}
	return schedstatCPU(tp.pid)
}

// stop ends the process (SIGTERM, then SIGKILL), closes its programs and
// removes its cgroup.
func (b *bench) stop(tp *tracerProc) {
	for _, p := range tp.progs {
		p.Close()
	}
	tp.progs = map[ebpf.ProgramID]*ebpf.Program{}
	for _, m := range []**ebpf.Map{&tp.counters, &tp.frameCtrs} {
		if *m != nil {
			(*m).Close()
			*m = nil
		}
	}
	tp.proc.Stop(stopGrace)
	if tp.cgroup != "" {
		// The cgroup can be removed only once the kernel has seen the last
		// task leave it, a moment after the exit.
		for i := 0; i < 50; i++ {
			if err := os.Remove(tp.cgroup); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		tp.cgroup = ""
	}
	b.mu.Lock()
	for i, r := range b.running {
		if r == tp {
			b.running = append(b.running[:i], b.running[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
}

// abort stops every running tracer and removes the work directory (unless
// -keep), on Ctrl-C.
func (b *bench) abort() {
	b.mu.Lock()
	running := append([]*tracerProc(nil), b.running...)
	b.mu.Unlock()
	for _, tp := range running {
		b.stop(tp)
	}
	if !b.o.keepWorkdir {
		_ = os.RemoveAll(b.work)
	}
}
