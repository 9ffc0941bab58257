// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* What every record says, whichever hook sends it. */

#ifndef MITMEXEC_RECORD_H
#define MITMEXEC_RECORD_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "file.h"
#include "path.h"
#include "ancestry.h"

/* Fills what every record says: the process (ids, namespaces, creds, tty,
 * cwd, cgroup, ancestry), the file the exec names (identity, path, first
 * bytes) and the path as passed. Returns the flags it learned. */
static __always_inline __u32 fill_record(struct exec_event *e, struct task_struct *task, struct linux_binprm *bprm,
					 struct file *file, struct file_key *key)
{
	__u32 flags = 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	e->ktime_boot_ns = bpf_ktime_get_boot_ns();
	e->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ino = key->ino;
	e->ctime_ns = key->ctime_ns;
	e->dev = key->dev;
	e->size = BPF_CORE_READ(inode, i_size);
	e->nlink = BPF_CORE_READ(inode, __i_nlink);
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);

	struct pid *tpid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(tpid, level);
	e->vpid = BPF_CORE_READ(tpid, numbers[level].nr);
	e->pidns = BPF_CORE_READ(tpid, numbers[level].ns, ns.inum);
	e->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);

	__u64 ugid = bpf_get_current_uid_gid();
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	e->euid = BPF_CORE_READ(task, cred, euid.val);
	e->egid = BPF_CORE_READ(task, cred, egid.val);
	e->loginuid = BPF_CORE_READ(task, loginuid.val);
	if (BPF_CORE_READ(task, signal, tty))
		flags |= FLAG_INTERACTIVE;

	long n = bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;
	e->interp_len = 0;
	n = bpf_probe_read_kernel_str(&e->name, sizeof(e->name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	e->name_len = n > 0 ? n : 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel(&e->head, sizeof(e->head), &bprm->buf);
	mask_elf_head(e->head);

	struct path fpath = BPF_CORE_READ(file, f_path);
	if (read_path((__u64)fpath.dentry, (__u64)fpath.mnt, (struct path_buf *)e->exe_path, &e->exe_path_len))
		flags |= FLAG_EXE_PATH_TRUNCATED;
	struct path pwd = BPF_CORE_READ(task, fs, pwd);
	if (read_path((__u64)pwd.dentry, (__u64)pwd.mnt, (struct path_buf *)e->cwd, &e->cwd_len))
		flags |= FLAG_CWD_TRUNCATED;
	if (read_cgroup((__u64)BPF_CORE_READ(task, cgroups, dfl_cgrp, kn), (struct path_buf *)e->cgroup,
			&e->cgroup_len))
		flags |= FLAG_CGROUP_TRUNCATED;
	read_ancestors(e, task, e->tgid);
	if (e->ancestors_n > 0)
		e->ppid = e->ancestors[0].tgid; /* the fork table's, when the parent exited */
	e->args_len = 0;
	e->args_total = 0;
	e->args_head_len = 0;
	return flags;
}

#endif
