// SPDX-License-Identifier: Apache-2.0

// Package kill kills a process and the tree it started, from user space,
// for what the kernel could not decide alone: it stops the tree, walks it
// until nothing new appears, then kills it through pidfds. It reads /proc
// through internal/procfs.
package kill

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/internal/procfs"
)

// Result says what a kill did.
type Result struct {
	Killed      int  // processes that took the SIGKILL, the tool included
	Descendants int  // of those, the ones other than the tool
	Capped      bool // the walk stopped at a limit: more of the tree may live on
}

const (
	// maxKillProcs bounds one kill: a fork bomb costs at most this many
	// pidfds and /proc reads per pass, and the rest of it lives on.
	maxKillProcs = 4096
	// maxKillPasses bounds the walks of the stopped tree. A pass finds new
	// processes only when a member was still forking, which the stop
	// prevents; something that keeps resuming the tree (SIGCONT from
	// outside it) must not keep the killer busy.
	maxKillPasses = 32
	// killStopWait bounds the wait for the stops to take hold. A thread in
	// uninterruptible sleep (disk, a vfork parent waiting for its child)
	// stops only when it wakes; past this the walk goes on without it.
	killStopWait = 500 * time.Millisecond
)

// Killer sends SIGKILL from user space, for what the kernel could not
// decide alone: the tool and the processes it started. It never kills
// pid 1, the collector, or the collector's ancestors, and it checks the
// start time so that a reused pid is spared.
type Killer struct {
	procRoot string
	// guard: the processes never killed, pid -> start (clock ticks since
	// boot). A pid names a process only while it lives: once an ancestor
	// of the collector exits, the next process with its pid is not
	// protected. A start of 0 guards the pid whatever its start: pid 1,
	// and a process whose start could not be read.
	guard map[uint32]uint64
	// childrenFiles: the kernel has CONFIG_PROC_CHILDREN, so each thread
	// lists its own children and the walk need not read every process.
	childrenFiles bool
	maxProcs      int
	stopWait      time.Duration
	pidfds        pidfds
}

// pidfds opens and signals processes through pidfds. A pid is only a
// number, free for the next fork as soon as its process is reaped, which
// can happen between reading /proc and kill(2); a pidfd names one process
// and a signal sent through it can only reach that process, or nothing
// once it has died. hostPidfds are the kernel's (kill_linux.go); tests with
// a fake /proc pass their own, so that no real process is signalled.
type pidfds struct {
	open   func(pid uint32) (int, error)
	signal func(fd int, sig syscall.Signal) error
	close  func(fd int)
}

// New returns a killer that reads procRoot (normally /proc) and guards
// pid 1, the calling process and its ancestors as they are now.
func New(procRoot string) *Killer {
	k := &Killer{procRoot: procRoot, guard: map[uint32]uint64{1: 0},
		maxProcs: maxKillProcs, stopWait: killStopWait, pidfds: hostPidfds}
	for pid := uint32(os.Getpid()); pid > 1; {
		if _, seen := k.guard[pid]; seen {
			break
		}
		st, err := procfs.ReadStat(procRoot, pid)
		if err != nil {
			k.guard[pid] = 0
			break
		}
		k.guard[pid] = st.StartTicks
		pid = st.PPID
	}
	k.childrenFiles = procfs.HasChildrenFiles(procRoot)
	return k
}

// guarded reports whether the process pid that started at startTicks is
// one the killer must spare.
func (k *Killer) guarded(pid uint32, startTicks uint64) bool {
	s, ok := k.guard[pid]
	return ok && (s == 0 || s == startTicks)
}

// Protected is a process the kernel must not kill either: its pid and its
// start in clock ticks since boot (0: any).
type Protected struct {
	PID        uint32
	StartTicks uint64
}

// Protected lists the processes the kernel must not kill either.
func (k *Killer) Protected() []Protected {
	out := make([]Protected, 0, len(k.guard))
	for pid, start := range k.guard {
		out = append(out, Protected{pid, start})
	}
	return out
}

// ErrProtected refuses to kill a guarded process.
var ErrProtected = errors.New("process is protected: pid 1, the collector or one of its ancestors")

// Kill stops the tool and every process it started since, then kills them
// all. startBootNs is the tool's start (CLOCK_BOOTTIME, the kernel's
// start_boottime); 0 means unknown, and then the pid is trusted as it is.
//
// Killing top down would let the processes not yet reached fork on, and a
// parent killed first orphans its children: the kernel reparents them to
// init or a subreaper and the walk no longer finds them. A stopped process
// can neither fork nor exit on its own, so the tree is stopped first,
// parent before children, and killed only once a walk of it finds nothing
// new.
func (k *Killer) Kill(pid uint32, startBootNs uint64) (Result, error) {
	if pid == 1 {
		return Result{}, ErrProtected
	}
	fd, err := k.pidfds.open(pid)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return Result{}, fmt.Errorf("pid %d already exited: %w", pid, err)
		}
		return Result{}, fmt.Errorf("pidfd_open of pid %d: %w", pid, err)
	}
	// Read only after the open: the pidfd names whoever held the pid at
	// the open. If that was the exec'd process and it still lives, it
	// still holds the pid now, so a matching start time proves the pidfd
	// names it; if it has died since, the pidfd reaches nobody.
	e, err := procfs.ReadStat(k.procRoot, pid)
	if err != nil {
		k.pidfds.close(fd)
		return Result{}, fmt.Errorf("pid %d already exited: %w", pid, err)
	}
	if k.guarded(pid, e.StartTicks) {
		k.pidfds.close(fd)
		return Result{}, ErrProtected
	}
	if startBootNs != 0 && !e.SameStart(startBootNs) {
		k.pidfds.close(fd)
		return Result{}, fmt.Errorf("pid %d now belongs to another process: start time %d ticks since boot, the exec'd one's is %d (±1)",
			pid, e.StartTicks, startBootNs/1e7)
	}
	if err := k.pidfds.signal(fd, syscall.SIGSTOP); err != nil {
		k.pidfds.close(fd)
		return Result{}, fmt.Errorf("sigstop of pid %d: %w", pid, err)
	}
	w := &killWalk{k: k, rootStart: e.StartTicks, taken: map[uint32]bool{}, leaders: map[uint32]bool{}}
	w.add(fd, e)
	w.run()
	return w.killAll()
}
