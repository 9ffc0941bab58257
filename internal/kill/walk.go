// SPDX-License-Identifier: Apache-2.0

package kill

import (
	"errors"
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/internal/procfs"
)

// killWalk is one kill's stopped tree; members[0] is the tool.
type killWalk struct {
	k         *Killer
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

func (w *killWalk) add(fd int, e procfs.Stat) {
	w.members = append(w.members, killMember{pid: e.PID, fd: fd})
	w.taken[e.PID] = true
	if e.Pgrp == e.PID || e.Session == e.PID {
		w.leaders[e.PID] = true
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
			children, err := procfs.Children(w.k.procRoot, parent)
			if errors.Is(err, procfs.ErrBound) {
				w.capped = true // the list was cut: more of the tree may live on
			}
			for _, c := range children {
				w.take(c, func(e procfs.Stat) bool { return e.PPID == parent })
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
		if e.StartTicks >= w.rootStart {
			byParent[e.PPID] = append(byParent[e.PPID], e.PID)
		}
	}
	for i := 0; i < len(w.members) && !w.capped; i++ {
		parent := w.members[i].pid
		for _, c := range byParent[parent] {
			w.take(c, func(e procfs.Stat) bool { return e.PPID == parent })
		}
	}
	w.takeLed(all)
}

func (w *killWalk) takeLed(all []procfs.Stat) {
	led := func(e procfs.Stat) bool { return w.leaders[e.Pgrp] || w.leaders[e.Session] }
	for _, e := range all {
		if w.capped {
			return
		}
		if e.StartTicks >= w.rootStart && led(e) {
			w.take(e.PID, led)
		}
	}
}

// take opens, checks and stops one candidate. What was read before the
// open only nominated it: the check is made again after the open, for the
// same reason as the tool's, and also spares whatever started before the
// tool.
func (w *killWalk) take(pid uint32, want func(procfs.Stat) bool) {
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
	e, err := procfs.ReadStat(w.k.procRoot, pid)
	if err != nil || e.StartTicks < w.rootStart || !want(e) || w.k.guarded(pid, e.StartTicks) || w.k.pidfds.signal(fd, syscall.SIGSTOP) != nil {
		w.k.pidfds.close(fd)
		return
	}
	w.add(fd, e)
}

func (w *killWalk) killAll() (Result, error) {
	var res Result
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

// stopped reports whether every thread of pid is stopped or dead: a group
// stop takes hold one thread at a time.
func (k *Killer) stopped(pid uint32) bool {
	tids, err := procfs.Tasks(k.procRoot, pid)
	if err != nil && !errors.Is(err, procfs.ErrBound) {
		return true // reaped: it forks no more
	}
	for _, tid := range tids {
		e, err := procfs.ReadTaskStat(k.procRoot, pid, tid)
		if err != nil {
			continue // the thread exited
		}
		if !e.Stopped() {
			return false
		}
	}
	return true
}

// scan reads every process, in pid order. A listing cut by its bound is
// scanned as far as it went.
func (k *Killer) scan() []procfs.Stat {
	pids, _ := procfs.Pids(k.procRoot)
	var out []procfs.Stat
	for _, pid := range pids {
		if e, err := procfs.ReadStat(k.procRoot, pid); err == nil && e.PID == pid {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}
