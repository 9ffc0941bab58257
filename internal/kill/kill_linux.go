// SPDX-License-Identifier: Apache-2.0

//go:build linux

package kill

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// hostPidfds are the kernel's pidfds (Linux 5.3: pidfd_open, 5.1:
// pidfd_send_signal). pidfd_open sets close-on-exec itself.
var hostPidfds = pidfds{
	open: func(pid uint32) (int, error) { return unix.PidfdOpen(int(pid), 0) },
	signal: func(fd int, sig syscall.Signal) error {
		return unix.PidfdSendSignal(fd, sig, nil, 0)
	},
	close: func(fd int) { _ = unix.Close(fd) },
}
