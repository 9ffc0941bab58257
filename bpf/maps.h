// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The maps the programs share with user space and with each other, and the
 * per-CPU counters. Included by mitmexec.bpf.c after the types they hold. */

#ifndef MITMEXEC_MAPS_H
#define MITMEXEC_MAPS_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* LRU: a host that runs millions of distinct binaries evicts old verdicts,
 * which only means those files are judged again in user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct file_key);
	__type(value, struct verdict);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct name_key);
	__type(value, struct verdict);
} names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct fingerprint_key);
	__type(value, struct verdict);
} fingerprints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config_map SEC(".maps");

/* Processes block mode must never kill: the collector and its ancestors
 * (pid 1 is refused outright), tgid -> start in clock ticks since boot
 * (start_boottime / PROTECT_TICK_NS, what /proc/PID/stat shows; 0: any
 * start). A pid names a process only while it lives: a later process with
 * the pid of an ancestor that exited is not protected. Filled by user space
 * at start. */
#define PROTECT_TICK_NS 10000000ULL /* 1/USER_HZ: 100 on every Linux ABI */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} protected SEC(".maps");

/* Debug: every exec goes up. A small array's value is in the kernel's
 * direct map: a global in .bss, mmapable and so in vmalloc space, cost the
 * benign path a TLB miss more (about 0.1 us measured here). */
static __always_inline int submit_all(void)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	return cfg && cfg->submit_all;
}

/* Whether the current process is one block mode must never kill. */
static __always_inline int is_protected(struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (tgid <= 1 || (cfg && tgid == cfg->self_tgid))
		return 1;
	__u64 *start = bpf_map_lookup_elem(&protected, &tgid);
	if (!start)
		return 0;
	__u64 boot = BPF_CORE_READ(task, group_leader, start_boottime);
	return *start == 0 || boot / PROTECT_TICK_NS == *start;
}

/* The process table: child tgid -> parent, written on fork only. An array
 * slot per pid modulo FORK_SLOTS: a fork costs one plain store, no hash and
 * no lock; a slot names its owner, so a pid that reuses or shares it is never
 * taken for another. Nothing is deleted on exit. */
#define FORK_SLOTS 65536
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FORK_SLOTS);
	__type(key, __u32);
	__type(value, struct fork_parent);
} forks SEC(".maps");

static __always_inline struct fork_parent *fork_parent_of(__u32 tgid)
{
	__u32 slot = tgid & (FORK_SLOTS - 1);
	struct fork_parent *f = bpf_map_lookup_elem(&forks, &slot);
	if (f && f->child == tgid)
		return f;
	return NULL;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps");

/* Scratch for the fingerprint key: 136 bytes do not belong on the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fingerprint_key);
} fingerprint_scratch SEC(".maps");

#define ENV_SCAN_LEN 4096
struct env_buf {
	char b[ENV_SCAN_LEN];
	/* The bpf_loop scan's state lives here, not on the stack: verifiers
	 * before Linux 6.7 walk a bpf_loop callback once, from the state of
	 * the first call, and remove the branches that call cannot take.
	 * A scan state on the stack starts as constants (nothing matched yet),
	 * so Debian's 6.1 dropped the match branches and never found the
	 * variable. A map value's contents are unknown to every verifier. */
	__u32 n;
	__u32 matched; /* bytes of the name matched at the start of this string */
	__s32 at_start;
	__s32 found;
};

/* Scratch for the loader's environment, read only for loader execs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct env_buf);
} env_scratch SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

#endif
