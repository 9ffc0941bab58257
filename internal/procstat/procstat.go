// Package procstat reads /proc/PID/stat: the parent pid and the start time,
// which tells a process from a later one that reuses its pid.
package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what the receiver needs of /proc/PID/stat.
type Stat struct {
	PPID       uint32
	StartTicks uint64 // field 22: clock ticks since boot (USER_HZ is 100 on every Linux ABI)
}

// Read parses procRoot/PID/stat.
func Read(procRoot string, pid uint32) (Stat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		return Stat{}, err
	}
	// comm may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	ppid, err1 := strconv.ParseUint(f[1], 10, 32)
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return Stat{}, fmt.Errorf("stat of pid %d is malformed", pid)
	}
	return Stat{PPID: uint32(ppid), StartTicks: start}, nil
}

// SameStart compares the start time with the kernel's start_boottime in
// nanoseconds, allowing one tick of rounding.
func (s Stat) SameStart(startBootNs uint64) bool {
	want := startBootNs / 1e7
	return s.StartTicks+1 >= want && s.StartTicks <= want+1
}
