// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Pids lists the processes under procRoot (thread group leaders: the
// kernel lists other threads only under their leader's task/).
func Pids(procRoot string) ([]uint32, error) {
	return listNumbers(procRoot, "processes")
}

// Tasks lists the threads of pid.
func Tasks(procRoot string, pid uint32) ([]uint32, error) {
	return listNumbers(filepath.Join(pidDir(procRoot, pid), "task"), fmt.Sprintf("threads of pid %d", pid))
}

// listNumbers lists the numeric names in dir, at most MaxListed names.
func listNumbers(dir, what string) ([]uint32, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	var out []uint32
	for seen := 0; ; {
		names, err := f.Readdirnames(1024)
		seen += len(names)
		if seen > MaxListed {
			return out, fmt.Errorf("%s: over %d entries: %w", what, MaxListed, ErrBound)
		}
		for _, n := range names {
			if v, perr := strconv.ParseUint(n, 10, 32); perr == nil {
				out = append(out, uint32(v))
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", what, err)
		}
	}
}

// Children lists the children of every thread of pid: a child belongs to
// the thread that forked it, and the kernel lists it in that thread's
// task/TID/children (CONFIG_PROC_CHILDREN). A thread that exited meanwhile
// lists nothing. A list over ChildrenMax is returned as far as it was read,
// with an error wrapping ErrBound.
func Children(procRoot string, pid uint32) ([]uint32, error) {
	tids, err := Tasks(procRoot, pid)
	if err != nil && !errors.Is(err, ErrBound) {
		return nil, nil // reaped: no children to list
	}
	var out []uint32
	var cutErr error
	if err != nil {
		cutErr = err
	}
	for _, tid := range tids {
		kids, err := threadChildren(procRoot, pid, tid)
		out = append(out, kids...)
		if errors.Is(err, ErrBound) {
			cutErr = err
		}
	}
	return out, cutErr
}

func threadChildren(procRoot string, pid, tid uint32) ([]uint32, error) {
	what := fmt.Sprintf("children of thread %d of pid %d", tid, pid)
	f, err := openFile(unix.AT_FDCWD, filepath.Join(pidDir(procRoot, pid), "task", strconv.FormatUint(uint64(tid), 10), "children"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readWhole(f, ChildrenMax, ReadTime, what)
	if errors.Is(err, ErrBound) {
		b = b[:max(strings.LastIndexByte(string(b), ' '), 0)] // the last pid may be cut
	} else if err != nil {
		return nil, err
	}
	var out []uint32
	for _, s := range strings.Fields(string(b)) {
		if c, perr := strconv.ParseUint(s, 10, 32); perr == nil {
			out = append(out, uint32(c))
		}
	}
	return out, err
}

// HasChildrenFiles reports whether the kernel lists each thread's children
// (CONFIG_PROC_CHILDREN): without it a walk of a process tree must read
// every process's stat to learn its parent.
func HasChildrenFiles(procRoot string) bool {
	found, _ := filepath.Glob(filepath.Join(procRoot, "self", "task", "*", "children"))
	return len(found) > 0
}

// ReadSelf reads procRoot/self/name to its end, an error past maxBytes or
// maxTime. The kernel builds some of these files whole at the open
// (mountinfo: a line per mount, MiBs on a node full of containers), so
// their bound in time is the caller's.
func ReadSelf(procRoot, name string, maxBytes int, maxTime time.Duration) ([]byte, error) {
	what := name + " of the collector"
	f, err := openFile(unix.AT_FDCWD, filepath.Join(procRoot, "self", name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	return readWhole(f, maxBytes, maxTime, what)
}
