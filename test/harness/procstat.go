// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"time"

	"github.com/mitmexec/mitmexec/internal/procfs"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture the project builds for.
const clockTick = 10 * time.Millisecond

// ProcStatCPU is the user+system time of every thread the process pid ever
// had (utime+stime in /proc/PID/stat), in steps of a clock tick (10 ms):
// coarse for a window of a few seconds, right for tens of seconds.
func ProcStatCPU(pid int) (time.Duration, error) {
	st, err := procfs.ReadStat(procfs.Root, uint32(pid))
	if err != nil {
		return 0, err
	}
	return time.Duration(st.UserTicks+st.SystemTicks) * clockTick, nil
}
