// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/internal/procstat"
)

// killResult says what a kill did.
type killResult struct {
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

// killer sends SIGKILL from user space, for what the kernel could not
// decide alone: the tool and the processes it started. It never kills
// pid 1, the collector, or the collector's ancestors, and it checks the
// start time so that a reused pid is spared.
type killer struct {
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
// once it has died. hostPidfds is the kernel's (kill_linux.go); tests with
// a fake /proc pass their own, so that no real process is signalled.
type pidfds struct {
	open   func(pid uint32) (int, error)
	signal func(fd int, sig syscall.Signal) error
	close  func(fd int)
}

func newKiller(procRoot string) *killer {
	k := &killer{procRoot: procRoot, guard: map[uint32]uint64{1: 0},
		maxProcs: maxKillProcs, stopWait: killStopWait, pidfds: hostPidfds}
	for pid := uint32(os.Getpid()); pid > 1; {
		if _, seen := k.guard[pid]; seen {
			break
		}
		st, err := procstat.Read(procRoot, pid)
		if err != nil {
			k.guard[pid] = 0
			break
		}
		k.guard[pid] = st.StartTicks
		pid = st.PPID
	}
	children, _ := filepath.Glob(filepath.Join(procRoot, "self", "task", "*", "children"))
	k.childrenFiles = len(children) > 0
	return k
}

// guarded reports whether the process pid that started at startTicks is
// one the killer must spare.
func (k *killer) guarded(pid uint32, startTicks uint64) bool {
	s, ok := k.guard[pid]
	return ok && (s == 0 || s == startTicks)
}

// protectedProcess is a process the kernel must not kill either: its pid
// and its start in clock ticks since boot (0: any).
type protectedProcess struct {
	pid        uint32
	startTicks uint64
}

// protected lists the processes the kernel must not kill either.
func (k *killer) protected() []protectedProcess {
	out := make([]protectedProcess, 0, len(k.guard))
	for pid, start := range k.guard {
		out = append(out, protectedProcess{pid, start})
	}
	return out
}

var errProtected = errors.New("process is protected: pid 1, the collector or one of its ancestors")

// kill stops the tool and every process it started since, then kills them
// all. startBootNs is the tool's start (CLOCK_BOOTTIME, the kernel's
// start_boottime); 0 means unknown, and then the pid is trusted as it is.
//
// Killing top down would let the processes not yet reached fork on, and a
// parent killed first orphans its children: the kernel reparents them to
// init or a subreaper and the walk no longer finds them. A stopped process
// can neither fork nor exit on its own, so the tree is stopped first,
// parent before children, and killed only once a walk of it finds nothing
// new.
func (k *killer) kill(pid uint32, startBootNs uint64) (killResult, error) {
	if pid == 1 {
		return killResult{}, errProtected
	}
	fd, err := k.pidfds.open(pid)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return killResult{}, fmt.Errorf("pid %d already exited: %w", pid, err)
		}
		return killResult{}, fmt.Errorf("pidfd_open of pid %d: %w", pid, err)
	}
	// Read only after the open: the pidfd names whoever held the pid at
	// the open. If that was the exec'd process and it still lives, it
	// still holds the pid now, so a matching start time proves the pidfd
	// names it; if it has died since, the pidfd reaches nobody.
	e, err := readProcEntry(filepath.Join(k.procRoot, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		k.pidfds.close(fd)
		return killResult{}, fmt.Errorf("pid %d already exited: %w", pid, err)
	}
	if k.guarded(pid, e.startTicks) {
		k.pidfds.close(fd)
		return killResult{}, errProtected
	}
	if startBootNs != 0 && !(procstat.Stat{PPID: e.ppid, StartTicks: e.startTicks}).SameStart(startBootNs) {
		k.pidfds.close(fd)
		return killResult{}, fmt.Errorf("pid %d now belongs to another process: start time %d ticks since boot, the exec'd one's is %d (±1)",
			pid, e.startTicks, startBootNs/1e7)
	}
	if err := k.pidfds.signal(fd, syscall.SIGSTOP); err != nil {
		k.pidfds.close(fd)
		return killResult{}, fmt.Errorf("sigstop of pid %d: %w", pid, err)
	}
	w := &killWalk{k: k, rootStart: e.startTicks, taken: map[uint32]bool{}, leaders: map[uint32]bool{}}
	w.add(fd, e)
	w.run()
	return w.killAll()
}

// killWalk is one kill's stopped tree; members[0] is the tool.
type killWalk struct {
	k         *killer
	rootStart uint64 // the tool's start in ticks: only what started since is taken
	members   []killMember
	taken     map[uint32]bool
	// leaders are members that lead their process group or session.
	leaders map[uint32]bool
	capped  bool
}

type killMember struct {
	pid     uint32
	fd      int
	stopped bool // every thread was seen stopped (or dead)
}

func (w *killWalk) add(fd int, e procEntry) {
	w.members = append(w.members, killMember{pid: e.pid, fd: fd})
	w.taken[e.pid] = true
	if e.pgrp == e.pid || e.session == e.pid {
		w.leaders[e.pid] = true
	}
}

// run walks the tree until a pass over it, made when every member had
// stopped, finds nothing new. Waiting for the stops matters: a fork
// already inside the kernel when SIGSTOP arrives still completes (fork
// checks for pending signals when it starts and gives up later only for
// fatal ones), and the new child does not inherit the pending stop. Once
// every thread of a member is stopped, no fork of it is in flight and its
// children are all listed.
func (w *killWalk) run() {
	deadline := time.Now().Add(w.k.stopWait)
	for pass := 0; ; pass++ {
		if pass == maxKillPasses {
			w.capped = true
			return
		}
		w.awaitStopped(deadline)
		n := len(w.members)
		w.discover()
		if w.capped || len(w.members) == n {
			return
		}
	}
}

func (w *killWalk) awaitStopped(deadline time.Time) {
	for {
		all := true
		for i := range w.members {
			m := &w.members[i]
			if !m.stopped {
				m.stopped = w.k.stopped(m.pid)
				all = all && m.stopped
			}
		}
		if all || time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// discover takes the members' children, then the members of the groups
// and sessions that members lead. A descendant whose parent exited before
// the kill has been reparented to init or a subreaper, so neither a
// children file nor a ppid leads to it any more; it keeps its process group
// and session, though. The kernel does not reuse a pid while a group or
// session still carries it as id, so a group or session whose id is a
// member's pid was made with that member as its leader, and everyone in it
// joined since: the member's descendants, or the rest of its pipeline when
// a shell ran the tool as a job.
func (w *killWalk) discover() {
	if w.k.childrenFiles {
		for i := 0; i < len(w.members) && !w.capped; i++ {
			parent := w.members[i].pid
			for _, c := range w.k.children(parent) {
				w.take(c, func(e procEntry) bool { return e.ppid == parent })
			}
		}
		if len(w.leaders) > 0 {
			w.takeLed(w.k.scan())
		}
		return
	}
	// Without CONFIG_PROC_CHILDREN every process's stat must be read to
	// know its parent.
	all := w.k.scan()
	byParent := map[uint32][]uint32{}
	for _, e := range all {
		if e.startTicks >= w.rootStart {
			byParent[e.ppid] = append(byParent[e.ppid], e.pid)
		}
	}
	for i := 0; i < len(w.members) && !w.capped; i++ {
		parent := w.members[i].pid
		for _, c := range byParent[parent] {
			w.take(c, func(e procEntry) bool { return e.ppid == parent })
		}
	}
	w.takeLed(all)
}

func (w *killWalk) takeLed(all []procEntry) {
	led := func(e procEntry) bool { return w.leaders[e.pgrp] || w.leaders[e.session] }
	for _, e := range all {
		if w.capped {
			return
		}
		if e.startTicks >= w.rootStart && led(e) {
			w.take(e.pid, led)
		}
	}
}

// take opens, checks and stops one candidate. What was read before the
// open only nominated it: the check is made again after the open, for the
// same reason as the tool's, and also spares whatever started before the
// tool.
func (w *killWalk) take(pid uint32, want func(procEntry) bool) {
	if w.capped || w.taken[pid] || pid == 1 {
		return
	}
	if len(w.members) >= w.k.maxProcs {
		w.capped = true
		return
	}
	fd, err := w.k.pidfds.open(pid)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			w.capped = true // the descriptor limit is the cap now
		}
		return // otherwise it exited since it was listed
	}
	e, err := readProcEntry(filepath.Join(w.k.procRoot, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil || e.startTicks < w.rootStart || !want(e) || w.k.guarded(pid, e.startTicks) || w.k.pidfds.signal(fd, syscall.SIGSTOP) != nil {
		w.k.pidfds.close(fd)
		return
	}
	w.add(fd, e)
}

func (w *killWalk) killAll() (killResult, error) {
	var res killResult
	var err error
	res.Capped = w.capped
	for i, m := range w.members {
		switch kerr := w.k.pidfds.signal(m.fd, syscall.SIGKILL); {
		case kerr == nil:
			res.Killed++
			if i > 0 {
				res.Descendants++
			}
		case i == 0:
			err = fmt.Errorf("sigkill of pid %d: %w", m.pid, kerr)
		}
		w.k.pidfds.close(m.fd)
	}
	return res, err
}

// children lists the children of every thread of pid: a child belongs to
// the thread that forked it.
func (k *killer) children(pid uint32) []uint32 {
	dir := filepath.Join(k.procRoot, strconv.FormatUint(uint64(pid), 10), "task")
	tasks, _ := os.ReadDir(dir)
	var out []uint32
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.ParseUint(f, 10, 32); err == nil {
				out = append(out, uint32(c))
			}
		}
	}
	return out
}

// stopped reports whether every thread of pid is stopped or dead: a group
// stop takes hold one thread at a time.
func (k *killer) stopped(pid uint32) bool {
	dir := filepath.Join(k.procRoot, strconv.FormatUint(uint64(pid), 10), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true // reaped: it forks no more
	}
	for _, t := range tasks {
		e, err := readProcEntry(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			continue // the thread exited
		}
		if !strings.ContainsRune("TtZXx", rune(e.state)) {
			return false
		}
	}
	return true
}

// scan reads every process, in pid order.
func (k *killer) scan() []procEntry {
	dirs, _ := os.ReadDir(k.procRoot)
	var out []procEntry
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		if e, err := readProcEntry(filepath.Join(k.procRoot, d.Name(), "stat")); err == nil && uint64(e.pid) == pid {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// procEntry is what the walk needs of a stat file. procstat.Stat has the
// parent and the start only; the walk also needs the state (has the stop
// taken hold?) and the group and session (which orphans keep).
type procEntry struct {
	pid        uint32
	state      byte
	ppid       uint32
	pgrp       uint32
	session    uint32
	startTicks uint64
}

// readProcEntry parses a /proc/PID/stat or /proc/PID/task/TID/stat file.
func readProcEntry(path string) (procEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procEntry{}, err
	}
	s := string(b)
	// comm may hold spaces and parentheses: fields start after the last ')'.
	lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if lp < 1 || rp < lp {
		return procEntry{}, fmt.Errorf("%s is malformed: no comm in parentheses", path)
	}
	f := strings.Fields(s[rp+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procEntry{}, fmt.Errorf("%s is malformed: %d fields after comm, want at least 20", path, len(f))
	}
	var n [4]uint64
	for i, s := range []string{strings.TrimSpace(s[:lp]), f[1], f[2], f[3]} {
		if n[i], err = strconv.ParseUint(s, 10, 32); err != nil {
			return procEntry{}, fmt.Errorf("%s is malformed: %w", path, err)
		}
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procEntry{}, fmt.Errorf("%s is malformed: %w", path, err)
	}
	return procEntry{pid: uint32(n[0]), state: f[0][0], ppid: uint32(n[1]), pgrp: uint32(n[2]),
		session: uint32(n[3]), startTicks: start}, nil
}
