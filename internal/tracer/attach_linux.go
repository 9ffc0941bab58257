// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"errors"

	"github.com/cilium/ebpf"
)

// Detach takes the exec and fork hooks off their tracepoints; the programs,
// the maps (verdicts cached so far) and the reader stay. Attach puts them
// back. A benchmark alternates the two to compare execs with and without
// the tracer under the same machine noise. Neither is safe concurrently
// with Close or with each other.
func (t *Tracer) Detach() error {
	var err error
	for _, l := range t.links {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	t.links = nil
	return err
}

// Attach attaches the exec and fork hooks again after Detach, on the
// attach point they were loaded for; attached already, it does nothing.
func (t *Tracer) Attach() error {
	if t.links != nil {
		return nil
	}
	if len(t.progs) != 2 {
		return errors.New("tracer has no exec and fork programs to attach")
	}
	flavor := "raw"
	if t.progs[0].Type() == ebpf.Tracing {
		flavor = "btf"
	}
	links, err := attach(flavor, t.progs[0], t.progs[1])
	if err != nil {
		return err
	}
	t.links = links
	return nil
}

// HookPrograms are the exec hook's and the fork hook's programs, for
// their run-time statistics; they stay the tracer's (do not close them).
func (t *Tracer) HookPrograms() (exec, fork *ebpf.Program) {
	return t.progs[0], t.progs[1]
}
