// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// BPF statistics: the programs a tracer holds and their run-time
// statistics, the receiver's counters map, and every other loaded program
// that ran on the exec path during a workload.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// findPrograms opens the BPF programs the process holds: every fd whose
// fdinfo names a prog_id (program fds and link fds both do).
func (tp *tracerProc) findPrograms(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ids, err := progIDsOf(tp.pid)
		if err == nil {
			for _, id := range ids {
				if _, ok := tp.progs[id]; ok {
					continue
				}
				p, err := ebpf.NewProgramFromID(id)
				if err != nil {
					continue // unloaded meanwhile (a feature probe)
				}
				tp.progs[id] = p
				if info, err := p.Info(); err == nil {
					tp.names[id] = info.Name
				}
			}
		}
		if len(tp.progs) > 0 {
			return nil
		}
		if tp.exited() {
			return fmt.Errorf("%s exited (%v); log tail:\n%s", tp.name, tp.proc.WaitErr(), tp.proc.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) holds no BPF program after %s", tp.name, tp.pid, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// progIDsOf lists the ids of the BPF programs whose fds (program or link)
// the process holds.
func progIDsOf(pid int) ([]ebpf.ProgramID, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "prog_id:")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil || n == 0 {
				continue
			}
			id := ebpf.ProgramID(n)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// The receiver's hooks by program name, as the kernel truncates it (16
// bytes): sched_process_exec_btf and its variants, sched_process_fork_btf
// or _raw.
const (
	execHookPrefix = "sched_process_e"
	forkHookPrefix = "sched_process_f"
)

// frameCounterSubmitted is the index of the frames sent up in the
// behaviour tier's frame_counters map (bpf/frame.h).
const frameCounterSubmitted = 1

// findCountersMap returns the receiver's per-CPU counters map named name
// ("counters" or "frame_counters", see bpf/), or nil.
func findCountersMap(progs map[ebpf.ProgramID]*ebpf.Program, name string) *ebpf.Map {
	for _, p := range progs {
		info, err := p.Info()
		if err != nil {
			continue
		}
		ids, _ := info.MapIDs()
		for _, id := range ids {
			m, err := ebpf.NewMapFromID(id)
			if err != nil {
				continue
			}
			mi, err := m.Info()
			if err == nil && mi.Name == name && mi.Type == ebpf.PerCPUArray {
				return m
			}
			m.Close()
		}
	}
	return nil
}

// sumPerCPU is the total over CPUs of entry idx of a per-CPU array of
// uint64 counters.
func sumPerCPU(m *ebpf.Map, idx uint32) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(idx, &perCPU); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range perCPU {
		sum += v
	}
	return sum, nil
}

// progRuns is one loaded program's name and run count.
type progRuns struct {
	name string
	runs uint64
}

// snapshotAllPrograms reads the run counts of every loaded program.
func snapshotAllPrograms() map[ebpf.ProgramID]progRuns {
	out := map[ebpf.ProgramID]progRuns{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		st, err := p.Stats()
		name := ""
		if info, ierr := p.Info(); ierr == nil {
			name = info.Name
		}
		p.Close()
		if err != nil {
			continue
		}
		out[id] = progRuns{name: name, runs: st.RunCount}
	}
}

// foreignExecHooks names the programs, other than the tracer's own, that ran
// at least about once per exec of the workload: another tracer on the exec
// path (a concurrent test, say) that the numbers would include.
func foreignExecHooks(before, after map[ebpf.ProgramID]progRuns, own map[ebpf.ProgramID]bool, execs int) []string {
	var out []string
	for id, a := range after {
		if own[id] {
			continue
		}
		b, ok := before[id]
		if !ok {
			continue
		}
		if d := a.runs - b.runs; d >= uint64(execs)*9/10 {
			out = append(out, fmt.Sprintf("%d:%s(%d runs)", id, a.name, d))
		}
	}
	sort.Strings(out)
	return out
}
