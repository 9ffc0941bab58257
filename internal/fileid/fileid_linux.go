// SPDX-License-Identifier: Apache-2.0

package fileid

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
)

// Path returns the kernel's file identity of a path, following symlinks.
// Only an O_PATH descriptor is taken: a device or a FIFO is never opened.
func Path(p string) (event.FileID, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return event.FileID{}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return event.FileID{}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return Of(f, &st), nil
}

// Of is the key the exec hook reads from the inode: the device of
// the file's super block, the inode number and the change time in
// nanoseconds.
//
// stat(2) does not always report the super block's device. overlayfs
// whose layers sit on different file systems (a tmpfs upper over a disk,
// as live systems and the kernel-matrix VMs have) reports a device per
// layer; btrfs reports one per subvolume (Fedora's and openSUSE's default
// root). The exec hook keys on inode->i_sb->s_dev, so on those the
// installed tools' identities never matched. The mount's entry in
// mountinfo carries the super block's device, found by the mount ID statx
// reports (Linux >= 5.8, the tracer's minimum).
func Of(f *os.File, st *unix.Stat_t) event.FileID {
	id := event.FileID{
		Dev:     event.KernelDev(uint64(st.Dev)),
		Ino:     uint64(st.Ino),
		CtimeNs: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
	}
	if f == nil {
		return id
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil || !devPerLayer(int64(fs.Type)) {
		return id
	}
	var stx unix.Statx_t
	if unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		return id
	}
	mi, err := procfs.ReadSelf(procfs.Root, "mountinfo", maxMountinfo, mountinfoTime)
	if err != nil {
		return id
	}
	if dev, ok := mountDev(bytes.NewReader(mi), stx.Mnt_id); ok {
		id.Dev = dev
	}
	return id
}

// devPerLayer reports the file systems whose stat(2) device is not their
// super block's.
func devPerLayer(fsType int64) bool {
	return fsType == unix.OVERLAYFS_SUPER_MAGIC || fsType == unix.BTRFS_SUPER_MAGIC
}

// maxMountinfo bounds the read of mountinfo: a node with thousands of
// container mounts has a few MiB.
const maxMountinfo = 16 << 20

// mountinfoTime bounds that read: the kernel walks the mount table as it
// prints it.
const mountinfoTime = time.Second

// mountDev finds mount ID mntID in a mountinfo table ("36 35 98:0 /mnt1
// /mnt2 ...": ID, parent ID, major:minor of the super block, ...) and
// returns its device in the kernel's encoding.
func mountDev(r io.Reader, mntID uint64) (uint32, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	want := strconv.FormatUint(mntID, 10) + " "
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, want) {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return 0, false
		}
		major, minor, ok := strings.Cut(fields[2], ":")
		if !ok {
			return 0, false
		}
		ma, err1 := strconv.ParseUint(major, 10, 12)
		mi, err2 := strconv.ParseUint(minor, 10, 20)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return uint32(ma)<<20 | uint32(mi), true
	}
	return 0, false
}
