package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/mitmexec/mitmexec/internal/procstat"
)

// killer sends SIGKILL from user space, for what the kernel could not
// decide alone. It never kills pid 1, the collector, or the collector's
// ancestors, and it checks the start time so that a reused pid is spared.
type killer struct {
	procRoot string
	guard    map[uint32]bool
}

func newKiller(procRoot string) *killer {
	k := &killer{procRoot: procRoot, guard: map[uint32]bool{1: true}}
	for pid := uint32(os.Getpid()); pid > 1 && !k.guard[pid]; {
		k.guard[pid] = true
		st, err := procstat.Read(procRoot, pid)
		if err != nil {
			break
		}
		pid = st.PPID
	}
	return k
}

// protected lists the pids the kernel must not kill either.
func (k *killer) protected() []uint32 {
	out := make([]uint32, 0, len(k.guard))
	for pid := range k.guard {
		out = append(out, pid)
	}
	return out
}

var errProtected = errors.New("process is protected: pid 1, the collector or one of its ancestors")

func (k *killer) kill(pid uint32, startBootNs uint64) error {
	if k.guard[pid] {
		return errProtected
	}
	st, err := procstat.Read(k.procRoot, pid)
	if err != nil {
		return fmt.Errorf("process %d already exited: %w", pid, err)
	}
	if startBootNs != 0 && !st.SameStart(startBootNs) {
		return fmt.Errorf("pid %d now belongs to another process", pid)
	}
	return syscall.Kill(int(pid), syscall.SIGKILL)
}
