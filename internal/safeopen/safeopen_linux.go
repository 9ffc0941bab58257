// SPDX-License-Identifier: Apache-2.0

//go:build linux

package safeopen

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenRegular opens path for reading if, and only if, it names a regular
// file on a file system that stores bytes. Symlinks are followed, magic
// links too (/proc/PID/exe, /proc/PID/fd/N give the file they point at).
// The returned Stat_t is the reading descriptor's. On error nothing was
// opened for reading and the Stat_t is zero.
func OpenRegular(path string) (*os.File, unix.Stat_t, error) {
	return openRegular(path, 0)
}

// OpenRegularNoFollow is OpenRegular for a name whose last component must
// not be a symlink: one is refused as not a regular file.
func OpenRegularNoFollow(path string) (*os.File, unix.Stat_t, error) {
	return openRegular(path, unix.O_NOFOLLOW)
}

func openRegular(name string, extra int) (*os.File, unix.Stat_t, error) {
	fd, err := openPath(name, extra)
	if err != nil {
		return nil, unix.Stat_t{}, err
	}
	defer unix.Close(fd)
	return reopen(fd, name)
}

// openPath opens name with O_PATH: the inode is reached without its
// file system's or driver's open being called, so a device, a FIFO or a
// terminal is untouched by it.
func openPath(name string, extra int) (int, error) {
	for {
		fd, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC|extra, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

// reopen type-checks the O_PATH descriptor pathFd and opens the same inode
// for reading through /proc/self/fd: the magic link hands over the
// descriptor's own path, so no name is looked up again. O_NONBLOCK and
// O_NOCTTY are belt and braces: the type check has already refused what
// they guard against.
func reopen(pathFd int, name string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(pathFd, &st); err != nil {
		return nil, unix.Stat_t{}, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, unix.Stat_t{}, fmt.Errorf("%q is a %s: %w", name, typeName(st.Mode), ErrNotRegular)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(pathFd, &sfs); err != nil {
		return nil, unix.Stat_t{}, &os.PathError{Op: "statfs", Path: name, Err: err}
	}
	if fs := kernelFS(int64(sfs.Type)); fs != "" {
		return nil, unix.Stat_t{}, fmt.Errorf("%q is a file of %s: %w", name, fs, ErrKernelFile)
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pathFd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, unix.Stat_t{}, &os.PathError{Op: "reopen", Path: name, Err: err}
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return nil, unix.Stat_t{}, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if got.Dev != st.Dev || got.Ino != st.Ino || got.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, unix.Stat_t{}, fmt.Errorf("%q was inode %d on device %d, the reopened descriptor is inode %d on device %d: %w",
			name, st.Ino, st.Dev, got.Ino, got.Dev, ErrReplaced)
	}
	return os.NewFile(uintptr(fd), name), got, nil
}

// kernelFS names the file systems whose regular files are kernel
// interfaces rather than stored bytes.
func kernelFS(magic int64) string {
	switch magic {
	case unix.PROC_SUPER_MAGIC:
		return "procfs"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	case unix.DEBUGFS_MAGIC:
		return "debugfs"
	case unix.TRACEFS_MAGIC:
		return "tracefs"
	case unix.SECURITYFS_MAGIC:
		return "securityfs"
	case 0x62656570: // configfs, not in x/sys/unix
		return "configfs"
	case unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC:
		return "cgroupfs"
	case unix.BPF_FS_MAGIC:
		return "bpffs"
	case unix.PSTOREFS_MAGIC:
		return "pstore"
	case unix.EFIVARFS_MAGIC:
		return "efivarfs"
	case unix.SELINUX_MAGIC:
		return "selinuxfs"
	case unix.SMACK_MAGIC:
		return "smackfs"
	case unix.BINFMTFS_MAGIC:
		return "binfmt_misc"
	}
	return ""
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFREG:
		return "regular file"
	}
	return fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
}

// These keep a lookup inside the directory it starts from and off /proc
// magic links: a symlink a user planted may point at /proc/1/root/... or at
// the collector's own /proc/self, either of which leaves the process's
// view. IN_ROOT and BENEATH refuse magic links today too; openat2(2) says
// that may change, NO_MAGICLINKS keeps it so.
const (
	inRoot  = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
)

// openat2Retries bounds the retries of EAGAIN, which openat2 returns when a
// rename or a mount raced a scoped lookup with "..": a user renaming in a
// loop must not keep the caller here.
const openat2Retries = 8

func openat2(dirfd int, name string, resolve uint64, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | flags, Resolve: resolve}
	var err error
	for try := 0; try < openat2Retries; try++ {
		var fd int
		fd, err = unix.Openat2(dirfd, name, &how)
		if err == nil {
			return fd, nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
	}
	return -1, &os.PathError{Op: "openat2", Path: name, Err: err}
}

// OpenInProcess opens for reading the regular file p names as process pid
// sees it: an absolute p from the process's root (/proc/PID/root), a
// relative one from its working directory (/proc/PID/cwd), and no symlink
// in either may lead out of the process's root or through a /proc magic
// link. The process's own descriptors, named /dev/fd/N, /dev/stdin,
// /proc/self/fd/N or /proc/thread-self/fd/N (a script run from an fd or a
// memfd), are its, not the collector's, provided the process's /dev and
// /proc are the usual ones (a user who mounts something else there gets
// the file the name leads to). The type check and the reopen are
// OpenRegular's.
func OpenInProcess(procRoot string, pid uint32, p string) (*os.File, unix.Stat_t, error) {
	if p == "" {
		return nil, unix.Stat_t{}, errors.New("path is empty")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return nil, unix.Stat_t{}, fmt.Errorf("path %q holds a NUL byte", p)
	}
	pidDir := filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10))
	resolve := uint64(inRoot)
	if lexEntry, lexOwn, err := ownEntry(p); err == nil {
		fuse, err := fuseMounted(pidDir, p, lexOwn, lexEntry)
		if err != nil {
			return nil, unix.Stat_t{}, err
		}
		if fuse {
			// the path was checked as written: a symbolic link on it
			// could still lead onto FUSE
			resolve |= unix.RESOLVE_NO_SYMLINKS
		}
	}
	rootFd, err := openPath(filepath.Join(pidDir, "root"), unix.O_DIRECTORY)
	if err != nil {
		return nil, unix.Stat_t{}, fmt.Errorf("root of pid %d: %w", pid, err)
	}
	defer unix.Close(rootFd)

	fd := -1
	entry, own, err := ownEntry(p)
	if err != nil {
		return nil, unix.Stat_t{}, err
	}
	if own && !usualProcView(rootFd, p) {
		own = false
	}
	switch {
	case own:
		fd, err = openOwn(pidDir, rootFd, p, entry)
	case filepath.IsAbs(p):
		fd, err = openat2(rootFd, p, resolve, 0)
	default:
		fd, err = openRelative(pidDir, rootFd, p)
	}
	if err != nil {
		return nil, unix.Stat_t{}, fmt.Errorf("resolve %q in pid %d: %w", p, pid, err)
	}
	defer unix.Close(fd)
	return reopen(fd, p)
}

// ownEntry tells whether p names the process's own /proc entry and returns
// it relative to /proc/PID ("fd/3", "fd/3/x.py", "exe", "cwd/x", "root/x").
// Empty and "." components are dropped (the kernel ignores them too, so
// /proc//self/fd/3 is the same name); ".." is refused, since the physical
// parent of a magic link's target is not the lexical one.
func ownEntry(p string) (string, bool, error) {
	if !strings.HasPrefix(p, "/") {
		return "", false, nil
	}
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			comps = append(comps, c)
		}
	}
	var entry []string
	switch {
	case len(comps) >= 3 && comps[0] == "dev" && comps[1] == "fd":
		entry = append([]string{"fd"}, comps[2:]...)
	case len(comps) == 2 && comps[0] == "dev" && stdFd(comps[1]) != "":
		entry = []string{"fd", stdFd(comps[1])}
	case len(comps) >= 3 && comps[0] == "proc" && (comps[1] == "self" || comps[1] == "thread-self"):
		entry = comps[2:]
	default:
		return "", false, nil
	}
	for _, c := range entry {
		if c == ".." {
			return "", false, fmt.Errorf("path %q names the process's own descriptors with a \"..\" component", p)
		}
	}
	return strings.Join(entry, "/"), true, nil
}

// usualProcView reports whether, in the process's root, /proc is a procfs
// and /dev/fd or /dev/stdin (when p goes through them) is the usual link
// into /proc/self: only then does p name the process's own descriptors.
func usualProcView(rootFd int, p string) bool {
	procFd, err := openat2(rootFd, "/proc", inRoot, unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	var sfs unix.Statfs_t
	err = unix.Fstatfs(procFd, &sfs)
	unix.Close(procFd)
	if err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	clean := path.Clean(p)
	if !strings.HasPrefix(clean, "/dev/") {
		return true
	}
	devFd, err := openat2(rootFd, "/dev", inRoot, unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	defer unix.Close(devFd)
	name, want := "fd", []string{"/proc/self/fd", "/proc/thread-self/fd"}
	if base := strings.TrimPrefix(clean, "/dev/"); stdFd(base) != "" {
		n := stdFd(base)
		name, want = base, []string{"/proc/self/fd/" + n, "/proc/thread-self/fd/" + n}
	}
	buf := make([]byte, 256)
	n, err := unix.Readlinkat(devFd, name, buf)
	if err != nil || n == len(buf) {
		return false
	}
	target := string(buf[:n])
	if !path.IsAbs(target) {
		target = path.Join("/dev", target)
	}
	target = path.Clean(target)
	for _, w := range want {
		if target == w {
			return true
		}
	}
	return false
}

// openOwn opens entry under the process's /proc directory as the process
// itself would reach it.
func openOwn(pidDir string, rootFd int, p, entry string) (int, error) {
	first, rest, _ := strings.Cut(entry, "/")
	switch first {
	case "fd":
		n, rest, _ := strings.Cut(rest, "/")
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return -1, fmt.Errorf("path %q names descriptor %q, not a number", p, n)
		}
		if rest == "" {
			return openPath(filepath.Join(pidDir, "fd", n), 0)
		}
		// A directory descriptor: what lies below it stays below it.
		dirFd, err := openPath(filepath.Join(pidDir, "fd", n), unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		defer unix.Close(dirFd)
		return openat2(dirFd, rest, beneath, 0)
	case "exe":
		if rest == "" {
			return openPath(filepath.Join(pidDir, "exe"), 0)
		}
	case "root":
		if rest != "" {
			return openat2(rootFd, "/"+rest, inRoot, 0)
		}
	case "cwd":
		if rest != "" {
			return openRelative(pidDir, rootFd, rest)
		}
	}
	return -1, fmt.Errorf("path %q names the process's /proc entry %q, which is not read", p, entry)
}

// openRelative resolves p from the process's working directory. The
// process's own name for that directory, taken from the readlinks of
// /proc/PID/cwd and /proc/PID/root (both printed from the collector's
// root, so the root's prefix is cut off), lets ".." and absolute symlinks
// in p go where the process's lookup goes; the name is trusted only if it
// leads back to the very directory /proc/PID/cwd is. Without it (the
// readlink fails with ENAMETOOLONG beyond a page of path, the directory
// was deleted, or is out of the collector's reach), p is resolved beneath
// the directory itself, which cannot follow ".." or absolute symlinks
// correctly: a p with ".." is then refused, and such a symlink fails.
func openRelative(pidDir string, rootFd int, p string) (int, error) {
	cwdFd, err := openPath(filepath.Join(pidDir, "cwd"), unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	defer unix.Close(cwdFd)
	view, whyNot := cwdInRoot(pidDir, rootFd, cwdFd)
	if whyNot == nil {
		fd, err := openat2(rootFd, view+"/"+p, inRoot, 0)
		if !errors.Is(err, unix.ENAMETOOLONG) {
			return fd, err
		}
		whyNot = err
	}
	if hasDotDot(p) {
		return -1, fmt.Errorf("relative path %q has a \"..\" component and the working directory has no name in the process's root (%v)", p, whyNot)
	}
	return openat2(cwdFd, p, beneath, 0)
}

// cwdInRoot returns the working directory's path as the process sees it,
// verified to be the directory cwdFd holds.
func cwdInRoot(pidDir string, rootFd, cwdFd int) (string, error) {
	cwd, err := os.Readlink(filepath.Join(pidDir, "cwd"))
	if err != nil {
		return "", err
	}
	root, err := os.Readlink(filepath.Join(pidDir, "root"))
	if err != nil {
		return "", err
	}
	var view string
	switch {
	case root == "/":
		view = cwd
	case cwd == root:
		view = "/"
	case strings.HasPrefix(cwd, root+"/"):
		view = cwd[len(root):]
	default:
		return "", fmt.Errorf("cwd %q is not under root %q", cwd, root)
	}
	if !strings.HasPrefix(view, "/") {
		return "", fmt.Errorf("cwd %q is not a path", cwd)
	}
	viewFd, err := openat2(rootFd, view, inRoot, unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	defer unix.Close(viewFd)
	var a, b unix.Stat_t
	if err := unix.Fstat(viewFd, &a); err != nil {
		return "", err
	}
	if err := unix.Fstat(cwdFd, &b); err != nil {
		return "", err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return "", fmt.Errorf("cwd %q leads to inode %d, the working directory is inode %d", view, a.Ino, b.Ino)
	}
	return view, nil
}

// stdFd is the descriptor /dev/stdin, /dev/stdout and /dev/stderr name.
func stdFd(name string) string {
	switch name {
	case "stdin":
		return "0"
	case "stdout":
		return "1"
	case "stderr":
		return "2"
	}
	return ""
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}
