// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package fileid

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
)

// Path returns the stat(2) identity of a path off Linux.
func Path(p string) (event.FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return event.FileID{}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return Of(nil, &st), nil
}

// Of only serves the build off Linux: no kernel reads these keys.
func Of(_ *os.File, st *unix.Stat_t) event.FileID {
	return event.FileID{
		Dev:     event.KernelDev(uint64(st.Dev)),
		Ino:     uint64(st.Ino),
		CtimeNs: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
	}
}
