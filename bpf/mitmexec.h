// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The ABI between the BPF programs and user space, in one place: the
 * records' layouts, their flags and reasons, the verdicts user space writes
 * back, the counters, and the limits that size them. Enums, not macros, so
 * that bpf2go generates them for Go (-type) and internal/tracer's tests
 * check the hand-written decoders (internal/event, internal/wire) against
 * them. Little endian, naturally aligned. */

#ifndef MITMEXEC_H
#define MITMEXEC_H

#include "vmlinux.h"

enum limit {
	COMM_LEN = 16,
	NAME_LEN = 64,	    /* dentry name of the loaded file */
	KEY_NAME_LEN = 32,  /* names map key; Tracer.PutName takes its bound from the generated struct */
	STR_LEN = 256,	    /* bprm->filename, bprm->interp */
	PATH_BUF_LEN = 768, /* reversed path components, see read_path */
	ARGS_LEN = 4096,
	ARGS_HEAD = 2048, /* with FLAG_ARGS_ELIDED: bytes from argv's start, the rest from its end */
	HEAD_LEN = 256,	  /* all of bprm->buf (BINPRM_BUF_SIZE): the structural fingerprint */
	ANCESTORS = 8,
	FRAME_CAP = 256, /* bytes of a frame kept: room for IPv6 extension headers before an NA */
	DEVICE_LEN = 16,
};

/* What user space tells the kernel about a file identity, name or fingerprint. */
enum verdict_kind {
	VERDICT_BENIGN = 1,
	VERDICT_TOOL = 2,
	VERDICT_INTERPRETER = 3,
	VERDICT_SHELL = 4,  /* an interpreter whose -c and bare runs are left to the execs they make */
	VERDICT_LOADER = 5, /* the dynamic loader: ld.so PROGRAM runs PROGRAM, unless it only lists its libraries */
};

enum verdict_action {
	ACTION_ALERT = 0,
	ACTION_KILL = 1,
};

/* Why the kernel sent an exec record (bits). */
enum exec_reason {
	REASON_VERDICT_TOOL = 1 << 0,
	REASON_NAME = 1 << 1,
	REASON_FINGERPRINT = 1 << 2,
	REASON_INTERPRETER = 1 << 3,
	REASON_UNKNOWN = 1 << 4,
	REASON_SUBMIT_ALL = 1 << 5,
};

/* Exec record flags (bits). */
enum exec_flag {
	FLAG_ARGS_TRUNCATED = 1 << 0,
	FLAG_SCRIPT = 1 << 1,
	FLAG_INTERACTIVE = 1 << 2,
	FLAG_KILLED = 1 << 3,
	FLAG_KILL_FAILED = 1 << 4,
	FLAG_EXE_PATH_TRUNCATED = 1 << 5,
	FLAG_CWD_TRUNCATED = 1 << 6,
	FLAG_CGROUP_TRUNCATED = 1 << 7,
	FLAG_DENIED = 1 << 8,	     /* refused by the LSM hook: the exec never happened */
	FLAG_ARGS_ELIDED = 1 << 9,   /* args holds argv's first ARGS_HEAD bytes, then its last ones */
	FLAG_UNTRUSTED_FS = 1 << 10, /* the file is on FUSE: its identity says nothing about its bytes */
	FLAG_LOADER_LISTS = 1 << 11, /* LD_TRACE_LOADED_OBJECTS is set: a loader would only list libraries */
};

/* The exec tracer's counters (per-CPU array index). */
enum counter {
	COUNTER_EXECS = 0,
	COUNTER_SUBMITTED = 1,
	COUNTER_RESERVE_FAILED = 2,
	COUNTER_KILLS = 3,
	COUNTER_MAX = 8,
};

enum ancestor_flag {
	ANCESTOR_FROM_FORK_TABLE = 1,
};

/* Frame record flags (bits). */
enum frame_flag {
	FRAME_LINK_HEADER = 1 << 0, /* data starts with the Ethernet header */
	FRAME_TX_RING = 1 << 1,	    /* read from the socket's TX ring */
	FRAME_QDISC_BYPASS = 1 << 2,
	FRAME_DEVICE_NAME = 1 << 3, /* SOCK_PACKET: device names the interface, ifindex is 0 */
	FRAME_DENIED = 1 << 4,	    /* refused by the LSM hook: it never left */
	FRAME_BEFORE_SEND = 1 << 5, /* read by the LSM hook, before the send */
	FRAME_KERNEL_LIE = 1 << 6,  /* the kernel's own check found the claim a lie (see frame_lies) */
};

/* The behaviour tier's counters (per-CPU array index). */
enum frame_counter {
	FCOUNTER_SENDS = 0,	/* packet-socket sends seen */
	FCOUNTER_SUBMITTED = 1, /* frames sent up */
	FCOUNTER_RESERVE_FAILED = 2,
	FCOUNTER_UNREADABLE = 3, /* a packet-socket send whose frame could not be read */
	FCOUNTER_DENIED = 4,	 /* frames the LSM hook refused */
	FCOUNTER_MAX = 5,
};

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
	__u32 submit_all;	 /* debug: every exec goes up */
	__u32 frame_deny;	 /* block mode: lsm/socket_sendmsg refuses lying frames */
	__u32 frame_lsm_reports; /* lsm/socket_sendmsg reports every frame (no tracepoint beside it) */
};

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
	__u32 args_len;	    /* bytes valid in args */
	__u32 args_total;   /* bytes of argv in the process */
	__u16 tool_id;	    /* from the kernel verdict, 0 when none */
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

/* A frame sent through a packet socket, and its sender. */
struct frame_event {
	__u64 ktime_boot_ns;
	__u64 start_boottime_ns; /* the sender's start: pins its pid */
	__u64 exec_start_boottime_ns;
	__u64 exe_ino;
	__u64 exe_ctime_ns;
	__u32 exe_dev;
	__u32 tgid;
	__u32 tid;
	__u32 exec_tgid; /* the process whose exec started the program the sender runs */
	__u32 uid;
	__u32 gid;
	__u32 netns;   /* inode of the socket's network namespace */
	__s32 ifindex; /* from the send's sockaddr_ll, else the socket's binding; 0 when neither */
	__u32 sent;    /* what the protocol's sendmsg returned */
	__u16 sk_type;
	__u16 protocol; /* network order: the ethertype a dgram socket sends, from sockaddr_ll or the binding */
	__u16 len;	/* bytes valid in data */
	__u16 flags;
	char comm[COMM_LEN];
	char device[DEVICE_LEN];
	__u8 data[FRAME_CAP];
};

/* Executables an allow entry names by path (device and inode): block mode
 * never refuses their frames in the kernel; user space judges them. */
struct frame_sender_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

#endif
