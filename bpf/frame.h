// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The behaviour tier: frames user space sends through a packet socket.
 *
 * A LAN man in the middle must put a lie on the wire (an ARP or neighbour
 * advertisement claiming someone else's address, a rogue router
 * advertisement or DHCPv6 answer), and on Linux user space can only forge a
 * link-layer frame through a packet socket (AF_PACKET raw or dgram, and the
 * old SOCK_PACKET, which socket(AF_INET, SOCK_PACKET) also creates). Every
 * such send goes through sock_sendmsg_nosec(), which fires sock_send_length
 * in the sender's context after the protocol's sendmsg returned: packet_snd,
 * tpacket_snd (PACKET_TX_RING) and packet_sendmsg_spkt alike, whatever
 * po->xmit is (PACKET_QDISC_BYPASS skips the qdisc, not this). Forwarded and
 * kernel-made traffic never passes here, and a send on any other socket
 * family costs one load and a compare.
 *
 * The tracepoint does not carry the message, so the frame is read from the
 * syscall's own arguments (the task's user registers at syscall entry): the
 * buffer is the one the kernel just copied from, still mapped, in the
 * sender's address space. A TX ring's frames are read from the ring. The
 * kernel keeps only frames that can carry a claim and sends the first bytes
 * up; user space decides whether the claim is a lie. */

#ifndef MITMEXEC_FRAME_H
#define MITMEXEC_FRAME_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "file.h"
#include "maps.h"
#include "frame_read.h"
#include "frame_lies.h"

#define TX_RING_FRAMES 8 /* frames read from a TX ring per send */
#define MMSG_FRAMES    8 /* messages read from one sendmmsg */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FCOUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} frame_counters SEC(".maps");

/* One frame_event per CPU to build in: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frame_event);
} frame_scratch SEC(".maps");

struct ring_layout {
	__u32 status_off, status_len, len_off, mac_off, net_off, data_off;
	__s32 has_off;
	__u32 pad;
};

/* What a bpf_loop over a TX ring's frames or a sendmmsg's messages needs.
 * It lives in a map value, not on the stack: verifiers before Linux 6.7
 * walk a bpf_loop callback once from the first call's state and drop the
 * branches that state cannot take (see struct env_buf). */
struct frame_loop {
	__u64 po, net; /* the socket and its namespace, as numbers */
	__u64 vec;     /* sendmmsg's struct mmsghdr array (user memory) */
	struct ring_layout l;
	__u32 head, frame_max, vlen;
	__s32 refused, read;
	__s32 ifindex0; /* the socket's binding, restored before each frame */
	__u16 protocol0, flags0;
	__u32 lsm; /* judge before the send (lsm/socket_sendmsg) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frame_loop);
} frame_loop_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct frame_sender_key);
	__type(value, __u8);
} frame_allowed SEC(".maps");

static __always_inline void frame_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&frame_counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline void fill_sender(struct frame_event *e);

/* The kernel's verdict travels with the frame: user space, which reads the
 * sender's namespace to judge, still has it when the sender and its
 * namespace are gone by then. The sender is described only for a frame
 * that goes up: a packet-socket send that claims nothing costs the read
 * and the filter. */
static __always_inline void submit_frame(struct frame_event *e, struct packet_sock *po, struct net *net)
{
	if (!frame_can_claim(e))
		return;
	fill_sender(e);
	if (frame_lies(e, po, net))
		e->flags |= FRAME_KERNEL_LIE;
	if (bpf_ringbuf_output(&frames, e, sizeof(*e), 0)) {
		frame_count(FCOUNTER_RESERVE_FAILED);
		return;
	}
	frame_count(FCOUNTER_SUBMITTED);
}

struct packet_sock___old {
	unsigned int tp_tx_has_off : 1;
} __attribute__((preserve_access_index));

/* The layout of a TX ring frame's header, per TPACKET version: where the
 * status, the length and (with PACKET_TX_HAS_OFF) the link and network
 * offsets are, and where the data starts. */

static __always_inline void ring_layout_of(struct packet_sock *po, struct ring_layout *l)
{
	int version = BPF_CORE_READ(po, tp_version);
	__u32 hdrlen = BPF_CORE_READ(po, tp_hdrlen);
	if (version == 0) { /* TPACKET_V1: unsigned long tp_status */
		l->status_off = 0, l->status_len = 8, l->len_off = 8, l->mac_off = 16, l->net_off = 18;
	} else if (version == 1) {
		l->status_off = 0, l->status_len = 4, l->len_off = 4, l->mac_off = 12, l->net_off = 14;
	} else {
		l->status_off = 20, l->status_len = 4, l->len_off = 16, l->mac_off = 24, l->net_off = 26;
	}
	l->data_off = hdrlen >= 20 ? hdrlen - 20 : 0; /* tp_hdrlen - sizeof(struct sockaddr_ll) */
	l->has_off = 0;
	if (bpf_core_field_exists(po->flags)) {
		l->has_off = BPF_CORE_READ(po, flags) & (1UL << 2); /* PACKET_SOCK_TX_HAS_OFF */
	} else {
		struct packet_sock___old *old = (void *)po;
		if (bpf_core_field_exists(old->tp_tx_has_off))
			l->has_off = BPF_CORE_READ_BITFIELD_PROBED(old, tp_tx_has_off);
	}
}

/* Reads ring frame idx into e; returns its status, or -1 when unreadable. */
static __always_inline long read_ring_frame(struct frame_event *e, struct packet_sock *po, struct ring_layout *l,
					    __u32 idx)
{
	__u32 per_block = BPF_CORE_READ(po, tx_ring.frames_per_block);
	__u32 frame_size = BPF_CORE_READ(po, tx_ring.frame_size);
	struct pgv *pg_vec = BPF_CORE_READ(po, tx_ring.pg_vec);
	if (!pg_vec || per_block == 0)
		return -1;
	char *block = NULL;
	bpf_probe_read_kernel(&block, sizeof(block), &pg_vec[idx / per_block].buffer);
	if (!block)
		return -1;
	char *frame = block + (idx % per_block) * frame_size;
	__u64 status = 0;
	bpf_probe_read_kernel(&status, l->status_len == 8 ? 8 : 4, frame + l->status_off);
	__u32 tp_len = 0, data = l->data_off;
	bpf_probe_read_kernel(&tp_len, sizeof(tp_len), frame + l->len_off);
	if (l->has_off) {
		__u16 o = 0;
		bpf_probe_read_kernel(&o, sizeof(o), frame + (e->sk_type == SOCK_DGRAM_ ? l->net_off : l->mac_off));
		data = o;
	}
	__u32 n = tp_len > FRAME_CAP ? FRAME_CAP : tp_len;
	if (n == 0 || data >= frame_size || bpf_probe_read_kernel(e->data, n, frame + data))
		return -1;
	e->len = n;
	return (long)status;
}

static __always_inline void restore_frame(struct frame_event *e, struct frame_loop *st)
{
	e->ifindex = st->ifindex0;
	e->protocol = st->protocol0;
	e->flags = st->flags0;
	e->device[0] = 0;
}

static __always_inline int judge_before_send(struct frame_event *e, struct packet_sock *po, struct net *net,
					     struct config *cfg);

/* One frame of a TX ring. After the send (the tracepoint) tpacket_snd has
 * advanced tx_ring.head past what it sent and set their status back to
 * available, but their bytes stay where user space wrote them: the frames
 * before head are read back, newest first, and a frame already seen folds
 * in user space. Before the send (the LSM hook) the frames from head on
 * that user space marked TP_STATUS_SEND_REQUEST are the ones to go. */
static long ring_step(__u32 i, void *unused)
{
	__u32 zero = 0;
	struct frame_event *e = bpf_map_lookup_elem(&frame_scratch, &zero);
	struct frame_loop *st = bpf_map_lookup_elem(&frame_loop_state, &zero);
	if (!e || !st)
		return 1;
	struct packet_sock *po = (void *)st->po;
	struct net *net = (void *)st->net;
	__u32 idx;
	if (st->lsm)
		idx = st->head + i > st->frame_max ? st->head + i - st->frame_max - 1 : st->head + i;
	else
		idx = st->head >= i + 1 ? st->head - i - 1 : st->frame_max + 1 - (i + 1 - st->head);
	if (idx > st->frame_max)
		return 1;
	restore_frame(e, st);
	long status = read_ring_frame(e, po, &st->l, idx);
	if (status < 0)
		return st->lsm ? 1 : 0;
	if (st->lsm) {
		if (!(status & 1)) /* TP_STATUS_SEND_REQUEST */
			return 1;
		st->refused |= judge_before_send(e, po, net, bpf_map_lookup_elem(&config_map, &zero));
		return 0;
	}
	submit_frame(e, po, net);
	return 0;
}

static __always_inline struct frame_loop *frame_loop_of(struct frame_event *e, struct packet_sock *po, struct net *net,
							int lsm)
{
	__u32 zero = 0;
	struct frame_loop *st = bpf_map_lookup_elem(&frame_loop_state, &zero);
	if (!st)
		return NULL;
	st->po = (__u64)po;
	st->net = (__u64)net;
	st->refused = 0;
	st->read = -1;
	st->lsm = lsm;
	st->ifindex0 = e->ifindex;
	st->protocol0 = e->protocol;
	st->flags0 = e->flags;
	return st;
}

/* Returns whether a frame was refused (the LSM hook). */
static __always_inline int ring_frames(struct frame_event *e, struct packet_sock *po, struct net *net, int lsm)
{
	e->flags |= FRAME_TX_RING;
	struct frame_loop *st = frame_loop_of(e, po, net, lsm);
	if (!st)
		return 0;
	st->frame_max = BPF_CORE_READ(po, tx_ring.frame_max);
	st->head = BPF_CORE_READ(po, tx_ring.head);
	ring_layout_of(po, &st->l);
	bpf_loop(TX_RING_FRAMES, ring_step, NULL, 0);
	return st->refused;
}

/* One message of a sendmmsg (struct mmsghdr: a msghdr and the message's
 * length, 64 bytes). */
static long mmsg_step(__u32 i, void *unused)
{
	__u32 zero = 0;
	struct frame_event *e = bpf_map_lookup_elem(&frame_scratch, &zero);
	struct frame_loop *st = bpf_map_lookup_elem(&frame_loop_state, &zero);
	if (!e || !st || i >= st->vlen)
		return 1;
	struct user_msghdr_ m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(st->vec + i * 64)) || m.iovlen == 0)
		return 0;
	restore_frame(e, st);
	read_dest(e, m.name, m.namelen, 1);
	if (read_iov(e, m.iov, m.iovlen))
		return 0;
	st->read = 0;
	if (st->lsm) {
		__u32 zero = 0;
		st->refused |=
			judge_before_send(e, (void *)st->po, (void *)st->net, bpf_map_lookup_elem(&config_map, &zero));
		return 0;
	}
	submit_frame(e, (void *)st->po, (void *)st->net);
	return 0;
}

/* Reads (and, under the LSM, judges) the messages of a sendmmsg. */
static __always_inline int mmsg_frames(struct frame_event *e, struct packet_sock *po, struct net *net, void *vec,
				       __u64 vlen, int lsm)
{
	if (vlen > MMSG_FRAMES)
		frame_count(FCOUNTER_UNREADABLE);
	struct frame_loop *st = frame_loop_of(e, po, net, lsm);
	if (!st)
		return -1;
	st->vec = (__u64)vec;
	st->vlen = vlen > MMSG_FRAMES ? MMSG_FRAMES : vlen;
	bpf_loop(MMSG_FRAMES, mmsg_step, NULL, 0);
	return lsm ? st->refused : (st->read < 0 ? -1 : 1);
}

/* The destination a send call names (sendto's address, sendmsg's name). */
static __always_inline void read_send_dest(struct frame_event *e, void *regs)
{
	long nr = syscall_nr(regs);
	if (nr == NR_SENDTO) {
		read_dest(e, (void *)syscall_arg(regs, 5), (int)syscall_arg(regs, 6), 1);
	} else if (nr == NR_SENDMSG) {
		struct user_msghdr_ m = {};
		if (!bpf_probe_read_user(&m, sizeof(m), (void *)syscall_arg(regs, 2)))
			read_dest(e, m.name, m.namelen, 1);
	}
}

/* Reads the frame(s) a send call carried from its arguments. */
static __always_inline int read_send(struct frame_event *e, void *regs, struct packet_sock *po, struct net *net)
{
	long nr = syscall_nr(regs);
	void *a1 = (void *)syscall_arg(regs, 2);
	__u64 a2 = syscall_arg(regs, 3);
	if (nr == NR_WRITE)
		return read_frame(e, a1, a2);
	if (nr == NR_SENDTO) {
		read_dest(e, (void *)syscall_arg(regs, 5), (int)syscall_arg(regs, 6), 1);
		return read_frame(e, a1, a2);
	}
	if (nr == NR_WRITEV)
		return a2 ? read_iov(e, a1, a2) : -1;
	if (nr == NR_SENDMSG) {
		struct user_msghdr_ m = {};
		if (bpf_probe_read_user(&m, sizeof(m), a1) || m.iovlen == 0)
			return -1;
		read_dest(e, m.name, m.namelen, 1);
		return read_iov(e, m.iov, m.iovlen);
	}
	if (nr == NR_SENDMMSG) {
		/* Each message fires the tracepoint once and none says which
		 * it is: every firing reads the first MMSG_FRAMES messages, and
		 * user space folds the repeats; messages past them are counted
		 * unread. */
		return mmsg_frames(e, po, net, a1, a2, 0); /* 1: submitted already */
	}
	return -1;
}

/* A process that forked without exec'ing runs its parent's program: the
 * lie is that exec's. exec() bumps self_exec_id and fork copies it and
 * records the parent's in parent_exec_id, so the two are equal exactly in
 * a process that has not exec'd since its fork. The walk stops at a
 * parent running another file (a reparented orphan's new parent). */
#define FORK_ONLY_DEPTH 4
static __always_inline void find_exec(struct frame_event *e, struct task_struct *task)
{
	struct task_struct *t = BPF_CORE_READ(task, group_leader);
	for (int i = 0; i < FORK_ONLY_DEPTH; i++) {
		if (BPF_CORE_READ(t, self_exec_id) != BPF_CORE_READ(t, parent_exec_id))
			break;
		struct task_struct *p = BPF_CORE_READ(t, real_parent, group_leader);
		if (!p || BPF_CORE_READ(p, tgid) <= 1 ||
		    BPF_CORE_READ(p, mm, exe_file, f_inode) != BPF_CORE_READ(t, mm, exe_file, f_inode))
			break;
		t = p;
	}
	e->exec_tgid = BPF_CORE_READ(t, tgid);
	e->exec_start_boottime_ns = BPF_CORE_READ(t, start_boottime);
}

static __always_inline void fill_sender(struct frame_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 ugid = bpf_get_current_uid_gid();
	e->ktime_boot_ns = bpf_ktime_get_boot_ns();
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	e->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct inode *inode = BPF_CORE_READ(exe, f_inode);
	e->exe_ino = BPF_CORE_READ(inode, i_ino);
	e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->exe_ctime_ns = inode ? inode_ctime_ns(inode, 0) : 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	find_exec(e, task);
}

static __always_inline int handle_frame_sent(struct sock *sk, int ret)
{
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_PACKET_ || ret <= 0)
		return 0;
	frame_count(FCOUNTER_SENDS);
	__u32 zero = 0;
	struct frame_event *e = bpf_map_lookup_elem(&frame_scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	struct task_struct *task = bpf_get_current_task_btf();
	struct packet_sock *po = (struct packet_sock *)sk;
	e->sent = ret;
	e->sk_type = BPF_CORE_READ(sk, sk_type);
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	e->netns = BPF_CORE_READ(net, ns.inum);
	e->ifindex = BPF_CORE_READ(po, ifindex);
	e->protocol = BPF_CORE_READ(po, num);
	if (e->sk_type != SOCK_DGRAM_)
		e->flags |= FRAME_LINK_HEADER;
	if (bpf_core_field_exists(po->flags) && (BPF_CORE_READ(po, flags) & (1UL << 6))) /* PACKET_SOCK_QDISC_BYPASS */
		e->flags |= FRAME_QDISC_BYPASS;
	void *regs = (void *)bpf_task_pt_regs(task);
	if (BPF_CORE_READ(po, tx_ring.pg_vec)) {
		if (regs)
			read_send_dest(e, regs); /* tpacket_snd sends where the call's address says */
		ring_frames(e, po, net, 0);
		return 0;
	}
	int read = regs ? read_send(e, regs, po, net) : -1;
	if (read < 0) {
		frame_count(FCOUNTER_UNREADABLE);
		return 0;
	}
	if (read == 0)
		submit_frame(e, po, net);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(frame_sent, struct sock *sk, int ret, int flags)
{
	return handle_frame_sent(sk, ret);
}

/* ---- Block mode under the BPF LSM: the frame is judged before it leaves.
 *
 * security_socket_sendmsg() runs in sock_sendmsg() before the protocol's
 * sendmsg, with the message itself: the frame is read from its iterator
 * (user memory, a single buffer or the first of an iovec) and its
 * destination from msg_name (already copied into the kernel). The kernel
 * refuses what user space would call a lie and can decide alone: an ARP
 * claim for an IPv4 address the sending device does not hold, an NA that
 * overrides or is unsolicited for an IPv6 address it does not hold, and
 * any router advertisement, redirect or DHCPv6 answer. Where the device
 * cannot be found the frame passes and user space judges and kills. A
 * bridge or bond port is judged by its own addresses only. */

/* Sends e up if it can carry a claim; returns whether it is to be refused. */
static __always_inline int judge_before_send(struct frame_event *e, struct packet_sock *po, struct net *net,
					     struct config *cfg)
{
	if (!frame_can_claim(e))
		return 0;
	int lies = frame_lies(e, po, net);
	int refuse = cfg && cfg->frame_deny && lies;
	if (refuse) {
		fill_sender(e);
		struct frame_sender_key k = {.ino = e->exe_ino, .dev = e->exe_dev};
		if (bpf_map_lookup_elem(&frame_allowed, &k))
			refuse = 0; /* an allowed sender: user space judges it */
	}
	if (lies)
		e->flags |= FRAME_KERNEL_LIE;
	if (refuse)
		e->flags |= FRAME_DENIED;
	/* Where the tracepoint also runs, it reports what was sent (every
	 * message of a sendmmsg, which asks the LSM only once per address,
	 * and bytes a thread rewrote after this read); this hook reports only
	 * what it refused, which never reaches the tracepoint. */
	if (!refuse && !(cfg && cfg->frame_lsm_reports))
		return 0;
	fill_sender(e);
	if (bpf_ringbuf_output(&frames, e, sizeof(*e), 0))
		frame_count(FCOUNTER_RESERVE_FAILED);
	else
		frame_count(FCOUNTER_SUBMITTED);
	if (refuse)
		frame_count(FCOUNTER_DENIED);
	return refuse;
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(frame_check, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret)
		return ret;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_PACKET_)
		return 0;
	__u32 zero = 0;
	struct frame_event *e = bpf_map_lookup_elem(&frame_scratch, &zero);
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!e)
		return 0;
	if (cfg && cfg->frame_lsm_reports)
		frame_count(FCOUNTER_SENDS); /* else the tracepoint counts them */
	__builtin_memset(e, 0, sizeof(*e));
	struct packet_sock *po = (struct packet_sock *)sk;
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	e->sent = size;
	e->flags = FRAME_BEFORE_SEND;
	e->sk_type = BPF_CORE_READ(sk, sk_type);
	e->netns = BPF_CORE_READ(net, ns.inum);
	e->ifindex = BPF_CORE_READ(po, ifindex);
	e->protocol = BPF_CORE_READ(po, num);
	if (e->sk_type != SOCK_DGRAM_)
		e->flags |= FRAME_LINK_HEADER;
	read_dest(e, BPF_CORE_READ(msg, msg_name), BPF_CORE_READ(msg, msg_namelen), 0);
	if (BPF_CORE_READ(po, tx_ring.pg_vec))
		return ring_frames(e, po, net, 1) ? -1 /* -EPERM */ : 0;
	/* sendmmsg asks this hook only for a message whose address differs
	 * from the one before: the first call judges the whole vector (a lie
	 * anywhere in it refuses the call) */
	void *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (regs && syscall_nr(regs) == NR_SENDMMSG)
		return mmsg_frames(e, po, net, (void *)syscall_arg(regs, 2), syscall_arg(regs, 3), 1) ? -1 /* -EPERM */
												      : 0;
	if (read_iter(e, msg)) {
		if (cfg && cfg->frame_lsm_reports)
			frame_count(FCOUNTER_UNREADABLE);
		return 0;
	}
	return judge_before_send(e, po, net, cfg) ? -1 /* -EPERM */ : 0;
}

#endif
