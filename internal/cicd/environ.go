// SPDX-License-Identifier: Apache-2.0

package cicd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procstat"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

const (
	// MaxEnviron bounds one read of /proc/PID/environ. Linux lets an exec
	// pass up to a quarter of the stack limit of strings; CI jobs export a
	// few hundred variables, well under this. Variables past the bound are
	// not read: a process that pads its environment loses its CI context,
	// it cannot make the collector read more.
	MaxEnviron = 256 << 10
	// readTime bounds one read: the kernel reads environ from the
	// process's memory, which the process can make slow (userfaultfd, FUSE).
	readTime = 100 * time.Millisecond
	statMax  = 4 << 10
)

// Source is which process's environment served.
type Source string

const (
	SourceProcess  Source = "process"  // the detected process itself
	SourceAncestor Source = "ancestor" // the nearest living ancestor (the step's shell)
	SourceNone     Source = "none"     // no living process of the chain names a CI job
)

// Result is what Lookup found.
type Result struct {
	Context Context
	Source  Source
	// Depth is the ancestor's index in the exec record (0: the parent)
	// when Source is SourceAncestor.
	Depth int
}

// Lookup reads the CI context of the process that started at
// startBootNs with pid, or, when that process is gone (a short-lived tool,
// or one the receiver killed) or names no CI job (started with a cleared
// environment), of the nearest ancestor still alive that names one. Every
// process of a CI step inherits the job's variables from the step's shell,
// which lives for the whole step, and the processes above a step (the
// runner) name no job, so the first job found up the chain is the tool's.
// Each read checks the start time on both sides, so a pid reused by
// another process (another job's) never lends its environment. An
// ancestor that had exited before the exec (Exited) is skipped: its pid
// names nothing any more.
func Lookup(procRoot string, pid uint32, startBootNs uint64, ancestors []event.Ancestor) Result {
	if env, err := Environ(procRoot, pid, startBootNs, MaxEnviron); err == nil {
		if c := FromEnv(env); !c.Empty() {
			return Result{Context: c, Source: SourceProcess}
		}
	}
	for i, a := range ancestors {
		if a.Exited || a.PID <= 1 {
			continue // pid 1 is init or a container's entrypoint: not a step
		}
		if env, err := Environ(procRoot, a.PID, a.StartBootTime, MaxEnviron); err == nil {
			if c := FromEnv(env); !c.Empty() {
				return Result{Context: c, Source: SourceAncestor, Depth: i}
			}
		}
	}
	return Result{Source: SourceNone}
}

// Environ returns the allow-listed variables of procRoot/PID/environ, at
// most maxBytes of it, if PID is still the process that started at
// startBootNs. A process can rewrite its environment area, so this is what
// the process shows, not proof of the job: it is context for a reader,
// never a reason to allow anything.
func Environ(procRoot string, pid uint32, startBootNs uint64, maxBytes int) (map[string]string, error) {
	return environ(procRoot, pid, startBootNs, maxBytes, Allowed, nil)
}

// EnvironAllowed is Environ with another allow-list: the same pinned,
// bounded, start-checked read serves every reader of a process's
// environment (internal/origin's too), each keeping only its own names.
func EnvironAllowed(procRoot string, pid uint32, startBootNs uint64, maxBytes int, allowed func(string) bool) (map[string]string, error) {
	return environ(procRoot, pid, startBootNs, maxBytes, allowed, nil)
}

// environ is Environ with a hook between the read and the second start
// check, for tests.
func environ(procRoot string, pid uint32, startBootNs uint64, maxBytes int, allowed func(string) bool, between func()) (map[string]string, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("environ bound maxBytes is %d, want more than 0", maxBytes)
	}
	// The directory descriptor holds the process, not its number: once
	// that process is reaped nothing under it opens, even if its pid is
	// reused.
	dir, err := unix.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("environ of pid %d: %w", pid, err)
	}
	defer unix.Close(dir)
	if err := sameStart(dir, pid, startBootNs); err != nil {
		return nil, err
	}
	b, cut, err := readAt(dir, "environ", maxBytes)
	if err != nil {
		return nil, fmt.Errorf("environ of pid %d: %w", pid, err)
	}
	if cut {
		// The last variable read may be cut inside its value: a shortened
		// URL or name would be a false fact, so it is dropped.
		b = b[:bytes.LastIndexByte(b, 0)+1]
	}
	if len(b) == 0 {
		// A zombie (exited, not reaped) reads as empty: it is gone.
		return nil, fmt.Errorf("environ of pid %d is empty: the process has exited", pid)
	}
	if between != nil {
		between()
	}
	if err := sameStart(dir, pid, startBootNs); err != nil {
		return nil, err
	}
	return parse(b, allowed), nil
}

func sameStart(dir int, pid uint32, startBootNs uint64) error {
	b, cut, err := readAt(dir, "stat", statMax)
	if err != nil {
		return fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	if cut {
		return fmt.Errorf("stat of pid %d is over %d bytes or took over %s", pid, statMax, readTime)
	}
	ticks, err := startTicks(string(b))
	if err != nil {
		return fmt.Errorf("stat of pid %d: %w", pid, err)
	}
	if !(procstat.Stat{StartTicks: ticks}).SameStart(startBootNs) {
		return fmt.Errorf("pid %d started at tick %d, the exec's process at %d ns: the pid was reused", pid, ticks, startBootNs)
	}
	return nil
}

// startTicks is field 22 of a stat line; comm may hold spaces and
// parentheses, so fields are counted after the last ')'.
func startTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat is malformed: no ')' after comm")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("stat is malformed: %d fields after comm, want at least 20", len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func readAt(dir int, name string, max int) (b []byte, cut bool, err error) {
	var fd int
	for {
		fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, false, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	_, complete, err := safeopen.ReadBounded(f, int64(max), time.Now().Add(readTime), func(c []byte) { b = append(b, c...) })
	return b, !complete, err
}
