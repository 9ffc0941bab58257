// SPDX-License-Identifier: Apache-2.0

package origin

import (
	"fmt"
	"time"

	"github.com/mitmexec/mitmexec/internal/cicd"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

const (
	// maxCmdline bounds one command line: the walk needs the first few
	// arguments; a longer one is cut, and the last argument kept is then
	// never taken for a target or a file (see Cmdline).
	maxCmdline = 16 << 10
	// maxFile bounds one metadata file of a Python source tree.
	maxFile  = 64 << 10
	readTime = 100 * time.Millisecond
)

// ProcReader reads processes under procRoot through internal/procfs:
// environ with internal/cicd's allow-list applied, cmdline, cwd and stat,
// pinned to the process by a directory descriptor and start-time-checked.
type ProcReader struct{ ProcRoot string }

func (p ProcReader) Environ(pid uint32, start uint64) (map[string]string, error) {
	return cicd.EnvironAllowed(p.ProcRoot, pid, start, cicd.MaxEnviron, Allowed)
}

func (p ProcReader) Cmdline(pid uint32, start uint64) ([]string, error) {
	args, cut, err := procfs.Cmdline(p.ProcRoot, pid, start, maxCmdline)
	if err != nil {
		return nil, err
	}
	if cut && len(args) > 0 {
		args = args[:len(args)-1] // cut inside: not a true argument
	}
	return args, nil
}

// Cwd is the working directory the process's cwd link shows, if the pid is
// the process that started at start: the link is read under the process's
// pinned /proc directory, which reaches no later process with its pid.
func (p ProcReader) Cwd(pid uint32, start uint64) (string, error) {
	proc, err := procfs.OpenStarted(p.ProcRoot, pid, start)
	if err != nil {
		return "", err
	}
	defer proc.Close()
	return proc.Readlink("cwd")
}

func (p ProcReader) ReadFile(pid uint32, start uint64, name string) ([]byte, error) {
	f, _, err := safeopen.OpenInProcess(p.ProcRoot, pid, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := p.same(pid, start); err != nil {
		return nil, err
	}
	var b []byte
	_, complete, err := safeopen.ReadBounded(f, maxFile, time.Now().Add(readTime), func(c []byte) { b = append(b, c...) })
	if err != nil {
		return nil, err
	}
	if !complete {
		return nil, fmt.Errorf("%s of pid %d is over %d bytes or took over %s", name, pid, maxFile, readTime)
	}
	return b, nil
}

func (p ProcReader) same(pid uint32, start uint64) error {
	st, err := procfs.ReadStat(p.ProcRoot, pid)
	if err != nil {
		return err
	}
	if !st.SameStart(start) {
		return fmt.Errorf("pid %d started at tick %d, not at %d ns: the pid was reused", pid, st.StartTicks, start)
	}
	return nil
}

// Parents follows the parent pids of the process table, at most as far as
// the kernel's chain goes. A parent's start time is the one its stat shows
// now: from then on every read of it is checked against that.
func (p ProcReader) Parents(pid uint32, start uint64) []event.Ancestor {
	if p.same(pid, start) != nil {
		return nil
	}
	var out []event.Ancestor
	for len(out) < event.MaxAncestors {
		st, err := procfs.ReadStat(p.ProcRoot, pid)
		if err != nil || st.PPID <= 1 {
			break
		}
		parent, err := procfs.ReadStat(p.ProcRoot, st.PPID)
		if err != nil {
			break
		}
		out = append(out, event.Ancestor{PID: st.PPID, StartBootTime: parent.StartTicks * 1e7})
		pid = st.PPID
	}
	return out
}
