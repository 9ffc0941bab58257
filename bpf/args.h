// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* Arguments and environment of the new program: the kernel-side decisions
 * for shells and the dynamic loader, and the argv capture. */

#ifndef MITMEXEC_ARGS_H
#define MITMEXEC_ARGS_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "maps.h"

#define ARGS_MASK (ARGS_LEN - 1)

/* A shell run as `sh -c CMD`, or with no argument at all, runs nothing a
 * tool could hide in: the programs CMD starts are exec'd and judged on
 * their own. Those are most shell execs (system(), popen(), login shells),
 * so they stay in the kernel. Only the first 64 bytes of argv are read. */
static __always_inline int shell_runs_nothing_new(struct task_struct *task)
{
	char a[64] = {};
	__u64 start = BPF_CORE_READ(task, mm, arg_start);
	__u64 end = BPF_CORE_READ(task, mm, arg_end);
	if (end <= start)
		return 1;
	/* argv sits at the very top of the new stack: reading past arg_end
	 * can run off the mapping when the environment is small. */
	__u32 n = end - start > sizeof(a) ? sizeof(a) : end - start;
	if (bpf_probe_read_user(a, n, (void *)start) < 0)
		return 0;
	int i;
	for (i = 0; i < 48; i++)
		if (a[i] == 0)
			break;
	if (i >= 48)
		return 0; /* a long argv[0]: let user space read it all */
	if ((__u64)(i + 1) >= end - start)
		return 1; /* no argv[1] */
	if (a[(i + 1) & 63] != '-' || a[(i + 2) & 63] == '-')
		return 0; /* a script, or a long option */
	for (int j = 2; j < 14; j++) {
		char ch = a[(i + j) & 63];
		if (ch == 0)
			break;
		if (ch == 'c')
			return 1;
	}
	return 0;
}

/* ldd runs `ld.so PROGRAM` with LD_TRACE_LOADED_OBJECTS=1 in the
 * environment: the loader then lists PROGRAM's libraries and exits without
 * running it. Those execs of a known loader stay in the kernel, a first
 * sight goes up flagged (loader_decides); any other loader exec goes up,
 * where its argv names the program it runs. The first 4 KiB of the
 * environment are searched with bpf_loop (Linux >= 5.17), which the verifier
 * checks once instead of once per byte; loader_only_lists_bounded below
 * serves older kernels. */
#define TRACE_VAR     "LD_TRACE_LOADED_OBJECTS="
#define TRACE_VAR_LEN (sizeof(TRACE_VAR) - 1)

static long env_scan_step(__u32 i, void *ctx)
{
	static const char want[] = TRACE_VAR;
	__u32 zero = 0;
	struct env_buf *st = bpf_map_lookup_elem(&env_scratch, &zero);
	if (!st || i >= st->n)
		return 1;
	char c = st->b[i & (ENV_SCAN_LEN - 1)];
	if (st->matched == sizeof(want) - 1) {
		/* the value: anything but empty or "0" traces */
		st->found = c != 0 && c != '0';
		return 1;
	}
	if ((st->at_start || st->matched > 0) && st->matched < sizeof(want) - 1 && c == want[st->matched & 31]) {
		st->matched++;
		st->at_start = 0;
		return 0;
	}
	st->matched = 0;
	st->at_start = c == 0;
	return 0;
}

/* The scratch buffer both scans use, and the new program's environment:
 * its start and how much of it, at most ENV_SCAN_LEN bytes, is searched.
 * NULL when there is nothing to search. */
static __always_inline struct env_buf *env_window(struct task_struct *task, __u64 *start, __u32 *n)
{
	__u32 zero = 0;
	struct env_buf *env = bpf_map_lookup_elem(&env_scratch, &zero);
	if (!env)
		return NULL;
	*start = BPF_CORE_READ(task, mm, env_start);
	__u64 end = BPF_CORE_READ(task, mm, env_end);
	if (end <= *start)
		return NULL;
	*n = end - *start > ENV_SCAN_LEN ? ENV_SCAN_LEN : end - *start;
	return env;
}

static __always_inline int loader_only_lists_loop(struct task_struct *task)
{
	__u64 start;
	__u32 n;
	struct env_buf *env = env_window(task, &start, &n);
	if (!env || bpf_probe_read_user(env->b, n, (void *)start) < 0)
		return 0;
	env->n = n;
	env->matched = 0;
	env->at_start = 1;
	env->found = 0;
	bpf_loop(ENV_SCAN_LEN, env_scan_step, NULL, 0);
	return env->found;
}

/* Without bpf_loop a byte-wise scan would be verified once per byte and
 * per matching state, far past the verifier's budget. Instead the kernel's
 * string copy finds each entry's end: one bpf_probe_read_user_str per
 * environment entry, for the first ENV_ENTRIES_BOUNDED entries that start
 * in the same first 4 KiB. The verifier walks this bounded loop (Linux >=
 * 5.3) once per entry; clang refuses to unroll 128 copies. An environment
 * with more entries before the variable only sends the exec up, as any
 * other loader exec does. Each copy stops at its entry's NUL and at most one
 * entry runs past the 4 KiB, so at most 8 KiB are read. */
#define ENV_ENTRIES_BOUNDED 128

/* An 8-byte word of the variable's name, folded to a constant: an entry is
 * compared with three loads instead of 24. */
static __always_inline __u64 word_of(const char *s)
{
	__u64 w;
	__builtin_memcpy(&w, s, sizeof(w));
	return w;
}

static __always_inline int loader_only_lists_bounded(struct task_struct *task)
{
	__u64 start;
	__u32 n;
	struct env_buf *env = env_window(task, &start, &n);
	if (!env)
		return 0;
	/* map values are 8-byte aligned: the words load in one instruction */
	__u64 *w = (__u64 *)env->b;
	__u64 off = 0;
	for (int i = 0; i < ENV_ENTRIES_BOUNDED; i++) {
		/* like the bpf_loop scan, the value's first byte must lie in
		 * the first 4 KiB */
		if (off + TRACE_VAR_LEN >= n)
			return 0;
		long len = bpf_probe_read_user_str(env->b, ENV_SCAN_LEN, (void *)(start + off));
		if (len <= 0)
			return 0;
		if (w[0] == word_of(TRACE_VAR) && w[1] == word_of(&TRACE_VAR[8]) && w[2] == word_of(&TRACE_VAR[16])) {
			/* the value: anything but empty or "0" traces */
			char c = env->b[TRACE_VAR_LEN];
			return c != 0 && c != '0';
		}
		off += len;
	}
	return 0;
}

/* use_loop is a constant at every call: each program keeps one scan. */
static __always_inline int loader_only_lists(struct task_struct *task, const int use_loop)
{
	if (use_loop)
		return loader_only_lists_loop(task);
	return loader_only_lists_bounded(task);
}

/* argv lives in the new mm, just copied there by the exec; it is present.
 * Returns the flags it learned. */
static __always_inline __u32 read_args(struct exec_event *e, struct task_struct *task)
{
	__u32 flags = 0;
	__u64 arg_start = BPF_CORE_READ(task, mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u64 total = arg_end > arg_start ? arg_end - arg_start : 0;
	e->args_total = total > 0xffffffff ? 0xffffffff : total;
	e->args_len = 0;
	e->args_head_len = 0;
	if (total > ARGS_LEN - 1) {
		/* Interpreter and loader options come first and the program they
		 * run after them, so padding an option past the capture would hide
		 * the program: keep argv's start and its end. */
		flags |= FLAG_ARGS_TRUNCATED | FLAG_ARGS_ELIDED;
		if (bpf_probe_read_user(&e->args, ARGS_HEAD, (void *)arg_start) == 0 &&
		    bpf_probe_read_user(&e->args[ARGS_HEAD], ARGS_LEN - 1 - ARGS_HEAD,
					(void *)(arg_end - (ARGS_LEN - 1 - ARGS_HEAD))) == 0) {
			e->args_head_len = ARGS_HEAD;
			e->args_len = ARGS_LEN - 1;
		}
	} else {
		__u32 len = total & ARGS_MASK;
		if (len > 0 && bpf_probe_read_user(&e->args, len, (void *)arg_start) == 0)
			e->args_len = len;
		e->args_head_len = e->args_len;
	}
	return flags;
}

#endif
