// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Stat is what the project needs of /proc/PID/stat (or
// /proc/PID/task/TID/stat): who the process is, its state, its parent,
// group and session, and its start.
type Stat struct {
	PID     uint32
	Comm    string // as the kernel shows it: at most 15 bytes, any of them but NUL
	State   byte   // R, S, D, T (stopped), t (traced), Z (zombie), X or x (dead)...
	PPID    uint32
	Pgrp    uint32 // process group: a job's processes keep it when their parent exits
	Session uint32
	// UserTicks and SystemTicks are the CPU time spent so far (fields 14
	// and 15, clock ticks): samples taken at each tick, so coarse.
	UserTicks, SystemTicks uint64
	// StartTicks is field 22, the start in clock ticks since boot
	// (USER_HZ, 100 on every Linux ABI). A pid names a process only while
	// it lives: the kernel hands the number to the next fork once the
	// process is reaped, so the pair (pid, start) is what names one
	// process, and a start that differs proves the pid was reused.
	StartTicks uint64
}

// ErrMalformed means a stat line is not the kernel's format.
var ErrMalformed = errors.New("malformed")

// ParseStat parses a stat line: "PID (COMM) STATE PPID PGRP SESSION ...".
// comm is whatever the process named itself (prctl PR_SET_NAME, or the
// exec'd file's name): spaces, parentheses and newlines included, so the
// fields are counted after the last ')' of the line, which no comm can
// follow, and comm is what lies between the first '(' and that one.
func ParseStat(b []byte) (Stat, error) {
	lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if lp < 1 || rp < lp {
		return Stat{}, fmt.Errorf("%w: no comm in parentheses", ErrMalformed)
	}
	f := strings.Fields(string(b[rp+1:]))
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("%w: %d fields after comm, want at least 20", ErrMalformed, len(f))
	}
	if len(f[0]) != 1 || !isLetter(f[0][0]) {
		return Stat{}, fmt.Errorf("%w: state %q, want one letter", ErrMalformed, f[0])
	}
	var n [4]uint32
	for i, s := range []string{strings.TrimSpace(string(b[:lp])), f[1], f[2], f[3]} {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return Stat{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		n[i] = uint32(v)
	}
	// fields 14, 15 and 22 of the line, f[11], f[12] and f[19] here
	var ticks [3]uint64
	for i, k := range []int{11, 12, 19} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("%w: field %d: %w", ErrMalformed, k+3, err)
		}
		ticks[i] = v
	}
	return Stat{PID: n[0], Comm: string(b[lp+1 : rp]), State: f[0][0], PPID: n[1], Pgrp: n[2], Session: n[3],
		UserTicks: ticks[0], SystemTicks: ticks[1], StartTicks: ticks[2]}, nil
}

// SameStart compares the start time with the kernel's start_boottime in
// nanoseconds (what the exec record carries), allowing one tick of
// rounding: /proc divides the same clock, and the two may fall either side
// of a tick.
func (s Stat) SameStart(startBootNs uint64) bool {
	want := startBootNs / 1e7
	return s.StartTicks+1 >= want && s.StartTicks <= want+1
}

// Stopped reports whether the state is stopped, traced or dead: a thread
// in it forks no more.
func (s Stat) Stopped() bool {
	return strings.IndexByte("TtZXx", s.State) >= 0
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
