// SPDX-License-Identifier: Apache-2.0

// Package procfs is the project's one reader of /proc: a process's stat,
// status, cgroup, cmdline, environ, its threads' children, its namespace
// links and its exe, cwd and root links, and the process and thread lists.
//
// Three rules hold for every read:
//   - Bounded: in bytes, and in time where the kernel reads the process's
//     memory (cmdline and environ come from the process's own pages, which
//     it can make slow with userfaultfd or a FUSE-backed mapping). A read
//     past its bound is an error naming the file and the bound, or, where
//     the caller asked for a prefix (cmdline, environ), a cut it reports.
//   - Pinned: Open holds the process's /proc directory by a descriptor. The
//     descriptor stands for the process itself, not its number: once that
//     process is reaped nothing under it opens any more, even when a new
//     process has its pid.
//   - Start-time-checked: a descriptor opened after the pid was reused
//     holds the new process, so the start time (Stat.StartTicks) is checked
//     on both sides of a read: the first check proves the descriptor holds
//     the expected process, the second that it still did during the read.
//
// Opening files a process names (its exe, its scripts, its stdin) is
// internal/safeopen's job; this package reads what /proc itself says.
package procfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/safeopen"
)

// Root is where the host's procfs is mounted.
const Root = "/proc"

const (
	// StatMax bounds a stat line: comm is at most 16 bytes and the 50
	// numbers after it fit in well under 1 KiB.
	StatMax = 4 << 10
	// StatusMax bounds /proc/PID/status (a few KiB) and /proc/PID/cgroup.
	StatusMax = 16 << 10
	// ChildrenMax bounds one thread's children list: 8 bytes a pid, so
	// 131072 children, far more than a kill walk takes.
	ChildrenMax = 1 << 20
	// LinkMax bounds a link's target: the kernel prints /proc links into a
	// page, NUL included, and refuses (ENAMETOOLONG) what does not fit.
	LinkMax = 4<<10 - 1
	// MaxListed bounds a directory listing (processes, threads): the
	// kernel's own ceiling on pid_max (PID_MAX_LIMIT), so no real listing
	// reaches it.
	MaxListed = 1 << 22
	// ReadTime bounds one read of a /proc file.
	ReadTime = 100 * time.Millisecond
)

// ErrBound means a read or a listing was cut by its bound.
var ErrBound = errors.New("cut by its bound")

// pidDir is procRoot/PID.
func pidDir(procRoot string, pid uint32) string {
	return filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10))
}

// ReadStat parses procRoot/PID/stat. One open of the file is pinned by
// itself: the line names the process the open found, pid and start.
func ReadStat(procRoot string, pid uint32) (Stat, error) {
	return readStatFile(filepath.Join(pidDir(procRoot, pid), "stat"), fmt.Sprintf("stat of pid %d", pid))
}

// ReadTaskStat parses procRoot/PID/task/TID/stat, one thread's.
func ReadTaskStat(procRoot string, pid, tid uint32) (Stat, error) {
	p := filepath.Join(pidDir(procRoot, pid), "task", strconv.FormatUint(uint64(tid), 10), "stat")
	return readStatFile(p, fmt.Sprintf("stat of thread %d of pid %d", tid, pid))
}

func readStatFile(path, what string) (Stat, error) {
	f, err := openFile(unix.AT_FDCWD, path)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	return readStat(f, what)
}

func readStat(f *os.File, what string) (Stat, error) {
	b, err := readWhole(f, StatMax, ReadTime, what)
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("%s is %w", what, err)
	}
	return st, nil
}

// openFile opens name (relative to dirFd, or a path with AT_FDCWD) for
// reading. O_NOFOLLOW: /proc's plain files are no links, so a link where
// one is expected is not /proc (a test's fake tree, or a mount over it).
func openFile(dirFd int, name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(dirFd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// readBounded reads f within max bytes and maxTime; cut reports that a
// bound ended it.
func readBounded(f *os.File, max int, maxTime time.Duration) (b []byte, cut bool, err error) {
	_, complete, err := safeopen.ReadBounded(f, int64(max), time.Now().Add(maxTime), func(c []byte) { b = append(b, c...) })
	return b, !complete, err
}

// readWhole is readBounded for a file that must be read to its end: a cut
// is an error naming the file and the bounds, returned with what was read.
func readWhole(f *os.File, max int, maxTime time.Duration, what string) ([]byte, error) {
	b, cut, err := readBounded(f, max, maxTime)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if cut {
		return b, fmt.Errorf("%s is over %d bytes or took over %s: %w", what, max, maxTime, ErrBound)
	}
	return b, nil
}
