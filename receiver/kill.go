package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
		ppid, err := parentOf(procRoot, pid)
		if err != nil {
			break
		}
		pid = ppid
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
	st, err := readStat(k.procRoot, pid)
	if err != nil {
		return fmt.Errorf("process %d already exited: %w", pid, err)
	}
	// /proc/PID/stat field 22 is the start time in clock ticks (USER_HZ=100).
	if want := startBootNs / 1e7; startBootNs != 0 && (st.startTicks+1 < want || st.startTicks > want+1) {
		return fmt.Errorf("pid %d now belongs to another process", pid)
	}
	return syscall.Kill(int(pid), syscall.SIGKILL)
}

type procStat struct {
	ppid       uint32
	startTicks uint64
}

func readStat(procRoot string, pid uint32) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	ppid, err1 := strconv.ParseUint(f[1], 10, 32)
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	return procStat{ppid: uint32(ppid), startTicks: start}, nil
}

func parentOf(procRoot string, pid uint32) (uint32, error) {
	st, err := readStat(procRoot, pid)
	return st.ppid, err
}
