// SPDX-License-Identifier: Apache-2.0

package safeopen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxMountinfo bounds the mount table read.
const maxMountinfo = 4 << 20

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	id     int
	point  string
	fstype string
}

// mounts reads the mount table of the process at pidDir, as it sees it.
func mounts(pidDir string) ([]mountEntry, error) {
	f, err := os.Open(filepath.Join(pidDir, "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b []byte
	_, complete, err := ReadBounded(f, maxMountinfo, time.Now().Add(time.Second), func(c []byte) { b = append(b, c...) })
	if err != nil {
		return nil, err
	}
	if !complete {
		return nil, fmt.Errorf("mount table of %s is over %d bytes or took over 1s", pidDir, maxMountinfo)
	}
	var out []mountEntry
	for _, line := range strings.Split(string(b), "\n") {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f1, f2 := strings.Fields(pre), strings.Fields(post)
		if len(f1) < 5 || len(f2) < 1 {
			continue
		}
		id, err := strconv.Atoi(f1[0])
		if err != nil {
			continue
		}
		out = append(out, mountEntry{id: id, point: unescapeMount(f1[4]), fstype: f2[0]})
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf returns the mount that holds the absolute, clean path p: the
// last one mounted on the longest mount point that is a prefix of it.
func mountOf(ms []mountEntry, p string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, m := range ms {
		if m.point == p || m.point == "/" || strings.HasPrefix(p, m.point+"/") {
			if !found || len(m.point) >= len(best.point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

// refuseUntrusted returns ErrUntrustedFS unless p, as the process at pidDir
// names it, cannot lie on FUSE, telling so without a request to any FUSE
// server: from the process's mount table and, for its own descriptors,
// from /proc/PID/fdinfo. Where the table has no FUSE mount nothing is
// refused. A relative path, or one below a descriptor or the working
// directory, is refused while the table has one; a symbolic link in an
// absolute path that leads onto FUSE is not seen.
func refuseUntrusted(pidDir, p string, own bool, entry string) error {
	_, err := fuseMounted(pidDir, p, own, entry)
	return err
}

// fuseMounted is refuseUntrusted that also says whether the process's mount
// table holds a FUSE mount at all: an absolute path it lets through must
// then be resolved without symbolic links, which could lead onto one.
func fuseMounted(pidDir, p string, own bool, entry string) (bool, error) {
	err := refuseTextually(pidDir, p, own, entry)
	if errors.Is(err, errNoFUSE) {
		return false, nil
	}
	return true, err
}

// errNoFUSE says the mount table holds no FUSE mount.
var errNoFUSE = errors.New("no FUSE mount")

func refuseTextually(pidDir, p string, own bool, entry string) error {
	ms, err := mounts(pidDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No table, no process: the resolution under its root fails
		// the same way, before any file system is asked.
		return errNoFUSE
	case err != nil:
		return fmt.Errorf("%q: mount table unread (%v): %w", p, err, ErrUntrustedFS)
	}
	anyFUSE := false
	for _, m := range ms {
		anyFUSE = anyFUSE || IsFUSE(m.fstype)
	}
	if !anyFUSE {
		return errNoFUSE
	}
	untrusted := fmt.Errorf("%q: %w", p, ErrUntrustedFS)
	switch {
	case own:
		first, rest, _ := strings.Cut(entry, "/")
		n, below, _ := strings.Cut(rest, "/")
		if first != "fd" || below != "" {
			return untrusted
		}
		id, err := fdMount(pidDir, n)
		if err != nil {
			return untrusted
		}
		for _, m := range ms {
			if m.id == id && !IsFUSE(m.fstype) {
				return nil
			}
		}
		return untrusted
	case path.IsAbs(p):
		if m, ok := mountOf(ms, path.Clean(p)); ok && !IsFUSE(m.fstype) {
			return nil
		}
		return untrusted
	}
	return untrusted
}

// fdinfoHead bounds the read of an fdinfo file: mnt_id is its third line,
// and what follows (an epoll's or inotify's watches) can be long.
const fdinfoHead = 4 << 10

// fdMount reads the mount id of descriptor n from /proc/PID/fdinfo.
func fdMount(pidDir, n string) (int, error) {
	f, err := os.Open(filepath.Join(pidDir, "fdinfo", n))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b []byte
	if _, _, err := ReadBounded(f, fdinfoHead, time.Now().Add(time.Second), func(c []byte) { b = append(b, c...) }); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("fdinfo %s has no mnt_id", n)
}

// RefuseUntrusted is refuseUntrusted for a path p as process pid sees it.
func RefuseUntrusted(procRoot string, pid uint32, p string) error {
	pidDir := filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10))
	entry, own, err := ownEntry(p)
	if err != nil {
		return err
	}
	return refuseUntrusted(pidDir, p, own, entry)
}
