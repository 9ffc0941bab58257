// SPDX-License-Identifier: Apache-2.0

// Package safeopen opens, as root, files that hostile users name: a script
// an interpreter was given, the program an exec loaded, a process's stdin.
//
// Opening is the dangerous step, not reading: open(2) on a device runs its
// driver (/dev/ptmx allocates a terminal, a watchdog arms), on a FIFO it
// waits for a writer, on a terminal it may make it the caller's controlling
// tty. So a name is first opened with O_PATH, which reaches the inode
// without calling any driver's open, its type is checked on that descriptor,
// and only a regular file is then reopened for reading, through
// /proc/self/fd, which yields the very inode that was checked (a second
// lookup of the name could find another file). Reads are bounded in bytes
// and in time (ReadBounded) because size and content are the user's too: a
// sparse file can be a petabyte long, and a file can grow while it is read.
package safeopen

import (
	"errors"
	"io"
	"os"
	"time"
)

// ErrNotRegular means the name led to something other than a regular file
// (device, FIFO, socket, directory, symlink when not followed). It was
// never opened for reading.
var ErrNotRegular = errors.New("not a regular file")

// ErrKernelFile means the name led to a regular file of a kernel interface
// file system (procfs, sysfs, debugfs, tracefs...): reading those is not
// reading stored bytes (/proc/kmsg and trace_pipe consume what they return),
// so they are refused like devices.
var ErrKernelFile = errors.New("kernel interface file")

// ErrReplaced means the descriptor opened for reading is not the inode that
// was type-checked.
var ErrReplaced = errors.New("file was replaced while it was opened")

// chunkSize is how much one read(2) asks for: the deadline is looked at
// between reads, so a chunk must take little time even from a slow disk.
const chunkSize = 64 << 10

// ReadBounded reads f from its current offset and hands each chunk read to
// chunk (which must not keep the slice), until end of file, maxBytes or
// the deadline. complete is true only when end of file was reached within
// maxBytes; a cut by either bound returns complete false and a nil error,
// and the caller tells which bound it was from n (n < maxBytes: the
// deadline). The byte bound does not depend on the size stat reported, so a
// file that grows while it is read does not make the work longer. A zero
// deadline means no time bound.
//
// The deadline is checked between reads and, where f supports it (pipes,
// sockets), set with SetReadDeadline so that a read waiting for data is
// cut too. A single read(2) the kernel itself keeps waiting (a FUSE server
// that never answers) is not interrupted: regular files have no deadline in
// the kernel.
func ReadBounded(f *os.File, maxBytes int64, deadline time.Time, chunk func([]byte)) (n int64, complete bool, err error) {
	if !deadline.IsZero() {
		if f.SetReadDeadline(deadline) == nil {
			defer f.SetReadDeadline(time.Time{})
		}
	}
	// A small bound needs no full chunk: /proc's stat and status files are
	// read thousands of times per kill walk.
	size := int64(chunkSize)
	if maxBytes >= 0 && maxBytes < size {
		size = maxBytes + 1
	}
	buf := make([]byte, size)
	for {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return n, false, nil
		}
		want := int64(len(buf))
		// At the byte bound one more byte tells a file of exactly
		// maxBytes (complete) from a longer one; it is not handed on.
		probe := false
		if rest := maxBytes - n; rest <= 0 {
			want, probe = 1, true
		} else if rest < want {
			want = rest
		}
		k, rerr := f.Read(buf[:want])
		if probe && k > 0 {
			return n, false, nil
		}
		if k > 0 {
			if chunk != nil {
				chunk(buf[:k])
			}
			n += int64(k)
		}
		switch {
		case rerr == io.EOF:
			return n, true, nil
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return n, false, nil
		case rerr != nil:
			return n, false, rerr
		}
	}
}
