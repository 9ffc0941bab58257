// SPDX-License-Identifier: Apache-2.0

// Package procstat reads a process's /proc entries the receiver needs:
// stat (the parent pid and the start time, which tells a process from a
// later one that reuses its pid) and cmdline. Every read is bounded in
// bytes and in time: a process controls what its cmdline holds and how
// long reading it takes (the kernel reads it from the process's memory).
package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/safeopen"
)

const (
	// statMax bounds a stat line: comm is at most 16 bytes and the 50
	// numbers after it fit in well under 1 KiB.
	statMax = 4 << 10
	// readTime bounds one read of a /proc file.
	readTime = 100 * time.Millisecond
)

// Stat is what the receiver needs of /proc/PID/stat.
type Stat struct {
	Comm       string
	PPID       uint32
	StartTicks uint64 // field 22: clock ticks since boot (USER_HZ is 100 on every Linux ABI)
}

// Read parses procRoot/PID/stat.
func Read(procRoot string, pid uint32) (Stat, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		return Stat{}, err
	}
	defer f.Close()
	return readStat(f, pid)
}

func readStat(f *os.File, pid uint32) (Stat, error) {
	b, cut, err := readBounded(f, statMax)
	if err != nil {
		return Stat{}, fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	if cut {
		return Stat{}, fmt.Errorf("stat of pid %d is over %d bytes or took over %s", pid, statMax, readTime)
	}
	// comm may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	f2 := strings.Fields(string(b[i+1:]))
	if len(f2) < 20 {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	ppid, err1 := strconv.ParseUint(f2[1], 10, 32)
	start, err2 := strconv.ParseUint(f2[19], 10, 64)
	if err1 != nil || err2 != nil {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	comm := ""
	if j := strings.IndexByte(string(b), '('); j >= 0 && j < i {
		comm = string(b[j+1 : i])
	}
	return Stat{Comm: comm, PPID: uint32(ppid), StartTicks: start}, nil
}

// SameStart compares the start time with the kernel's start_boottime in
// nanoseconds, allowing one tick of rounding.
func (s Stat) SameStart(startBootNs uint64) bool {
	want := startBootNs / 1e7
	return s.StartTicks+1 >= want && s.StartTicks <= want+1
}

// Cmdline returns the arguments in procRoot/PID/cmdline, at most maxBytes
// of them (callers pass 64 KiB), if PID is still the process that started
// at startBootNs (the exec record's start_boottime). truncated reports that
// a bound cut the read: more bytes than maxBytes, or a read over its time
// bound; the last argument is then kept as far as it was read. A process
// rewrites its own argument area at will (setproctitle), so this is what
// the process shows now, not what the exec passed.
func Cmdline(procRoot string, pid uint32, startBootNs uint64, maxBytes int) (args []string, truncated bool, err error) {
	return cmdline(procRoot, pid, startBootNs, maxBytes, nil)
}

// Environ is Cmdline for the process's environment (NAME=VALUE strings):
// what the process shows now, which it may have rewritten.
func Environ(procRoot string, pid uint32, startBootNs uint64, maxBytes int) (vars []string, truncated bool, err error) {
	return readList(procRoot, pid, startBootNs, maxBytes, "environ", nil)
}

// cmdline is Cmdline with a hook run between the read and the second start
// check, for tests.
func cmdline(procRoot string, pid uint32, startBootNs uint64, maxBytes int, between func()) ([]string, bool, error) {
	return readList(procRoot, pid, startBootNs, maxBytes, "cmdline", between)
}

// readList reads a NUL-separated list of /proc/PID (cmdline, environ).
func readList(procRoot string, pid uint32, startBootNs uint64, maxBytes int, name string, between func()) ([]string, bool, error) {
	if maxBytes <= 0 {
		return nil, false, fmt.Errorf("%s bound maxBytes is %d, want more than 0", name, maxBytes)
	}
	// The directory descriptor holds the process itself, not its number:
	// once that process is gone, nothing under it opens, even when a new
	// process has its pid. The start time is checked on both sides of the
	// read as well, so a descriptor opened after the pid was reused never
	// counts as the exec's process.
	dir, err := unix.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, fmt.Errorf("%s of pid %d: %w", name, pid, err)
	}
	defer unix.Close(dir)
	if err := sameStartAt(dir, pid, startBootNs); err != nil {
		return nil, false, err
	}
	f, err := openAt(dir, name)
	if err != nil {
		return nil, false, fmt.Errorf("%s of pid %d: %w", name, pid, err)
	}
	defer f.Close()
	b, cut, err := readBounded(f, maxBytes)
	if err != nil {
		return nil, false, fmt.Errorf("%s of pid %d: %w", name, pid, err)
	}
	if between != nil {
		between()
	}
	if err := sameStartAt(dir, pid, startBootNs); err != nil {
		return nil, false, err
	}
	return splitArgs(b), cut, nil
}

func sameStartAt(dir int, pid uint32, startBootNs uint64) error {
	f, err := openAt(dir, "stat")
	if err != nil {
		return fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	defer f.Close()
	st, err := readStat(f, pid)
	if err != nil {
		return err
	}
	if !st.SameStart(startBootNs) {
		return fmt.Errorf("pid %d started at tick %d, the exec's process at %d ns: the pid was reused", pid, st.StartTicks, startBootNs)
	}
	return nil
}

func openAt(dir int, name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// readBounded reads f within max bytes and readTime; cut reports a bound
// ended it.
func readBounded(f *os.File, max int) (b []byte, cut bool, err error) {
	_, complete, err := safeopen.ReadBounded(f, int64(max), time.Now().Add(readTime), func(c []byte) { b = append(b, c...) })
	return b, !complete, err
}

// splitArgs splits the NUL-separated arguments; the NUL after the last one
// is not an empty argument.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\x00")
	return strings.Split(s, "\x00")
}

// Creds are a process's ids from /proc/PID/status and its cgroup v2 path
// from /proc/PID/cgroup.
type Creds struct {
	UID, EUID, GID, EGID uint32
	VPID                 uint32 // its pid in its own pid namespace (the last of NSpid), 0 when not shown
	Cgroup               string // "" when the process is in no cgroup v2 hierarchy the read could see
}

// statusMax bounds /proc/PID/status (a few KiB) and /proc/PID/cgroup.
const statusMax = 16 << 10

// Status reads the credentials of PID and its cgroup, if PID is still the
// process that started at startBootNs, checked on both sides of the reads.
// The owner of /proc/PID is no credential: a process that drops its
// dumpable flag shows root as that owner.
func Status(procRoot string, pid uint32, startBootNs uint64) (Creds, error) {
	dir, err := unix.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Creds{}, fmt.Errorf("status of pid %d: %w", pid, err)
	}
	defer unix.Close(dir)
	if err := sameStartAt(dir, pid, startBootNs); err != nil {
		return Creds{}, err
	}
	read := func(name string) ([]byte, error) {
		f, err := openAt(dir, name)
		if err != nil {
			return nil, fmt.Errorf("%s of pid %d: %w", name, pid, err)
		}
		defer f.Close()
		b, cut, err := readBounded(f, statusMax)
		if err == nil && cut {
			err = fmt.Errorf("%s of pid %d is over %d bytes or took over %s", name, pid, statusMax, readTime)
		}
		return b, err
	}
	status, err := read("status")
	if err != nil {
		return Creds{}, err
	}
	var c Creds
	uids, gids := idsOf(status, "Uid:"), idsOf(status, "Gid:")
	if len(uids) < 2 || len(gids) < 2 {
		return Creds{}, fmt.Errorf("status of pid %d has no Uid or Gid line", pid)
	}
	c.UID, c.EUID, c.GID, c.EGID = uids[0], uids[1], gids[0], gids[1]
	if ns := idsOf(status, "NSpid:"); len(ns) > 0 {
		c.VPID = ns[len(ns)-1]
	}
	if cg, err := read("cgroup"); err == nil {
		for _, line := range strings.Split(string(cg), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				c.Cgroup = p
			}
		}
	}
	if err := sameStartAt(dir, pid, startBootNs); err != nil {
		return Creds{}, err
	}
	return c, nil
}

// idsOf parses the numbers of a status line ("Uid:\t1000\t1000\t1000\t1000").
func idsOf(status []byte, key string) []uint32 {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range strings.Fields(rest) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil
			}
			out = append(out, uint32(n))
		}
		return out
	}
	return nil
}
