// SPDX-License-Identifier: Apache-2.0

//go:build linux

package harness

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The process's own CPU time in /proc agrees with getrusage's to a few
// clock ticks, however busy the machine is.
func TestProcStatCPU(t *testing.T) {
	before, err := ProcStatCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r0 := rusageCPU(t)
	for rusageCPU(t)-r0 < 200*time.Millisecond {
	}
	after, err := ProcStatCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r := rusageCPU(t) - r0
	if d := after - before; d < r-3*clockTick || d > r+3*clockTick {
		t.Fatalf("/proc/PID/stat counted %v where getrusage counted %v", d, r)
	}
	if _, err := ProcStatCPU(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
