// SPDX-License-Identifier: Apache-2.0

package inventory

import (
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
)

// identity is the key the exec hook reads from the inode: the kernel's dev_t,
// the inode number and the change time in nanoseconds. (Off Linux it only
// serves the build: no kernel reads these keys.)
func identity(st *unix.Stat_t) event.FileID {
	return event.FileID{
		Dev:     event.KernelDev(uint64(st.Dev)),
		Ino:     uint64(st.Ino),
		CtimeNs: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
	}
}
