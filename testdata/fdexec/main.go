// SPDX-License-Identifier: Apache-2.0

// fdexec runs a program without naming its path to execve, the way fileless
// malware does. The privileged tests build it.
//
//	fdexec fd    PATH [ARGS...]  open PATH and execveat(fd, "", AT_EMPTY_PATH)
//	fdexec memfd PATH [ARGS...]  copy PATH into a memfd and execute that
package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: fdexec fd|memfd PATH [ARGS...]")
		os.Exit(2)
	}
	src, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fd := int(src.Fd())
	if os.Args[1] == "memfd" {
		mfd, err := unix.MemfdCreate("payload", unix.MFD_CLOEXEC)
		if err != nil {
			fmt.Fprintln(os.Stderr, "memfd_create:", err)
			os.Exit(1)
		}
		dst := os.NewFile(uintptr(mfd), "memfd")
		if _, err := io.Copy(dst, src); err != nil {
			fmt.Fprintln(os.Stderr, "copy:", err)
			os.Exit(1)
		}
		fd = mfd
	}
	argv, err := syscall.SlicePtrFromStrings(os.Args[2:])
	if err != nil {
		os.Exit(1)
	}
	envv, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		os.Exit(1)
	}
	empty := []byte{0}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	fmt.Fprintln(os.Stderr, "execveat:", errno)
	os.Exit(1)
}
