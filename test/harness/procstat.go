// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture the project builds for.
const clockTick = 10 * time.Millisecond

// ProcStatCPU is the user+system time of every thread the process pid ever
// had (utime+stime in /proc/PID/stat), in steps of a clock tick (10 ms):
// coarse for a window of a few seconds, right for tens of seconds.
func ProcStatCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; the fields after it
	// start with the state (field 3), so utime (14) and stime (15) are the
	// 12th and 13th.
	end := strings.LastIndexByte(string(b), ')')
	if end < 0 || end+2 > len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[end+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 13", pid, len(f))
	}
	u, uerr := strconv.ParseUint(f[11], 10, 64)
	s, serr := strconv.ParseUint(f[12], 10, 64)
	if uerr != nil || serr != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(u+s) * clockTick, nil
}
