// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The identity of the file an exec loads: the parts of the inode that change
 * whenever its bytes may have changed, and the filesystem it lives on. */

#ifndef MITMEXEC_FILE_H
#define MITMEXEC_FILE_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "maps.h"

/* e_shoff, e_shnum and e_shstrndx only say where the section headers are,
 * which the loader never reads: appending bytes or adding a section with
 * objcopy changes these and nothing else in the first 256 bytes. */
static __always_inline void mask_elf_head(__u8 *h)
{
	if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F')
		return;
	if (h[4] == 2) { /* ELFCLASS64 */
		__builtin_memset(&h[0x28], 0, 8);
		__builtin_memset(&h[0x3c], 0, 4);
	} else if (h[4] == 1) { /* ELFCLASS32 */
		__builtin_memset(&h[0x20], 0, 4);
		__builtin_memset(&h[0x30], 0, 4);
	}
}

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

/* A field of a kernel object: where the program holds a BTF pointer (tp_btf,
 * lsm) a plain load, which the verifier turns into a load that cannot fault,
 * at the cost of one instruction; where it holds a number (raw_tracepoint)
 * a bpf_probe_read_kernel call, several times dearer. btf is a constant at
 * every call, so each program keeps one of the two. */
#define KREAD(btf, p, f) ((btf) ? (p)->f : BPF_CORE_READ(p, f))

static __always_inline __u64 inode_ctime_ns(struct inode *inode, const int btf)
{
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		__s64 sec = KREAD(btf, inode, i_ctime_sec);
		__u32 nsec = KREAD(btf, inode, i_ctime_nsec) & ~CTIME_QUERIED;
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

/* The identity of the file an exec loads: what verdicts are cached under. */
static __always_inline void file_key_of(struct file_key *key, struct inode *inode, const int btf)
{
	key->ino = KREAD(btf, inode, i_ino);
	struct super_block *sb = KREAD(btf, inode, i_sb);
	key->dev = KREAD(btf, sb, s_dev);
	key->ctime_ns = inode_ctime_ns(inode, btf);
}
/* The name table's verdict on the loaded file's dentry name, or NULL: a
 * name the table cannot hold is in it under no key. */
static __always_inline struct verdict *name_verdict(struct file *file, const int btf)
{
	struct name_key nk = {};
	struct dentry *dentry = KREAD(btf, file, f_path.dentry);
	if (KREAD(btf, dentry, d_name.len) >= KEY_NAME_LEN)
		return NULL;
	bpf_probe_read_kernel_str(&nk.name, sizeof(nk.name), KREAD(btf, dentry, d_name.name));
	return bpf_map_lookup_elem(&names, &nk);
}

#endif
