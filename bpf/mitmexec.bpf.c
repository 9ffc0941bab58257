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
#define KEY_NAME_LEN 32    /* names map key; keep in sync with detect.KernelNameLen */
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
#define WAKEUP_GAP_NS (5 * 1000 * 1000)

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
};

/* ancestor flags, keep in sync with event.AncestorFromForkTable */
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
 * (pid 1 is refused outright). Filled by user space at start. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} protected SEC(".maps");

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
};

/* Scratch for the loader's environment, read only for loader execs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct env_buf);
} env_scratch SEC(".maps");

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

#define FUSE_SUPER_MAGIC 0x65735546

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

/* The inode's change time is part of the identity: rename, link, chmod and
 * any write change it, so a cached verdict never outlives the file it judged.
 * Kernels >= 6.11 split it into i_ctime_sec/i_ctime_nsec, 6.6-6.10 call it
 * __i_ctime, older ones i_ctime. */
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
		__u32 nsec = BPF_CORE_READ(inode, i_ctime_nsec);
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

/* Writes the path of (dentry, vfsmount) into buf as NUL-separated components,
 * leaf first ("ettercap\0bin\0usr\0"); user space reverses them. Walking up is
 * the only order the kernel offers, and forward-only writes keep the verifier
 * simple. bpf_d_path is not allowed in tp_btf/sched_process_exec. The path is
 * relative to the host's root (mounts are crossed through struct mount), so
 * a containerised process's path reads as the host sees it. */
/* A buffer of known size, so that the global functions below may write it. */
struct path_buf {
	char b[PATH_BUF_LEN];
};

/* Global (not static): the verifier checks it once, not once per caller
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
	if (read_cgroup((__u64)BPF_CORE_READ(task, cgroups, dfl_cgrp, kn), (struct path_buf *)e->cgroup, &e->cgroup_len))
		flags |= FLAG_CGROUP_TRUNCATED;
	read_ancestors(e, task, e->tgid);
	if (e->ancestors_n > 0)
		e->ppid = e->ancestors[0].tgid; /* the fork table's, when the parent exited */
	e->args_len = 0;
	e->args_total = 0;
	e->args_head_len = 0;
	return flags;
}

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
 * running it. Those execs stay in the kernel; any other loader exec goes up,
 * where its argv names the program it runs. The first 4 KiB of the
 * environment are searched with bpf_loop, which the verifier checks once
 * instead of once per byte. */
struct env_scan {
	__u32 n;
	__u32 matched; /* bytes of the name matched at the start of this string */
	int at_start;
	int found;
};

static long env_scan_step(__u32 i, void *ctx)
{
	static const char want[] = "LD_TRACE_LOADED_OBJECTS=";
	struct env_scan *st = ctx;
	__u32 zero = 0;
	if (i >= st->n)
		return 1;
	struct env_buf *env = bpf_map_lookup_elem(&env_scratch, &zero);
	if (!env)
		return 1;
	char c = env->b[i & (ENV_SCAN_LEN - 1)];
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

static __always_inline int loader_only_lists(struct task_struct *task)
{
	__u32 zero = 0;
	struct env_buf *env = bpf_map_lookup_elem(&env_scratch, &zero);
	if (!env)
		return 0;
	__u64 start = BPF_CORE_READ(task, mm, env_start);
	__u64 end = BPF_CORE_READ(task, mm, env_end);
	if (end <= start)
		return 0;
	__u32 n = end - start > ENV_SCAN_LEN ? ENV_SCAN_LEN : end - start;
	if (bpf_probe_read_user(env->b, n, (void *)start) < 0)
		return 0;
	struct env_scan st = {.n = n, .at_start = 1};
	bpf_loop(ENV_SCAN_LEN, env_scan_step, &st, 0);
	return st.found;
}

static __always_inline int handle_exec(struct task_struct *task, struct linux_binprm *bprm)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct file_key key = {};
	__u32 zero = 0;

	count(COUNTER_EXECS);

	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ctime_ns = inode_ctime_ns(inode);

	__u32 reasons = 0;
	__u16 tool_id = 0;
	__u8 action = ACTION_ALERT;

	struct verdict *v = bpf_map_lookup_elem(&verdicts, &key);
	/* A FUSE server chooses its files' inode numbers and times and may
	 * serve other bytes to the next reader: a benign verdict cached for one
	 * of its files proves nothing about the next exec of it. */
	int untrusted = 0;
	if (!v || v->kind == VERDICT_BENIGN)
		untrusted = BPF_CORE_READ(inode, i_sb, s_magic) == FUSE_SUPER_MAGIC;
	if (untrusted)
		v = NULL;
	if (v) {
		if (v->kind == VERDICT_TOOL) {
			reasons |= REASON_VERDICT_TOOL;
			tool_id = v->tool_id;
			action = v->action;
		} else if (v->kind == VERDICT_INTERPRETER) {
			reasons |= REASON_INTERPRETER;
		} else if (v->kind == VERDICT_SHELL) {
			if (shell_runs_nothing_new(task))
				return 0;
			reasons |= REASON_INTERPRETER;
		} else if (v->kind == VERDICT_LOADER) {
			if (loader_only_lists(task))
				return 0;
			reasons |= REASON_INTERPRETER;
		}
	} else {
		/* First sight of this identity: name, then content fingerprint. */
		reasons |= REASON_UNKNOWN;
		struct name_key nk = {};
		const unsigned char *dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
		__u32 dlen = BPF_CORE_READ(file, f_path.dentry, d_name.len);
		if (dlen < KEY_NAME_LEN) {
			bpf_probe_read_kernel_str(&nk.name, sizeof(nk.name), dname);
			struct verdict *nv = bpf_map_lookup_elem(&names, &nk);
			if (nv) {
				reasons |= REASON_NAME;
				tool_id = nv->tool_id;
				action = nv->action;
			}
		}
		if (!tool_id) {
			struct fingerprint_key *fk = bpf_map_lookup_elem(&fingerprint_scratch, &zero);
			if (fk) {
				bpf_probe_read_kernel(&fk->head, sizeof(fk->head), &bprm->buf);
				mask_elf_head(fk->head);
				struct verdict *fv = bpf_map_lookup_elem(&fingerprints, fk);
				if (fv) {
					reasons |= REASON_FINGERPRINT;
					tool_id = fv->tool_id;
					action = fv->action;
				}
			}
		}
	}

	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (cfg && cfg->submit_all)
		reasons |= REASON_SUBMIT_ALL;
	if (v && v->kind == VERDICT_BENIGN && !(reasons & REASON_SUBMIT_ALL))
		return 0;

	__u32 flags = untrusted ? FLAG_UNTRUSTED_FS : 0;
	/* Killing from here stops the program before its first own instruction:
	 * the new image is mapped but userspace has not been entered yet. */
	if (tool_id && action == ACTION_KILL) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		if (tgid > 1 && (!cfg || tgid != cfg->self_tgid) && !bpf_map_lookup_elem(&protected, &tgid)) {
			if (bpf_send_signal(9) == 0) {
				flags |= FLAG_KILLED;
				count(COUNTER_KILLS);
			} else {
				flags |= FLAG_KILL_FAILED;
			}
		}
	}

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_RESERVE_FAILED);
		return 0;
	}
	count(COUNTER_SUBMITTED);

	flags |= fill_record(e, task, bprm, file, &key);
	const char *filename = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	/* alloc_bprm points interp at filename; binfmt_script and binfmt_misc
	 * replace it, so a different pointer means a script or a misc binary. */
	if (filename != interp)
		flags |= FLAG_SCRIPT;
	long n = bpf_probe_read_kernel_str(&e->interp, sizeof(e->interp), interp);
	e->interp_len = n > 0 ? n : 0;

	/* argv lives in the new mm, just copied there by the exec; it is present. */
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
		    bpf_probe_read_user(&e->args[ARGS_HEAD], ARGS_LEN - 1 - ARGS_HEAD, (void *)(arg_end - (ARGS_LEN - 1 - ARGS_HEAD))) == 0) {
			e->args_head_len = ARGS_HEAD;
			e->args_len = ARGS_LEN - 1;
		}
	} else {
		__u32 len = total & ARGS_MASK;
		if (len > 0 && bpf_probe_read_user(&e->args, len, (void *)arg_start) == 0)
			e->args_len = len;
		e->args_head_len = e->args_len;
	}

	e->reasons = reasons;
	e->flags = flags;
	e->tool_id = tool_id;

	/* A known tool wakes the reader at once. Anything else wakes it at most
	 * once per WAKEUP_GAP_NS or when a backlog builds up: the wakeup is most
	 * of a record's cost (environment.md), so a burst shares one. */
	__u64 wake = BPF_RB_NO_WAKEUP;
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&last_wakeup, &zero);
	if (tool_id || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BYTES ||
	    (last && now - *last > WAKEUP_GAP_NS))
		wake = BPF_RB_FORCE_WAKEUP;
	if (wake == BPF_RB_FORCE_WAKEUP && last)
		*last = now; /* racy across CPUs on purpose: a spare wakeup is harmless */
	bpf_ringbuf_submit(e, wake);
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
	if (tgid <= 1 || (cfg && tgid == cfg->self_tgid) || bpf_map_lookup_elem(&protected, &tgid))
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

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(task, bprm);
}

/* Fallback for kernels whose tp_btf cannot load: the same arguments, raw. */
SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return handle_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2]);
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
