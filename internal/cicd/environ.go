// SPDX-License-Identifier: Apache-2.0

package cicd

import (
	"bytes"
	"fmt"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
)

// MaxEnviron bounds one read of /proc/PID/environ. Linux lets an exec
// pass up to a quarter of the stack limit of strings; CI jobs export a
// few hundred variables, well under this. Variables past the bound are
// not read: a process that pads its environment loses its CI context,
// it cannot make the collector read more.
const MaxEnviron = 256 << 10

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
	b, cut, err := procfs.ReadStarted(procRoot, pid, startBootNs, "environ", maxBytes, between)
	if err != nil {
		return nil, err
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
	return parse(b, allowed), nil
}
