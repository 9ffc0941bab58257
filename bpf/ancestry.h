// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The exec'ing process's ancestors, from the live parent chain and the fork
 * table (the forks map, written by the fork hook). */

#ifndef MITMEXEC_ANCESTRY_H
#define MITMEXEC_ANCESTRY_H

#include "mitmexec.h"
#include <bpf/bpf_core_read.h>
#include "maps.h"

/* Ancestry, nearest first. The live real_parent chain is right while every
 * ancestor lives; a parent that exited before the exec was replaced by a
 * reaper there, so where the fork table disagrees with the live chain the
 * table wins and is followed from then on. */
static __always_inline void read_ancestors(struct exec_event *e, struct task_struct *task, __u32 tgid)
{
	struct task_struct *t = BPF_CORE_READ(task, real_parent);
	struct fork_parent *f = fork_parent_of(tgid);
	int diverged = 0;
	__u8 n = 0;
	for (int i = 0; i < ANCESTORS; i++) {
		__u32 live = t ? BPF_CORE_READ(t, tgid) : 0;
		if (!diverged && live && (!f || f->ppid == live)) {
			e->ancestors[i].tgid = live;
			e->ancestors[i].flags = 0;
			e->ancestors[i].start_boottime_ns = BPF_CORE_READ(t, group_leader, start_boottime);
			BPF_CORE_READ_STR_INTO(&e->ancestors[i].comm, t, group_leader, comm);
			f = fork_parent_of(live);
			t = BPF_CORE_READ(t, real_parent);
		} else if (f && f->ppid) {
			__u32 ppid = f->ppid;
			diverged = 1;
			e->ancestors[i].tgid = ppid;
			e->ancestors[i].flags = ANCESTOR_FROM_FORK_TABLE;
			e->ancestors[i].start_boottime_ns = f->start_boottime_ns;
			__builtin_memcpy(&e->ancestors[i].comm, f->comm, COMM_LEN);
			f = fork_parent_of(ppid);
		} else {
			break;
		}
		n++;
		if (e->ancestors[i].tgid <= 1)
			break;
	}
	e->ancestors_n = n;
}

#endif
