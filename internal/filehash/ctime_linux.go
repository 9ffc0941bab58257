// SPDX-License-Identifier: Apache-2.0

//go:build linux

package filehash

import (
	"os"

	"golang.org/x/sys/unix"
)

// kernelKeepsCtime reports whether f lives on a file system whose inode
// numbers and change times the kernel itself keeps (local disk file
// systems, tmpfs and memfd, overlayfs over them). FUSE, NFS, SMB and 9p
// take them from a server that may be the user's; vfat and its kin have no
// change time at all.
func kernelKeepsCtime(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var sfs unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &sfs) }); err != nil || serr != nil {
		return false
	}
	switch int64(sfs.Type) {
	case unix.EXT4_SUPER_MAGIC, // ext2 and ext3 too
		unix.XFS_SUPER_MAGIC,
		unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC,
		unix.TMPFS_MAGIC,
		unix.HUGETLBFS_MAGIC,
		unix.OVERLAYFS_SUPER_MAGIC,
		unix.SQUASHFS_MAGIC,
		unix.EROFS_SUPER_MAGIC_V1,
		0x2fc12fc1: // zfs
		return true
	}
	return false
}
