// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ProgramStat is what the kernel counted for one program while run-time
// statistics were on (kernel.bpf_stats_enabled, EnableRunTimeStats): both
// counts only grow, so a measurement is the difference of two reads.
type ProgramStat struct {
	Runs    uint64        // runs counted
	RunTime time.Duration // time spent in the program over those runs
}

// Sub is the runs and time between an earlier read and this one.
func (s ProgramStat) Sub(before ProgramStat) ProgramStat {
	return ProgramStat{Runs: s.Runs - before.Runs, RunTime: s.RunTime - before.RunTime}
}

// PerRun is the mean time of one run, 0 without runs.
func (s ProgramStat) PerRun() time.Duration {
	if s.Runs == 0 {
		return 0
	}
	return s.RunTime / time.Duration(s.Runs)
}

// EnableRunTimeStats has the kernel count every BPF program's runs and run
// time until the returned closer is closed (or sysctl
// kernel.bpf_stats_enabled=1 is set). Counting costs each run about 0.1-0.2
// us of its own, so it is for measurements, not for production.
func EnableRunTimeStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	return c, nil
}

// ProgramStats reads the kernel's statistics of the tracer's attached
// programs by role: "exec" (the sched_process_exec hook), "fork" (the
// sched_process_fork hook), "deny" (lsm/bprm_check_security, when block
// mode attached it) and "frame" (the behaviour tier's hook, when it runs;
// "frame_lsm" for the LSM hook beside the tracepoint). Without run-time
// statistics on, every RunTime stays 0.
func (t *Tracer) ProgramStats() (map[string]ProgramStat, error) {
	out := map[string]ProgramStat{}
	roles := []string{"exec", "fork"}
	for i, p := range t.progs {
		if i >= len(roles) {
			break
		}
		st, err := statOf(p)
		if err != nil {
			return nil, fmt.Errorf("statistics of the %s program: %w", roles[i], err)
		}
		out[roles[i]] = st
	}
	for i, p := range t.frames.progs {
		role := "frame"
		if i > 0 {
			role = "frame_lsm"
		}
		st, err := statOf(p)
		if err != nil {
			return nil, fmt.Errorf("statistics of the %s program: %w", role, err)
		}
		out[role] = st
	}
	if t.deny != nil {
		st, err := statOfLink(t.deny)
		if err != nil {
			return nil, fmt.Errorf("statistics of the deny program: %w", err)
		}
		out["deny"] = st
	}
	return out, nil
}

func statOf(p *ebpf.Program) (ProgramStat, error) {
	s, err := p.Stats()
	if err != nil {
		return ProgramStat{}, err
	}
	return ProgramStat{Runs: s.RunCount, RunTime: s.Runtime}, nil
}

// statOfLink reads the statistics of the program a link holds (the deny
// program's own fd is closed once it is attached).
func statOfLink(l link.Link) (ProgramStat, error) {
	info, err := l.Info()
	if err != nil {
		return ProgramStat{}, err
	}
	p, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return ProgramStat{}, err
	}
	defer p.Close()
	return statOf(p)
}
