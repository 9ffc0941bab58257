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

#include <bpf/bpf_endian.h>

#define FRAME_CAP 128
#define DEVICE_LEN 16
#define TX_RING_FRAMES 4 /* frames read back from a TX ring per send */
#define MMSG_FRAMES 4    /* messages read from one sendmmsg */

#define ETH_HLEN_ 14
#define ETH_P_ARP_ 0x0806
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_UDP_ 17
#define SOCK_DGRAM_ 2
#define SOCK_PACKET_ 10
#define AF_PACKET_ 17

/* frame flags (bits), keep in sync with wire.Flag* */
#define FRAME_LINK_HEADER (1 << 0) /* data starts with the Ethernet header */
#define FRAME_TX_RING (1 << 1)     /* read from the socket's TX ring */
#define FRAME_QDISC_BYPASS (1 << 2)
#define FRAME_DEVICE_NAME (1 << 3) /* SOCK_PACKET: device names the interface, ifindex is 0 */

/* frame counters (per-CPU array index), keep in sync with wire.Counter* */
#define FCOUNTER_SENDS 0       /* packet-socket sends seen */
#define FCOUNTER_SUBMITTED 1   /* frames sent up */
#define FCOUNTER_RESERVE_FAILED 2
#define FCOUNTER_UNREADABLE 3  /* a packet-socket send whose frame could not be read */
#define FCOUNTER_MAX 4

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
	__u16 len;      /* bytes valid in data */
	__u16 flags;
	char comm[COMM_LEN];
	char device[DEVICE_LEN];
	__u8 data[FRAME_CAP];
};
const struct frame_event *unused_frame_event __attribute__((unused));

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

static __always_inline void frame_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&frame_counters, &idx);
	if (c)
		*c += 1;
}

/* Syscall numbers of the send calls and the registers holding a syscall's
 * arguments at entry, per architecture (compat syscalls of 32-bit tasks
 * are not read: their frames count as unreadable). Own flavours of
 * pt_regs, relocated by CO-RE: vmlinux.h describes one architecture. On
 * arm64 x1..x5 keep the arguments until the syscall returns. */
struct pt_regs___mx_x86 {
	unsigned long si, dx, r10, r8, r9, orig_ax;
} __attribute__((preserve_access_index));

struct pt_regs___mx_arm64 {
	__u64 regs[31];
	__s32 syscallno;
} __attribute__((preserve_access_index));

#if defined(__TARGET_ARCH_arm64)
#define NR_WRITE 64
#define NR_WRITEV 66
#define NR_SENDTO 206
#define NR_SENDMSG 211
#define NR_SENDMMSG 269
static __always_inline long syscall_nr(void *regs)
{
	return BPF_CORE_READ((struct pt_regs___mx_arm64 *)regs, syscallno);
}
/* argument n (1-based), n > 1 */
static __always_inline __u64 syscall_arg(void *regs, int n)
{
	struct pt_regs___mx_arm64 *r = regs;
	switch (n) {
	case 2: return BPF_CORE_READ(r, regs[1]);
	case 3: return BPF_CORE_READ(r, regs[2]);
	case 5: return BPF_CORE_READ(r, regs[4]);
	default: return BPF_CORE_READ(r, regs[5]);
	}
}
#else
#define NR_WRITE 1
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_SENDMMSG 307
static __always_inline long syscall_nr(void *regs)
{
	return BPF_CORE_READ((struct pt_regs___mx_x86 *)regs, orig_ax);
}
static __always_inline __u64 syscall_arg(void *regs, int n)
{
	struct pt_regs___mx_x86 *r = regs;
	switch (n) {
	case 2: return BPF_CORE_READ(r, si);
	case 3: return BPF_CORE_READ(r, dx);
	case 5: return BPF_CORE_READ(r, r8);
	default: return BPF_CORE_READ(r, r9);
	}
}
#endif

struct user_iovec_ {
	void *base;
	__u64 len;
};

struct user_msghdr_ {
	void *name;
	int namelen;
	int pad;
	struct user_iovec_ *iov;
	__u64 iovlen;
};

/* sockaddr_ll: family, protocol (network order), ifindex; sockaddr_pkt
 * (SOCK_PACKET): family, then the device's name in 14 bytes. */
static __always_inline void read_dest(struct frame_event *e, void *name, int namelen)
{
	if (!name || namelen < 4)
		return;
	if (e->sk_type == SOCK_PACKET_) {
		bpf_probe_read_user(e->device, 14, name + 2);
		e->device[14] = 0;
		e->flags |= FRAME_DEVICE_NAME;
		return;
	}
	__u16 proto = 0;
	if (!bpf_probe_read_user(&proto, sizeof(proto), name + 2) && proto)
		e->protocol = proto;
	if (namelen >= 8) {
		__s32 ifindex = 0;
		if (!bpf_probe_read_user(&ifindex, sizeof(ifindex), name + 4) && ifindex > 0)
			e->ifindex = ifindex;
	}
}

static __always_inline int read_frame(struct frame_event *e, const void *buf, __u64 len)
{
	if (!buf || len == 0)
		return -1;
	__u32 n = len > FRAME_CAP ? FRAME_CAP : (__u32)len;
	if (bpf_probe_read_user(e->data, n, buf))
		return -1;
	e->len = n;
	return 0;
}

static __always_inline __u16 be16_at(const __u8 *d, __u32 off)
{
	return ((__u16)d[off] << 8) | d[off + 1];
}

/* Whether a frame can carry a claim about an address: ARP; ICMPv6 router
 * advertisement, neighbour advertisement, redirect; DHCPv6 advertise or
 * reply (UDP to port 546). Up to two VLAN tags are skipped; IPv6 extension
 * headers are not (neighbour discovery is never sent with them, RFC 4861
 * requires hop limit 255 and the receiver drops what it cannot validate). */
static __always_inline int frame_can_claim(struct frame_event *e)
{
	__u16 proto = bpf_ntohs(e->protocol);
	__u32 off = 0;
	if (e->flags & FRAME_LINK_HEADER) {
		if (e->len < ETH_HLEN_)
			return 0;
		proto = be16_at(e->data, 12);
		off = ETH_HLEN_;
		if (proto == ETH_P_8021Q_ || proto == ETH_P_8021AD_) {
			proto = be16_at(e->data, 16);
			off = 18;
			if (proto == ETH_P_8021Q_) {
				proto = be16_at(e->data, 20);
				off = 22;
			}
		}
	}
	if (proto == ETH_P_ARP_)
		return e->len >= off + 8;
	if (proto != ETH_P_IPV6_ || e->len < off + 44)
		return 0;
	__u8 nh = e->data[(off + 6) & (FRAME_CAP - 1)];
	if (nh == IPPROTO_ICMPV6_) {
		__u8 type = e->data[(off + 40) & (FRAME_CAP - 1)];
		return type == 134 || type == 136 || type == 137;
	}
	if (nh == IPPROTO_UDP_ && e->len >= off + 49) {
		__u16 dport = be16_at(e->data, (off + 42) & (FRAME_CAP - 1 - 1));
		__u8 msg = e->data[(off + 48) & (FRAME_CAP - 1)];
		return dport == 546 && (msg == 2 || msg == 7);
	}
	return 0;
}

static __always_inline void submit_frame(struct frame_event *e)
{
	if (!frame_can_claim(e))
		return;
	if (bpf_ringbuf_output(&frames, e, sizeof(*e), 0)) {
		frame_count(FCOUNTER_RESERVE_FAILED);
		return;
	}
	frame_count(FCOUNTER_SUBMITTED);
}

/* The frames of the TX ring tpacket_snd just sent: it advanced
 * tx_ring.head past them and set their status back to available, but their
 * bytes stay where user space wrote them. The frames before head are read
 * back, newest first; a frame already seen folds in user space. */
static __always_inline void read_tx_ring(struct frame_event *e, struct packet_sock *po)
{
	__u32 frame_max = BPF_CORE_READ(po, tx_ring.frame_max);
	__u32 per_block = BPF_CORE_READ(po, tx_ring.frames_per_block);
	__u32 frame_size = BPF_CORE_READ(po, tx_ring.frame_size);
	__u32 head = BPF_CORE_READ(po, tx_ring.head);
	__u32 hdrlen = BPF_CORE_READ(po, tp_hdrlen);
	int version = BPF_CORE_READ(po, tp_version);
	struct pgv *pg_vec = BPF_CORE_READ(po, tx_ring.pg_vec);
	/* tp_len's offset in tpacket_hdr, tpacket2_hdr, tpacket3_hdr */
	__u32 len_off = version == 0 ? 8 : version == 1 ? 4 : 16;
	if (!pg_vec || per_block == 0 || hdrlen < 20)
		return;
	e->flags |= FRAME_TX_RING;
	for (int i = 1; i <= TX_RING_FRAMES; i++) {
		__u32 idx = head >= (__u32)i ? head - i : frame_max + 1 - (i - head);
		if (idx > frame_max)
			break;
		char *block = NULL;
		bpf_probe_read_kernel(&block, sizeof(block), &pg_vec[idx / per_block].buffer);
		if (!block)
			break;
		char *frame = block + (idx % per_block) * frame_size;
		__u32 tp_len = 0;
		bpf_probe_read_kernel(&tp_len, sizeof(tp_len), frame + len_off);
		__u32 n = tp_len > FRAME_CAP ? FRAME_CAP : tp_len;
		/* a dgram socket's frame has no link header, a raw one's has */
		if (n == 0 || bpf_probe_read_kernel(e->data, n, frame + hdrlen - 20))
			continue;
		e->len = n;
		submit_frame(e);
	}
}

/* Reads the frame(s) a send call carried from its arguments. */
static __always_inline int read_send(struct frame_event *e, void *regs)
{
	long nr = syscall_nr(regs);
	void *a1 = (void *)syscall_arg(regs, 2);
	__u64 a2 = syscall_arg(regs, 3);
	if (nr == NR_WRITE)
		return read_frame(e, a1, a2);
	if (nr == NR_SENDTO) {
		read_dest(e, (void *)syscall_arg(regs, 5), (int)syscall_arg(regs, 6));
		return read_frame(e, a1, a2);
	}
	struct user_iovec_ iov = {};
	if (nr == NR_WRITEV) {
		if (a2 == 0 || bpf_probe_read_user(&iov, sizeof(iov), a1))
			return -1;
		return read_frame(e, iov.base, iov.len);
	}
	if (nr == NR_SENDMSG) {
		struct user_msghdr_ m = {};
		if (bpf_probe_read_user(&m, sizeof(m), a1) || m.iovlen == 0 ||
		    bpf_probe_read_user(&iov, sizeof(iov), m.iov))
			return -1;
		read_dest(e, m.name, m.namelen);
		return read_frame(e, iov.base, iov.len);
	}
	if (nr == NR_SENDMMSG) {
		/* Each message fires the tracepoint once and none says which
		 * it is: every firing reads the first MMSG_FRAMES messages, and
		 * user space folds the repeats. struct mmsghdr is a msghdr and
		 * the message's length, 64 bytes. */
		__u32 vlen = a2 > MMSG_FRAMES ? MMSG_FRAMES : a2;
		int read = -1;
		for (__u32 i = 0; i < MMSG_FRAMES; i++) {
			if (i >= vlen)
				break;
			struct user_msghdr_ m = {};
			if (bpf_probe_read_user(&m, sizeof(m), a1 + i * 64) || m.iovlen == 0 ||
			    bpf_probe_read_user(&iov, sizeof(iov), m.iov))
				continue;
			read_dest(e, m.name, m.namelen);
			if (read_frame(e, iov.base, iov.len))
				continue;
			read = 0;
			if (i + 1 < vlen)
				submit_frame(e); /* the last one is the caller's */
		}
		return read;
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

static __always_inline void fill_sender(struct frame_event *e, struct task_struct *task)
{
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
	e->exe_ctime_ns = inode ? inode_ctime_ns(inode) : 0;
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
	fill_sender(e, task);
	e->sent = ret;
	e->sk_type = BPF_CORE_READ(sk, sk_type);
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->ifindex = BPF_CORE_READ(po, ifindex);
	e->protocol = BPF_CORE_READ(po, num);
	if (e->sk_type != SOCK_DGRAM_)
		e->flags |= FRAME_LINK_HEADER;
	if (bpf_core_field_exists(po->flags) && (BPF_CORE_READ(po, flags) & (1UL << 6))) /* PACKET_SOCK_QDISC_BYPASS */
		e->flags |= FRAME_QDISC_BYPASS;
	if (BPF_CORE_READ(po, tx_ring.pg_vec)) {
		read_tx_ring(e, po);
		return 0;
	}
	void *regs = (void *)bpf_task_pt_regs(task);
	if (!regs || read_send(e, regs)) {
		frame_count(FCOUNTER_UNREADABLE);
		return 0;
	}
	submit_frame(e);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(frame_sent, struct sock *sk, int ret, int flags)
{
	return handle_frame_sent(sk, ret);
}

#endif
