// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

// recentExecs remembers the exec records of interpreters that were not
// detected at exec, by pid, so that a tool module one of them opens later
// is reported with the kernel's account of that exec (argv, ancestry,
// cgroup) rather than whatever /proc says by then.
type recentExecs struct {
	byPID *bounded.Map[uint32, event.Exec]
}

// recentInterpreterExecs bounds the memory: an exec record holds up to
// 4 KiB of argv.
const recentInterpreterExecs = 1024

func newRecentExecs(limit int) *recentExecs {
	return &recentExecs{byPID: bounded.New[uint32, event.Exec](limit)}
}

func (c *recentExecs) put(e *event.Exec) { c.byPID.Put(e.PID, *e) }

func (c *recentExecs) get(pid uint32) (event.Exec, bool) { return c.byPID.Get(pid) }

// execOf is the exec record of the process pid: the kernel's, remembered
// when it ran an interpreter, while pid is still that process (a pid reused
// since is another process, whose record is not the kernel's one); else
// what /proc says of the process now.
func (r *mitmexecReceiver) execOf(pid uint32) event.Exec {
	e, ok := r.recent.get(pid)
	if !ok {
		return r.execFromProc(pid)
	}
	if st, err := procfs.ReadStat(r.procRoot, pid); err == nil && !st.SameStart(e.StartBootTimeNs) {
		return r.execFromProc(pid)
	}
	return e // the same process, or gone: the opener was the process the kernel described
}

// execFromProc describes a process the kernel sent no exec record of (it
// started before the collector, or a python child that forked without
// exec'ing) from /proc, as far as it still lives. Every read is checked
// against the start time stat gave: what a later process with the same pid
// shows never fills in the record. Credentials come from /proc/PID/status,
// never from the owner of /proc/PID (a process that is not dumpable shows
// root there).
func (r *mitmexecReceiver) execFromProc(pid uint32) event.Exec {
	e := event.Exec{PID: pid, BootTimeNs: uint64(r.bootClock()), LoginUID: 0xffffffff}
	proc, err := procfs.Open(r.procRoot, pid)
	if err != nil {
		return e
	}
	defer proc.Close()
	st, err := proc.Stat()
	if err != nil {
		return e
	}
	e.PPID = st.PPID
	e.StartBootTimeNs = st.StartTicks * 1e7
	e.Comm = st.Comm
	if args, _, err := procfs.Cmdline(r.procRoot, pid, e.StartBootTimeNs, maxCmdlineBytes); err == nil {
		e.Args = args
	}
	if c, err := procfs.Status(r.procRoot, pid, e.StartBootTimeNs); err == nil {
		e.UID, e.EUID, e.GID, e.EGID, e.Cgroup, e.VPID = c.UID, c.EUID, c.GID, c.EGID, c.Cgroup, c.VPID
	}
	pidNS, _ := proc.Namespace("pid")
	mntNS, _ := proc.Namespace("mnt")
	exePath, errPath := proc.Readlink("exe")
	var exe unix.Stat_t
	errStat := safeopen.RefuseUntrusted(r.procRoot, pid, "/proc/self/exe") // a stat of a FUSE file asks its server
	if errStat == nil {
		exe, errStat = proc.StatLink("exe")
	}
	if proc.CheckStart(e.StartBootTimeNs) != nil {
		return e // the exe link may have been another process's
	}
	e.PidNS, e.MntNS = pidNS, mntNS
	if errPath == nil {
		e.ExePath = strings.TrimSuffix(exePath, " (deleted)")
		e.Name = filepath.Base(e.ExePath)
	}
	if errStat == nil {
		e.File = event.FileID{Dev: event.KernelDev(uint64(exe.Dev)), Ino: uint64(exe.Ino),
			CtimeNs: uint64(exe.Ctim.Sec)*1e9 + uint64(exe.Ctim.Nsec)}
		e.Nlink = uint32(exe.Nlink)
	}
	e.Ancestors = r.ancestorsFromProc(st.PPID)
	return e
}

// ancestorsFromProc walks the parent chain in /proc, as far as the kernel
// record's would go.
func (r *mitmexecReceiver) ancestorsFromProc(ppid uint32) []event.Ancestor {
	var out []event.Ancestor
	for pid := ppid; pid > 0 && len(out) < maxProcAncestors; {
		st, err := procfs.ReadStat(r.procRoot, pid)
		if err != nil {
			break
		}
		out = append(out, event.Ancestor{PID: pid, StartBootTime: st.StartTicks * 1e7, Comm: st.Comm})
		pid = st.PPID
	}
	return out
}

// maxProcAncestors is as many ancestors as the kernel's record carries.
const maxProcAncestors = 8
