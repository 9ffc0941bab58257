//go:build linux

package inventory

import (
	"syscall"

	"github.com/mitmexec/mitmexec/internal/event"
)

// identity is the key the exec hook reads from the inode: the kernel's dev_t,
// the inode number and the change time in nanoseconds.
func identity(st *syscall.Stat_t) event.FileID {
	return event.FileID{
		Dev:     event.KernelDev(st.Dev),
		Ino:     st.Ino,
		CtimeNs: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
	}
}
