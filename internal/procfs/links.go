// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Readlink reads the link name (exe, cwd, root, fd/N) of the held process.
// These are magic links: the kernel prints the path of what the process
// holds, from the reader's root, with " (deleted)" after a file that was
// unlinked.
func (p *Proc) Readlink(name string) (string, error) {
	return readlink(p.fd, name, fmt.Sprintf("%s of pid %d", name, p.pid), LinkMax)
}

// Readlink is Proc.Readlink of whichever process holds pid now.
func Readlink(procRoot string, pid uint32, name string) (string, error) {
	return readlink(unix.AT_FDCWD, filepath.Join(pidDir(procRoot, pid), name), fmt.Sprintf("%s of pid %d", name, pid), LinkMax)
}

// readlink reads a link's target of at most max bytes: one byte more in
// the buffer tells a target of exactly max bytes from a longer one, which
// readlink(2) would cut silently.
func readlink(dirFd int, name, what string, max int) (string, error) {
	buf := make([]byte, max+1)
	for {
		n, err := unix.Readlinkat(dirFd, name, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if n > max {
			return "", fmt.Errorf("%s is over %d bytes: %w", what, max, ErrBound)
		}
		return string(buf[:n]), nil
	}
}

// StatLink stats what the link name (exe, fd/N) of the held process leads
// to: the file the process holds, deleted or a memfd included. A stat of a
// file on FUSE asks its server: the caller refuses those first
// (safeopen.RefuseUntrusted).
func (p *Proc) StatLink(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(p.fd, name, &st, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return unix.Stat_t{}, fmt.Errorf("%s of pid %d: %w", name, p.pid, err)
		}
		return st, nil
	}
}

// Namespace is the inode number of the held process's namespace of a kind
// ("mnt", "pid", "net"): the number that names the namespace, the same
// for every process in it.
func (p *Proc) Namespace(kind string) (uint32, error) {
	link, err := p.Readlink(filepath.Join("ns", kind))
	if err != nil {
		return 0, err
	}
	return ParseNamespaceLink(kind, link)
}

// Namespace is Proc.Namespace of whichever process holds pid now.
func Namespace(procRoot string, pid uint32, kind string) (uint32, error) {
	link, err := Readlink(procRoot, pid, filepath.Join("ns", kind))
	if err != nil {
		return 0, err
	}
	return ParseNamespaceLink(kind, link)
}

// ParseNamespaceLink parses a namespace link's target, "mnt:[4026531841]".
func ParseNamespaceLink(kind, link string) (uint32, error) {
	inner, ok := strings.CutPrefix(link, kind+":[")
	if ok {
		inner, ok = strings.CutSuffix(inner, "]")
	}
	if !ok {
		return 0, fmt.Errorf("namespace link %q, want %s:[INODE]", link, kind)
	}
	n, err := strconv.ParseUint(inner, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("namespace link %q: %w", link, err)
	}
	return uint32(n), nil
}

// OpenNamespace opens the namespace of a kind of thread tid of pid (tid 0:
// of the process), for setns(2): threads may sit in namespaces of their
// own (unshare(2) is per thread). The caller closes the descriptor.
func OpenNamespace(procRoot string, pid, tid uint32, kind string) (int, error) {
	p := filepath.Join(pidDir(procRoot, pid), "ns", kind)
	if tid != 0 {
		p = filepath.Join(pidDir(procRoot, pid), "task", strconv.FormatUint(uint64(tid), 10), "ns", kind)
	}
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("%s namespace of pid %d thread %d: %w", kind, pid, tid, err)
		}
		return fd, nil
	}
}
