// SPDX-License-Identifier: Apache-2.0

package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procstat"
)

// recentExecs remembers the exec records of interpreters that were not
// detected at exec, by pid, so that a tool module one of them opens later
// is reported with the kernel's account of that exec (argv, ancestry,
// cgroup) rather than whatever /proc says by then. Two generations keep it
// bounded.
type recentExecs struct {
	mu       sync.Mutex
	limit    int
	cur, old map[uint32]event.Exec
}

// recentInterpreterExecs bounds the memory: an exec record holds up to
// 4 KiB of argv.
const recentInterpreterExecs = 1024

func newRecentExecs(limit int) *recentExecs {
	return &recentExecs{limit: max(limit/2, 1), cur: map[uint32]event.Exec{}, old: map[uint32]event.Exec{}}
}

func (c *recentExecs) put(e *event.Exec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.limit {
		c.old, c.cur = c.cur, make(map[uint32]event.Exec, c.limit)
	}
	c.cur[e.PID] = *e
}

func (c *recentExecs) get(pid uint32) (event.Exec, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[pid]; ok {
		return e, true
	}
	e, ok := c.old[pid]
	return e, ok
}

// execFromProc describes a process the kernel sent no exec record of (it
// started before the collector) from /proc, as far as it still lives.
func (r *mitmexecReceiver) execFromProc(pid uint32) event.Exec {
	e := event.Exec{PID: pid, BootTimeNs: uint64(r.bootClock())}
	dir := filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10))
	if st, err := procstat.Read(r.procRoot, pid); err == nil {
		e.PPID = st.PPID
		e.StartBootTimeNs = st.StartTicks * 1e7
	}
	if args, _, err := procstat.Cmdline(r.procRoot, pid, e.StartBootTimeNs, maxCmdlineBytes); err == nil {
		e.Args = args
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		e.ExePath = strings.TrimSuffix(exe, " (deleted)")
		e.Name = filepath.Base(e.ExePath)
	}
	var exe unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "exe"), &exe); err == nil {
		e.File = event.FileID{Dev: event.KernelDev(uint64(exe.Dev)), Ino: uint64(exe.Ino),
			CtimeNs: uint64(exe.Ctim.Sec)*1e9 + uint64(exe.Ctim.Nsec)}
		e.Nlink = uint32(exe.Nlink)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err == nil {
		e.UID, e.EUID = st.Uid, st.Uid
		e.GID, e.EGID = st.Gid, st.Gid
	}
	e.LoginUID = 0xffffffff
	return e
}

// mountNamespace returns the inode number of a process's mount namespace,
// 0 when it cannot be read.
func mountNamespace(procRoot string, pid uint32) uint32 {
	link, err := os.Readlink(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "ns", "mnt"))
	if err != nil {
		return 0
	}
	// "mnt:[4026531841]"
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "mnt:["), "]"), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
