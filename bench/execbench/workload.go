// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The measured workload: a fork+exec loop with a small, constant Go side.

import (
	"fmt"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// workload fork+execs bin n times, one after the other, and returns the
// elapsed time. syscall.ForkExec (vfork-style clone) and Wait4 keep the Go
// side small and constant.
func (b *bench) workload(bin string, n int) (time.Duration, error) {
	argv := []string{bin}
	attr := b.procAttr()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.o.cpu >= 0 {
		// Only this locked thread is pinned; the forked children inherit it.
		var set, old unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return 0, err
		}
		set.Set(b.o.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return 0, fmt.Errorf("pin to CPU %d: %w", b.o.cpu, err)
		}
		defer unix.SchedSetaffinity(0, &old)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		pid, err := syscall.ForkExec(bin, argv, attr)
		if err != nil {
			return 0, fmt.Errorf("fork+exec %s: %w", bin, err)
		}
		if err := wait(pid); err != nil {
			return 0, fmt.Errorf("wait %s: %w", bin, err)
		}
	}
	return time.Since(start), nil
}

// procAttr runs a child with an empty environment and /dev/null for its
// standard descriptors: its output costs nothing and shows nowhere.
func (b *bench) procAttr() *syscall.ProcAttr {
	return &syscall.ProcAttr{Env: []string{}, Files: []uintptr{b.devnull, b.devnull, b.devnull}}
}

// wait reaps the child pid, retrying when a signal interrupts the wait.
func wait(pid int) error {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return err
		}
	}
}
