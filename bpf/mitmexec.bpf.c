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
// Layouts shared with Go: keep in sync with internal/event/layout.go.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define COMM_LEN 16
#define NAME_LEN 64        /* dentry name of the loaded file */
#define KEY_NAME_LEN 32    /* names map key; Tracer.PutName takes its bound from the generated struct */
#define STR_LEN 256        /* bprm->filename, bprm->interp */
#define PATH_BUF_LEN 768   /* reversed path components, see read_path */
#define PATH_OFF_MASK 511  /* write offsets stay below 512, reads add at most 255 */
#define PATH_DEPTH 32
#define CGROUP_DEPTH 8
#define ARGS_LEN 4096
#define ARGS_MASK (ARGS_LEN - 1)
#define ARGS_HEAD 2048   /* with FLAG_ARGS_ELIDED: bytes from argv's start, the rest from its end */
#define HEAD_LEN 256       /* all of bprm->buf (BINPRM_BUF_SIZE): the structural fingerprint */
#define ANCESTORS 8

/* verdict kinds, keep in sync with event.Verdict* */
#define VERDICT_BENIGN 1
#define VERDICT_TOOL 2
#define VERDICT_INTERPRETER 3
#define VERDICT_SHELL 4 /* an interpreter whose -c and bare runs are left to the execs they make */
#define VERDICT_LOADER 5 /* the dynamic loader: ld.so PROGRAM runs PROGRAM, unless it only lists its libraries */

/* verdict actions, keep in sync with event.Action* */
#define ACTION_ALERT 0
#define ACTION_KILL 1

/* why the kernel sent the record (bits), keep in sync with event.Reason* */
#define REASON_VERDICT_TOOL (1 << 0)
#define REASON_NAME (1 << 1)
#define REASON_FINGERPRINT (1 << 2)
#define REASON_INTERPRETER (1 << 3)
#define REASON_UNKNOWN (1 << 4)
#define REASON_SUBMIT_ALL (1 << 5)

/* record flags (bits), keep in sync with event.Flag* */
#define FLAG_ARGS_TRUNCATED (1 << 0)
#define FLAG_SCRIPT (1 << 1)
#define FLAG_INTERACTIVE (1 << 2)
#define FLAG_KILLED (1 << 3)
#define FLAG_KILL_FAILED (1 << 4)
#define FLAG_EXE_PATH_TRUNCATED (1 << 5)
#define FLAG_CWD_TRUNCATED (1 << 6)
#define FLAG_CGROUP_TRUNCATED (1 << 7)
#define FLAG_DENIED (1 << 8) /* refused by the LSM hook: the exec never happened */
#define FLAG_ARGS_ELIDED (1 << 9) /* args holds argv's first ARGS_HEAD bytes, then its last ones */
#define FLAG_UNTRUSTED_FS (1 << 10) /* the file is on FUSE: its identity says nothing about its bytes */
#define FLAG_LOADER_LISTS (1 << 11) /* LD_TRACE_LOADED_OBJECTS is set: a loader would only list libraries */

/* counters (per-CPU array index), keep in sync with event.Counter* */
#define COUNTER_EXECS 0
#define COUNTER_SUBMITTED 1
#define COUNTER_RESERVE_FAILED 2
#define COUNTER_KILLS 3
#define COUNTER_MAX 8

/* Wakeups: a known tool wakes the reader at once; other records wake it at
 * most once per WAKEUP_GAP_NS, or when WAKEUP_BYTES are waiting. The reader
 * looks again shortly after each batch for records that came in the gap. */
#define WAKEUP_BYTES (256 * 1024)
#define WAKEUP_GAP_NS (5 * 1000 * 1000) /* keep below stragglerWait in internal/tracer */

struct file_key {
	__u64 ino;
	__u64 ctime_ns;
	__u32 dev;
	__u32 pad;
};

struct verdict {
	__u16 tool_id;
	__u8 kind;
	__u8 action;
};

struct name_key {
	char name[KEY_NAME_LEN];
};

/* The first bytes of an ELF file with the fields that only say where the
 * section headers are masked out (see mask_elf_head): what the loader maps
 * (entry point, program headers) stays, so a copy with bytes appended or a
 * non-loaded section added still matches, while the file size does not count. */
struct fingerprint_key {
	__u8 head[HEAD_LEN];
};

struct config {
	__u32 self_tgid;
	__u32 submit_all; /* debug: every exec goes up */
	__u32 frame_deny; /* block mode: lsm/socket_sendmsg refuses lying frames */
	__u32 frame_lsm_reports; /* lsm/socket_sendmsg reports every frame (no tracepoint beside it) */
};

/* ancestor flags, keep in sync with event.ancestorFromForkTable */
#define ANCESTOR_FROM_FORK_TABLE 1

struct ancestor {
	__u32 tgid;
	__u32 flags;
	__u64 start_boottime_ns;
	char comm[COMM_LEN];
};

/* What the fork hook remembers of a new process's parent, so that ancestry
 * stays right after the parent exits and the child is reparented. */
struct fork_parent {
	__u32 child; /* the slot's owner: pids that share a slot overwrite it */
	__u32 ppid;
	__u64 start_boottime_ns;
	char comm[COMM_LEN];
};

struct exec_event {
	__u64 ktime_boot_ns;
	__u64 start_boottime_ns;
	__u64 cgroup_id;
	__u64 ino;
	__u64 ctime_ns;
	__u64 size;
	__u32 dev;
	__u32 nlink;
	__u32 tgid;
	__u32 tid;
	__u32 vpid;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 loginuid;
	__u32 pidns;
	__u32 mntns;
	__u32 reasons;
	__u32 flags;
	__u32 args_len;     /* bytes valid in args */
	__u32 args_total;   /* bytes of argv in the process */
	__u16 tool_id;      /* from the kernel verdict, 0 when none */
	__u16 filename_len; /* including NUL, 0 when unreadable */
	__u16 interp_len;
	__u16 name_len;
	__u16 exe_path_len;
	__u16 cwd_len;
	__u16 cgroup_len;
	__u8 ancestors_n;
	__u8 pad;
	char comm[COMM_LEN];
	char name[NAME_LEN];
	char filename[STR_LEN];
	char interp[STR_LEN];
	__u8 head[HEAD_LEN]; /* masked like fingerprint_key */
	__u32 args_head_len; /* with FLAG_ARGS_ELIDED: bytes of args taken from argv's start */
	struct ancestor ancestors[ANCESTORS];
	char exe_path[PATH_BUF_LEN];
	char cwd[PATH_BUF_LEN];
	char cgroup[PATH_BUF_LEN];
	char args[ARGS_LEN];
};

/* bpf2go -type needs the types referenced by globals */
const struct exec_event *unused_exec_event __attribute__((unused));
const struct file_key *unused_file_key __attribute__((unused));
const struct verdict *unused_verdict __attribute__((unused));
const struct name_key *unused_name_key __attribute__((unused));
const struct fingerprint_key *unused_fingerprint_key __attribute__((unused));
const struct config *unused_config __attribute__((unused));
const struct fork_parent *unused_fork_parent __attribute__((unused));

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

/* The parts of the program by concern. One translation unit: the headers
 * use the types and constants above and each other's functions, in this
 * order. */
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

/* The cached verdict for the file's identity, or NULL when there is none.
 * A FUSE server chooses its files' inode numbers and times and may serve
 * other bytes to the next reader: a verdict on one of its files proves
 * nothing about the next exec of it. Such a first sight is flagged, and
 * user space never caches a verdict for it, so every exec of a FUSE file
 * comes up here without one; the benign path, most execs, reads nothing
 * more than the lookup. */
static __always_inline struct verdict *cached_verdict(struct inode *inode, struct file_key *key, int *untrusted)
{
	struct verdict *v = bpf_map_lookup_elem(&verdicts, key);
	*untrusted = !v && BPF_CORE_READ(inode, i_sb, s_magic) == FUSE_SUPER_MAGIC;
	return v;
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
		if (bpf_probe_read_kernel(magic, sizeof(magic), &bprm->buf) < 0 || magic[0] != 0x7f || magic[1] != 'E' ||
		    magic[2] != 'L' || magic[3] != 'F')
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
static __always_inline void judge_first_sight(struct file *file, struct linux_binprm *bprm, struct exec_decision *d)
{
	__u32 zero = 0;
	d->reasons |= REASON_UNKNOWN;
	struct name_key nk = {};
	const unsigned char *dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	__u32 dlen = BPF_CORE_READ(file, f_path.dentry, d_name.len);
	if (dlen < KEY_NAME_LEN) {
		bpf_probe_read_kernel_str(&nk.name, sizeof(nk.name), dname);
		struct verdict *nv = bpf_map_lookup_elem(&names, &nk);
		if (nv) {
			d->reasons |= REASON_NAME;
			d->tool_id = nv->tool_id;
			d->action = nv->action;
		}
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
static __always_inline void kill_if_told(struct exec_decision *d, struct task_struct *task, struct config *cfg)
{
	if (!d->tool_id || d->action != ACTION_KILL)
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (is_protected(tgid, task, cfg))
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

/* use_loop is a constant in each program: the bpf_loop scan of the loader's
 * environment, or the bounded one for kernels before 5.17. */
static __always_inline int handle_exec(struct task_struct *task, struct linux_binprm *bprm, const int use_loop)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct file_key key = {};
	__u32 zero = 0;

	count(COUNTER_EXECS);

	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ctime_ns = inode_ctime_ns(inode);

	struct exec_decision d = {.action = ACTION_ALERT};
	int untrusted;
	struct verdict *v = cached_verdict(inode, &key, &untrusted);
	if (v) {
		if (judge_cached(v, task, &d))
			return 0;
	} else {
		judge_first_sight(file, bprm, &d);
	}
	if (loader_decides(v, bprm, task, &d, use_loop))
		return 0;

	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (cfg && cfg->submit_all)
		d.reasons |= REASON_SUBMIT_ALL;
	if (v && v->kind == VERDICT_BENIGN && !(d.reasons & REASON_SUBMIT_ALL))
		return 0;

	if (untrusted)
		d.flags |= FLAG_UNTRUSTED_FS;
	kill_if_told(&d, task, cfg);

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RESERVE_FAILED);
		return 0;
	}
	count(COUNTER_SUBMITTED);

	d.flags |= fill_record(e, task, bprm, file, &key);
	d.flags |= fill_exec(e, task, bprm);
	e->reasons = d.reasons;
	e->flags = d.flags;
	e->tool_id = d.tool_id;
	bpf_ringbuf_submit(e, wakeup_flags(d.tool_id));
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
	struct inode *inode = file->f_inode;
	struct file_key key = {};
	key.ino = inode->i_ino;
	key.dev = inode->i_sb->s_dev;
	key.ctime_ns = inode_ctime_ns(inode);

	__u16 tool_id = 0;
	__u32 reasons = 0;
	struct verdict *v = bpf_map_lookup_elem(&verdicts, &key);
	if (v && v->kind == VERDICT_TOOL && v->action == ACTION_KILL) {
		tool_id = v->tool_id;
		reasons = REASON_VERDICT_TOOL;
	} else if (!v) {
		struct name_key nk = {};
		if (file->f_path.dentry->d_name.len < KEY_NAME_LEN) {
			bpf_probe_read_kernel_str(&nk.name, sizeof(nk.name), file->f_path.dentry->d_name.name);
			struct verdict *nv = bpf_map_lookup_elem(&names, &nk);
			if (nv && nv->action == ACTION_KILL) {
				tool_id = nv->tool_id;
				reasons = REASON_NAME;
			}
		}
	}
	if (!tool_id)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (is_protected(tgid, task, cfg))
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
static __always_inline int handle_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	__u32 slot = child_tgid & (FORK_SLOTS - 1);
	struct fork_parent *fp = bpf_map_lookup_elem(&forks, &slot);
	if (!fp)
		return 0;
	/* Written in place, racing only a reader of a pid that is being reused:
	 * the owner is written last so a half-written slot reads as foreign. */
	fp->child = 0;
	fp->ppid = BPF_CORE_READ(parent, tgid);
	fp->start_boottime_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	BPF_CORE_READ_INTO(&fp->comm, parent, group_leader, comm);
	fp->child = child_tgid;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return handle_fork(parent, child);
}

SEC("raw_tracepoint/sched_process_fork")
int sched_process_fork_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return handle_fork((struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1]);
}

#include "frame.h"
