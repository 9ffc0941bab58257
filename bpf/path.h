// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* Paths read by walking up the dentry and kernfs trees: the executable's,
 * the working directory's and the cgroup's. */

#ifndef MITMEXEC_PATH_H
#define MITMEXEC_PATH_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define PATH_OFF_MASK 511 /* write offsets stay below 512, reads add at most 255 */
#define PATH_DEPTH    32
#define CGROUP_DEPTH  8

/* A buffer of known size, so that the global functions below may write it. */
struct path_buf {
	char b[PATH_BUF_LEN];
};

/* Writes the path of (dentry, vfsmount) into buf as NUL-separated components,
 * leaf first ("ettercap\0bin\0usr\0"); user space reverses them. Walking up is
 * the only order the kernel offers, and forward-only writes keep the verifier
 * simple. bpf_d_path is not allowed in tp_btf/sched_process_exec. The path is
 * relative to the host's root (mounts are crossed through struct mount), so
 * a containerised process's path reads as the host sees it.
 *
 * Global (not static): the verifier checks it once, not once per caller
 * and path through the caller. Kernel pointers come as integers because
 * they are only ever read through BPF_CORE_READ. */
__noinline int read_path(__u64 dentry_addr, __u64 vfsmnt_addr, struct path_buf *pb, __u16 *out_len)
{
	if (!pb || !out_len)
		return 1;
	struct dentry *dentry = (void *)dentry_addr;
	struct vfsmount *vfsmnt = (void *)vfsmnt_addr;
	char *buf = pb->b;
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	__u32 off = 0;
	int truncated = 1;

	for (int i = 0; i < PATH_DEPTH; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == mnt_root) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt) {
				truncated = 0;
				break;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = &mnt->mnt;
			continue;
		}
		if (dentry == parent) {
			/* a root that is no mount root: memfd, pipes, anon inodes */
			const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
			if (off > PATH_OFF_MASK)
				break;
			long n = bpf_probe_read_kernel_str(&buf[off & PATH_OFF_MASK], 255, name);
			if (n > 0)
				off += n;
			truncated = 0;
			break;
		}
		if (off > PATH_OFF_MASK)
			break;
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(&buf[off & PATH_OFF_MASK], 255, name);
		if (n <= 0)
			break;
		off += n;
		dentry = parent;
	}
	*out_len = off > PATH_BUF_LEN ? PATH_BUF_LEN : off;
	return truncated;
}

/* kernfs renamed parent to __parent in 6.15 */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___old *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

/* The cgroup v2 path, leaf first like read_path. The leaf carries the
 * container id in every runtime's layout (docker-<id>.scope, cri-containerd-<id>,
 * crio-<id>, libpod-<id>). */
__noinline int read_cgroup(__u64 kn_addr, struct path_buf *pb, __u16 *out_len)
{
	if (!pb || !out_len)
		return 1;
	char *buf = pb->b;
	struct kernfs_node *kn = (void *)kn_addr;
	__u32 off = 0;
	int truncated = 1;

	for (int i = 0; i < CGROUP_DEPTH; i++) {
		if (!kn)
			break;
		struct kernfs_node *parent = kernfs_parent(kn);
		if (!parent) { /* the root's name is "/" and says nothing */
			truncated = 0;
			break;
		}
		if (off > PATH_OFF_MASK)
			break;
		const char *name = BPF_CORE_READ(kn, name);
		long n = bpf_probe_read_kernel_str(&buf[off & PATH_OFF_MASK], 255, name);
		if (n <= 0)
			break;
		off += n;
		kn = parent;
	}
	if (off == 0 && !truncated) {
		/* the root cgroup: say so, an empty path would read as unknown */
		buf[0] = '/';
		buf[1] = 0;
		off = 2;
	}
	*out_len = off > PATH_BUF_LEN ? PATH_BUF_LEN : off;
	return truncated;
}

#endif
