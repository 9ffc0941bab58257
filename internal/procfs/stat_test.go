// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// statLine is a kernel-format stat line with the fields the package reads.
func statLine(pid uint32, comm string, state byte, ppid, pgrp, session uint32, start uint64) string {
	return statLineTimes(Stat{PID: pid, Comm: comm, State: state, PPID: ppid, Pgrp: pgrp, Session: session, StartTicks: start})
}

func statLineTimes(s Stat) string {
	return fmt.Sprintf("%d (%s) %c %d %d %d 34816 -1 4194560 107 0 0 0 %d %d 0 0 20 0 1 0 %d 2416640 256 18446744073709551615\n",
		s.PID, s.Comm, s.State, s.PPID, s.Pgrp, s.Session, s.UserTicks, s.SystemTicks, s.StartTicks)
}

func TestParseStatOddComms(t *testing.T) {
	// GIVEN comm names a process can give itself (prctl PR_SET_NAME takes
	// any 15 bytes but NUL)
	for _, comm := range []string{
		"sh",
		"a b c",
		"(sh)",
		") S 1 1 1",
		"x) R 7 7 7 0",
		"a\nb",
		")\n)",
		"((",
		"",
		"  ",
		"1 (x) S 2",
	} {
		line := statLine(42, comm, 'T', 7, 8, 9, 500)
		// WHEN the line is parsed
		got, err := ParseStat([]byte(line))
		// THEN every field is the kernel's, comm included
		want := Stat{PID: 42, Comm: comm, State: 'T', PPID: 7, Pgrp: 8, Session: 9, StartTicks: 500}
		if err != nil || got != want {
			t.Errorf("comm %q: %+v, %v; want %+v", comm, got, err, want)
		}
	}
}

func TestParseStatRefusesMalformed(t *testing.T) {
	for _, c := range []struct{ line, err string }{
		{"42 (a (weird) ) name) T 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n", ""},
		{"42 (sh) S 7 8 9 0\n", "5 fields after comm, want at least 20"},
		{"42 sh S 7 8 9\n", "no comm in parentheses"},
		{"(sh) S 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n", "no comm in parentheses"},
		{"42 (sh) S 7 x 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n", "malformed"},
		{"42 (sh) SS 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n", "want one letter"},
		{"42 (sh) S 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0 0\n", "field 22"},
		{"x (sh) S 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n", "malformed"},
	} {
		got, err := ParseStat([]byte(c.line))
		switch {
		case c.err == "" && (err != nil || got != Stat{PID: 42, Comm: "a (weird) ) name", State: 'T', PPID: 7, Pgrp: 8, Session: 9, StartTicks: 500}):
			t.Errorf("%q: %+v, %v", c.line, got, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrMalformed)):
			t.Errorf("%q: error %v, want %q", c.line, err, c.err)
		}
	}
}

func TestParseStatCPUTime(t *testing.T) {
	want := Stat{PID: 9, Comm: "x", State: 'R', PPID: 1, Pgrp: 9, Session: 9, UserTicks: 1234, SystemTicks: 56, StartTicks: 7}
	if got, err := ParseStat([]byte(statLineTimes(want))); err != nil || got != want {
		t.Errorf("%+v, %v; want %+v", got, err, want)
	}
}

func TestStatStopped(t *testing.T) {
	for state, want := range map[byte]bool{'R': false, 'S': false, 'D': false, 'T': true, 't': true, 'Z': true, 'X': true, 'x': true} {
		if got := (Stat{State: state}).Stopped(); got != want {
			t.Errorf("state %c: stopped %v, want %v", state, got, want)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(42, "a (b) c", 'S', 1, 1, 1, 500)))
	f.Add([]byte(statLine(1, ")\n)", 'T', 0, 0, 0, 1)))
	f.Add([]byte("42 (sh) S 7\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err != nil {
			return
		}
		// A parsed line names its comm and says it again when rebuilt
		// around it: the fields came from after the last ')'.
		again, err := ParseStat([]byte(statLineTimes(st)))
		if err != nil || again != st {
			t.Fatalf("%q parsed as %+v, rebuilt as %+v (%v)", b, st, again, err)
		}
	})
}
