// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The identity of the file an exec loads: the parts of the inode that change
 * whenever its bytes may have changed, and the filesystem it lives on. */

#ifndef MITMEXEC_FILE_H
#define MITMEXEC_FILE_H

/* s_magic of a FUSE superblock (uapi/linux/magic.h) */
#define FUSE_SUPER_MAGIC 0x65735546

/* The inode's change time is part of the identity: rename, link, chmod and
 * any write change it, so a cached verdict never outlives the file it judged.
 * Kernels >= 6.11 split it into i_ctime_sec/i_ctime_nsec, 6.6-6.10 call it
 * __i_ctime, older ones i_ctime. */

/* Multigrain timestamps (Linux >= 6.13) mark in the top bit of i_ctime_nsec
 * that the ctime was read (stat, the inventory), so that the next change
 * takes a fine-grained time; inode_get_ctime_nsec() masks it, and so must
 * we, or a file's identity would change each time someone stats it. A
 * nanosecond count never reaches that bit, so older kernels lose nothing. */
#define CTIME_QUERIED (1U << 31)
struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___old {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

static __always_inline __u64 inode_ctime_ns(struct inode *inode)
{
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		__s64 sec = BPF_CORE_READ(inode, i_ctime_sec);
		__u32 nsec = BPF_CORE_READ(inode, i_ctime_nsec) & ~CTIME_QUERIED;
		return (__u64)sec * 1000000000ULL + nsec;
	}
	struct inode___v66 *i66 = (void *)inode;
	if (bpf_core_field_exists(i66->__i_ctime)) {
		struct timespec64 ts = BPF_CORE_READ(i66, __i_ctime);
		return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	}
	struct inode___old *iold = (void *)inode;
	struct timespec64 ts = BPF_CORE_READ(iold, i_ctime);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#endif
