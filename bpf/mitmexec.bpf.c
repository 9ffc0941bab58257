// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// The BPF program is dual-licensed like the kernel helpers it calls
// require (GPL-compatible); the rest of mitmexec is Apache-2.0 (LICENSE).

//go:build ignore

// mitmexec exec tracer.
//
// One hook, sched_process_exec, fires once per successful execve/execveat,
// after binfmt handlers resolved a script to its interpreter and after the new
// mm (argv) is installed, so everything here describes the program that is
// about to run its first instruction. The kernel decides cheaply: an exec of
// a file whose identity (device, inode, change time) user space already judged
// benign costs one hash lookup and submits nothing. Everything else (a known
// tool, an interpreter whose arguments matter, a file never seen before) goes
// up once; user space judges it and writes the verdict back into `verdicts`.
//
// The ABI shared with Go is bpf/mitmexec.h.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "mitmexec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Wakeups: a known tool wakes the reader at once; other records wake it at
 * most once per WAKEUP_GAP_NS, or when WAKEUP_BYTES are waiting. The reader
 * looks again shortly after each batch for records that came in the gap. */
#define WAKEUP_BYTES  (256 * 1024)
#define WAKEUP_GAP_NS (5 * 1000 * 1000) /* keep below stragglerWait in internal/tracer */

/* bpf2go -type needs the types referenced by globals */
#define BPF2GO_TYPE(t, name) const t *unused_##name __attribute__((unused))
BPF2GO_TYPE(struct exec_event, exec_event);
BPF2GO_TYPE(struct file_key, file_key);
BPF2GO_TYPE(struct verdict, verdict);
BPF2GO_TYPE(struct name_key, name_key);
BPF2GO_TYPE(struct fingerprint_key, fingerprint_key);
BPF2GO_TYPE(struct config, config);
BPF2GO_TYPE(struct fork_parent, fork_parent);
BPF2GO_TYPE(struct frame_event, frame_event);
BPF2GO_TYPE(struct frame_sender_key, frame_sender_key);
BPF2GO_TYPE(enum limit, limit);
BPF2GO_TYPE(enum verdict_kind, verdict_kind);
BPF2GO_TYPE(enum verdict_action, verdict_action);
BPF2GO_TYPE(enum exec_reason, exec_reason);
BPF2GO_TYPE(enum exec_flag, exec_flag);
BPF2GO_TYPE(enum counter, counter);
BPF2GO_TYPE(enum ancestor_flag, ancestor_flag);
BPF2GO_TYPE(enum frame_flag, frame_flag);
BPF2GO_TYPE(enum frame_counter, frame_counter);

/* The parts of the program by concern, each header including what it uses. */
#include "maps.h"
#include "file.h"
#include "path.h"
#include "ancestry.h"
#include "record.h"
#include "args.h"

/* What the exec hook decided about one exec before any record exists. */
struct exec_decision {
	__u32 reasons;
	__u32 flags;
	__u16 tool_id;
	__u8 action;
};

/* A FUSE server chooses its files' inode numbers and times and may serve
 * other bytes to the next reader: a verdict on one of its files proves
 * nothing about the next exec of it. Such a first sight is flagged, and
 * user space never caches a verdict for it, so every exec of a FUSE file
 * comes up without one; the benign path never asks. */
static __always_inline int is_untrusted_fs(struct inode *inode)
{
	return BPF_CORE_READ(inode, i_sb, s_magic) == FUSE_SUPER_MAGIC;
}

/* Applies a cached verdict. Returns 1 when the exec is decided in the
 * kernel and nothing goes up: a shell that runs nothing new. */
static __always_inline int judge_cached(struct verdict *v, struct task_struct *task, struct exec_decision *d)
{
	if (v->kind == VERDICT_TOOL) {
		d->reasons |= REASON_VERDICT_TOOL;
		d->tool_id = v->tool_id;
		d->action = v->action;
	} else if (v->kind == VERDICT_INTERPRETER) {
		d->reasons |= REASON_INTERPRETER;
	} else if (v->kind == VERDICT_SHELL) {
		if (shell_runs_nothing_new(task))
			return 1;
		d->reasons |= REASON_INTERPRETER;
	} else if (v->kind == VERDICT_LOADER) {
		d->reasons |= REASON_INTERPRETER;
	}
	return 0;
}

/* ldd runs the loader with LD_TRACE_LOADED_OBJECTS set: it lists a
 * program's libraries and runs none of it. A cached loader decides that
 * here. A first sight of an ELF file may be the loader too (the first ldd
 * after start, before user space has judged the loader, or a renamed copy
 * of it): the record goes up saying so. First sights are rare, so the scan
 * costs the benign path nothing. Returns 1 when the exec is decided here. */
static __always_inline int loader_decides(struct verdict *v, struct linux_binprm *bprm, struct task_struct *task,
					  struct exec_decision *d, const int use_loop)
{
	if (v) {
		if (v->kind != VERDICT_LOADER)
			return 0;
	} else {
		char magic[4];
		if (bpf_probe_read_kernel(magic, sizeof(magic), &bprm->buf) < 0 || magic[0] != 0x7f ||
		    magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F')
			return 0;
	}
	if (!loader_only_lists(task, use_loop))
		return 0;
	if (v)
		return 1;
	d->flags |= FLAG_LOADER_LISTS;
	return 0;
}

/* First sight of this identity: the file's name, then its content
 * fingerprint, may still name a known tool. */
static __always_inline void judge_first_sight(struct file *file, struct linux_binprm *bprm, struct exec_decision *d,
					      const int btf)
{
	__u32 zero = 0;
	d->reasons |= REASON_UNKNOWN;
	struct verdict *nv = name_verdict(file, btf);
	if (nv) {
		d->reasons |= REASON_NAME;
		d->tool_id = nv->tool_id;
		d->action = nv->action;
	}
	if (d->tool_id)
		return;
	struct fingerprint_key *fk = bpf_map_lookup_elem(&fingerprint_scratch, &zero);
	if (!fk)
		return;
	bpf_probe_read_kernel(&fk->head, sizeof(fk->head), &bprm->buf);
	mask_elf_head(fk->head);
	struct verdict *fv = bpf_map_lookup_elem(&fingerprints, fk);
	if (fv) {
		d->reasons |= REASON_FINGERPRINT;
		d->tool_id = fv->tool_id;
		d->action = fv->action;
	}
}

/* Killing from here stops the program before its first own instruction:
 * the new image is mapped but userspace has not been entered yet. pid 1,
 * the collector and the processes it protects are never killed. */
static __always_inline void kill_if_told(struct exec_decision *d, struct task_struct *task)
{
	if (!d->tool_id || d->action != ACTION_KILL)
		return;
	if (is_protected(task))
		return;
	if (bpf_send_signal(9) == 0) {
		d->flags |= FLAG_KILLED;
		count(COUNTER_KILLS);
	} else {
		d->flags |= FLAG_KILL_FAILED;
	}
}

/* What only an exec that happened can say: the interpreter binfmt chose and
 * the new program's argv. Returns the flags it learned. */
static __always_inline __u32 fill_exec(struct exec_event *e, struct task_struct *task, struct linux_binprm *bprm)
{
	__u32 flags = 0;
	const char *filename = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	/* alloc_bprm points interp at filename; binfmt_script and binfmt_misc
	 * replace it, so a different pointer means a script or a misc binary. */
	if (filename != interp)
		flags |= FLAG_SCRIPT;
	long n = bpf_probe_read_kernel_str(&e->interp, sizeof(e->interp), interp);
	e->interp_len = n > 0 ? n : 0;
	return flags | read_args(e, task);
}

/* A known tool wakes the reader at once. Anything else wakes it at most
 * once per WAKEUP_GAP_NS or when a backlog builds up: the wakeup is most of
 * a record's cost (docs/benchmarks.md), so a burst shares one. */
static __always_inline __u64 wakeup_flags(__u16 tool_id)
{
	__u32 zero = 0;
	__u64 wake = BPF_RB_NO_WAKEUP;
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&last_wakeup, &zero);
	if (tool_id || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BYTES ||
	    (last && now - *last > WAKEUP_GAP_NS))
		wake = BPF_RB_FORCE_WAKEUP;
	if (wake == BPF_RB_FORCE_WAKEUP && last)
		*last = now; /* racy across CPUs on purpose: a spare wakeup is harmless */
	return wake;
}

/* Sends the record of an exec the kernel did not decide alone, after the
 * kill it was told to send. */
static __always_inline void submit_exec(struct exec_decision *d, struct task_struct *task, struct linux_binprm *bprm,
					struct file *file, struct file_key *key)
{
	kill_if_told(d, task);

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RESERVE_FAILED);
		return;
	}
	count(COUNTER_SUBMITTED);
	d->flags |= fill_record(e, task, bprm, file, key);
	d->flags |= fill_exec(e, task, bprm);
	e->reasons = d->reasons;
	e->flags = d->flags;
	e->tool_id = d->tool_id;
	bpf_ringbuf_submit(e, wakeup_flags(d->tool_id));
}

/* The exec hook. The benign path, most execs, is the file's identity, one
 * lookup, two compares and a return: the FUSE check, the name and
 * fingerprint tables, argv and the record are only for the rest. The
 * benign verdict is tested after the loader's, not first: that order is
 * the one Debian's 6.1 verifier walks within its limit (testing it first
 * gave the verifier states it could not prune through the loader's scan,
 * past a million instructions). use_loop is a constant in each program:
 * the bpf_loop scan of the loader's environment, or the bounded one for
 * kernels before 5.17. */
static __always_inline int handle_exec(struct task_struct *task, struct linux_binprm *bprm, const int use_loop)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct file_key key = {};

	count(COUNTER_EXECS);
	file_key_of(&key, inode, 0);
	struct verdict *v = bpf_map_lookup_elem(&verdicts, &key);
	/* known before the judging, applied after the loader's scan: a flag
	 * set in d before the scan doubles the states 6.1 walks through it */
	int untrusted = !v && is_untrusted_fs(inode);
	struct exec_decision d = {.action = ACTION_ALERT};
	if (v) {
		if (judge_cached(v, task, &d))
			return 0;
	} else {
		judge_first_sight(file, bprm, &d, 0);
	}
	if (loader_decides(v, bprm, task, &d, use_loop))
		return 0;
	int all = submit_all();
	if (v && v->kind == VERDICT_BENIGN && !all)
		return 0;
	if (all)
		d.reasons |= REASON_SUBMIT_ALL;
	if (untrusted)
		d.flags |= FLAG_UNTRUSTED_FS;
	submit_exec(&d, task, bprm, file, &key);
	return 0;
}

/* Block mode where BPF LSM loads (lsm= includes bpf): refuse the exec of a
 * file whose verdict is a tool to kill, before the new image replaces the
 * caller. The record describes the caller that tried (its pid, parent, cwd,
 * cgroup) and the file it named; argv is still in the binprm's pages, not
 * in a mm, so it is left out. Kernels that refuse lsm/ programs fall back to
 * the SIGKILL in the exec hook. */
SEC("lsm/bprm_check_security")
int BPF_PROG(bprm_check_deny, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	struct file *file = bprm->file;
	struct file_key key = {};
	file_key_of(&key, file->f_inode, 1);

	__u16 tool_id = 0;
	__u32 reasons = 0;
	struct verdict *v = bpf_map_lookup_elem(&verdicts, &key);
	if (v && v->kind == VERDICT_TOOL && v->action == ACTION_KILL) {
		tool_id = v->tool_id;
		reasons = REASON_VERDICT_TOOL;
	} else if (!v) {
		struct verdict *nv = name_verdict(file, 1);
		if (nv && nv->action == ACTION_KILL) {
			tool_id = nv->tool_id;
			reasons = REASON_NAME;
		}
	}
	if (!tool_id)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (is_protected(task))
		return 0;

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		/* the caller is the process: its own parent chain is the ancestry */
		e->flags = FLAG_DENIED | fill_record(e, task, bprm, file, &key);
		e->reasons = reasons;
		e->tool_id = tool_id;
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	} else {
		count(COUNTER_RESERVE_FAILED);
	}
	count(COUNTER_KILLS);
	return -1; /* -EPERM */
}

/* The exec hook, in two flavours (tp_btf, and raw_tracepoint for kernels
 * whose tp_btf cannot load) times two environment scans (bpf_loop, and the
 * bounded one for kernels before 5.17); user space loads one of the four. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(task, bprm, 1);
}

SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return handle_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2], 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf_bounded, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(task, bprm, 0);
}

SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec_raw_bounded(struct bpf_raw_tracepoint_args *ctx)
{
	return handle_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2], 0);
}

/* fork: remember the parent of every new process (threads are skipped: a
 * thread shares its process's ancestry). */
static __always_inline int handle_fork(struct task_struct *parent, struct task_struct *child, const int btf)
{
	__u32 child_tgid = KREAD(btf, child, tgid);
	if (KREAD(btf, child, pid) != child_tgid)
		return 0;
	__u32 slot = child_tgid & (FORK_SLOTS - 1);
	struct fork_parent *fp = bpf_map_lookup_elem(&forks, &slot);
	if (!fp)
		return 0;
	struct task_struct *leader = KREAD(btf, parent, group_leader);
	/* Written in place, racing only a reader of a pid that is being reused:
	 * the owner is written last so a half-written slot reads as foreign. */
	fp->child = 0;
	fp->ppid = KREAD(btf, parent, tgid);
	fp->start_boottime_ns = KREAD(btf, leader, start_boottime);
	bpf_probe_read_kernel(&fp->comm, sizeof(fp->comm), &leader->comm);
	fp->child = child_tgid;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return handle_fork(parent, child, 1);
}

SEC("raw_tracepoint/sched_process_fork")
int sched_process_fork_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return handle_fork((struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1], 0);
}

#include "frame.h"
