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

#define FRAME_CAP 256   /* bytes of a frame kept: room for IPv6 extension headers before an NA */
#define GATHER_CAP 128  /* bytes gathered from a frame split over several iovecs */
#define IOV_SEGS 4
#define DEVICE_LEN 16
#define TX_RING_FRAMES 8 /* frames read from a TX ring per send */
#define MMSG_FRAMES 8    /* messages read from one sendmmsg */

#define ETH_HLEN_ 14
#define ETH_P_ARP_ 0x0806
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_DSTOPTS_ 60
#define EXT_HEADERS 2 /* IPv6 extension headers skipped before ICMPv6 or UDP */
#define IPPROTO_UDP_ 17
#define SOCK_DGRAM_ 2
#define SOCK_PACKET_ 10
#define AF_PACKET_ 17

/* frame flags (bits), keep in sync with wire.Flag* */
#define FRAME_LINK_HEADER (1 << 0) /* data starts with the Ethernet header */
#define FRAME_TX_RING (1 << 1)     /* read from the socket's TX ring */
#define FRAME_QDISC_BYPASS (1 << 2)
#define FRAME_DEVICE_NAME (1 << 3) /* SOCK_PACKET: device names the interface, ifindex is 0 */
#define FRAME_DENIED (1 << 4)      /* refused by the LSM hook: it never left */
#define FRAME_BEFORE_SEND (1 << 5) /* read by the LSM hook, before the send */
#define FRAME_KERNEL_LIE (1 << 6)  /* the kernel's own check found the claim a lie (see frame_lies) */

/* frame counters (per-CPU array index), keep in sync with wire.Counter* */
#define FCOUNTER_SENDS 0       /* packet-socket sends seen */
#define FCOUNTER_SUBMITTED 1   /* frames sent up */
#define FCOUNTER_RESERVE_FAILED 2
#define FCOUNTER_UNREADABLE 3  /* a packet-socket send whose frame could not be read */
#define FCOUNTER_DENIED 4      /* frames the LSM hook refused */
#define FCOUNTER_MAX 5

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
	__u64 po, net;  /* the socket and its namespace, as numbers */
	__u64 vec;      /* sendmmsg's struct mmsghdr array (user memory) */
	struct ring_layout l;
	__u32 head, frame_max, vlen;
	__s32 refused, read;
	__s32 ifindex0; /* the socket's binding, restored before each frame */
	__u16 protocol0, flags0;
	__u32 lsm;      /* judge before the send (lsm/socket_sendmsg) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frame_loop);
} frame_loop_state SEC(".maps");

static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/* Executables an allow entry names by path (device and inode): block mode
 * never refuses their frames in the kernel; user space judges them. */
struct frame_sender_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};
const struct frame_sender_key *unused_frame_sender_key __attribute__((unused));

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

/* A frame split over iovecs (header in one, body in the next) is gathered:
 * up to IOV_SEGS segments, GATHER_CAP bytes. */
static __always_inline int read_iov(struct frame_event *e, struct user_iovec_ *iovp, __u64 iovlen)
{
	struct user_iovec_ iov = {};
	__u32 off = 0;
	if (iovlen == 1) {
		if (bpf_probe_read_user(&iov, sizeof(iov), iovp))
			return -1;
		return read_frame(e, iov.base, iov.len);
	}
	for (int i = 0; i < IOV_SEGS; i++) {
		if (i >= iovlen || off >= GATHER_CAP)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), &iovp[i]))
			return -1;
		__u32 n = iov.len > GATHER_CAP ? GATHER_CAP : (__u32)iov.len;
		if (n == 0)
			continue;
		__u32 at = off;
		asm volatile("%0 &= 127" : "+r"(at)); /* GATHER_CAP - 1: a bound the verifier keeps */
		if (bpf_probe_read_user(&e->data[at], n, iov.base))
			return -1;
		off += n;
	}
	if (off == 0)
		return -1;
	e->len = off > GATHER_CAP ? GATHER_CAP : off;
	return 0;
}

/* An index into a frame's bytes that the verifier can bound: clang, knowing
 * an offset's parity, turns (x + 1) & 255 into x | 1, and verifiers before
 * 6.13 lose the bounds of an OR; the masking here is opaque to clang. */
static __always_inline __u32 data_at(__u32 i)
{
	asm volatile("%0 &= 255" : "+r"(i)); /* FRAME_CAP - 1 */
	return i;
}

/* Copies n bytes of the frame from i, each byte's index masked on its own:
 * the verifier bounds every load, whatever clang made of the offset. */
static __always_inline void data_copy(struct frame_event *e, __u32 i, __u8 *dst, int n)
{
	for (int j = 0; j < 16; j++)
		if (j < n)
			dst[j] = e->data[data_at(i + j)];
}

static __always_inline __u16 be16_at(const __u8 *d, __u32 off)
{
	return ((__u16)d[off] << 8) | d[off + 1];
}

/* Where the network header starts and its ethertype: after the Ethernet
 * header and up to two VLAN tags, or at 0 for a dgram socket's frame. */
static __always_inline __u32 l3_offset(struct frame_event *e, __u16 *proto)
{
	*proto = bpf_ntohs(e->protocol);
	if (!(e->flags & FRAME_LINK_HEADER))
		return 0;
	if (e->len < ETH_HLEN_)
		return FRAME_CAP; /* nothing to read */
	*proto = be16_at(e->data, 12);
	if (*proto != ETH_P_8021Q_ && *proto != ETH_P_8021AD_)
		return ETH_HLEN_;
	*proto = be16_at(e->data, 16);
	if (*proto != ETH_P_8021Q_)
		return 18;
	*proto = be16_at(e->data, 20);
	return 22;
}

/* Where an IPv6 packet's upper-layer header starts, past up to
 * EXT_HEADERS hop-by-hop, routing or destination-options headers (the
 * kernel accepts neighbour discovery behind them: RFC 7113's RA-Guard
 * evasion), and which protocol it is; FRAME_CAP when it is not captured. */
static __always_inline __u32 upper_offset(struct frame_event *e, __u32 off, __u8 *nh)
{
	*nh = e->data[data_at(off + 6)];
	__u32 hdr = off + 40;
	for (int i = 0; i < EXT_HEADERS; i++) {
		if (*nh != IPPROTO_HOPOPTS_ && *nh != IPPROTO_ROUTING_ && *nh != IPPROTO_DSTOPTS_)
			break;
		if (hdr + 2 > e->len || hdr + 2 > FRAME_CAP)
			return FRAME_CAP;
		*nh = e->data[data_at(hdr)];
		hdr += ((__u32)e->data[data_at(hdr + 1)] + 1) * 8;
	}
	return hdr;
}

/* Whether a frame can carry a claim about an address: ARP; ICMPv6 router
 * advertisement, neighbour solicitation and advertisement, redirect;
 * DHCPv6 advertise or reply (UDP to port 546). */
static __always_inline int frame_can_claim(struct frame_event *e)
{
	__u16 proto;
	__u32 off = l3_offset(e, &proto);
	if (off >= FRAME_CAP)
		return 0;
	if (proto == ETH_P_ARP_)
		return e->len >= off + 8;
	if (proto != ETH_P_IPV6_ || e->len < off + 44)
		return 0;
	__u8 nh;
	__u32 up = upper_offset(e, off, &nh);
	if (up + 9 > e->len || up + 9 > FRAME_CAP)
		return 0;
	if (nh == IPPROTO_ICMPV6_) {
		__u8 type = e->data[data_at(up)];
		return type == 134 || type == 135 || type == 136 || type == 137;
	}
	if (nh == IPPROTO_UDP_) {
		__u16 dport = ((__u16)e->data[data_at(up + 2)] << 8) | e->data[data_at(up + 3)];
		__u8 msg = e->data[data_at(up + 8)];
		return dport == 546 && (msg == 2 || msg == 7);
	}
	return 0;
}

static __always_inline int frame_lies(struct frame_event *e, struct packet_sock *po, struct net *net);
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
	unsigned int tp_tx_has_off:1;
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
static __always_inline long read_ring_frame(struct frame_event *e, struct packet_sock *po, struct ring_layout *l, __u32 idx)
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

static __always_inline int judge_before_send(struct frame_event *e, struct packet_sock *po, struct net *net, struct config *cfg);

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

static __always_inline struct frame_loop *frame_loop_of(struct frame_event *e, struct packet_sock *po, struct net *net, int lsm)
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
	read_dest(e, m.name, m.namelen);
	if (read_iov(e, m.iov, m.iovlen))
		return 0;
	st->read = 0;
	if (st->lsm) {
		__u32 zero = 0;
		st->refused |= judge_before_send(e, (void *)st->po, (void *)st->net, bpf_map_lookup_elem(&config_map, &zero));
		return 0;
	}
	submit_frame(e, (void *)st->po, (void *)st->net);
	return 0;
}

/* Reads (and, under the LSM, judges) the messages of a sendmmsg. */
static __always_inline int mmsg_frames(struct frame_event *e, struct packet_sock *po, struct net *net, void *vec, __u64 vlen, int lsm)
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
		read_dest(e, (void *)syscall_arg(regs, 5), (int)syscall_arg(regs, 6));
	} else if (nr == NR_SENDMSG) {
		struct user_msghdr_ m = {};
		if (!bpf_probe_read_user(&m, sizeof(m), (void *)syscall_arg(regs, 2)))
			read_dest(e, m.name, m.namelen);
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
		read_dest(e, (void *)syscall_arg(regs, 5), (int)syscall_arg(regs, 6));
		return read_frame(e, a1, a2);
	}
	if (nr == NR_WRITEV)
		return a2 ? read_iov(e, a1, a2) : -1;
	if (nr == NR_SENDMSG) {
		struct user_msghdr_ m = {};
		if (bpf_probe_read_user(&m, sizeof(m), a1) || m.iovlen == 0)
			return -1;
		read_dest(e, m.name, m.namelen);
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

#define DEV_WALK 64   /* devices of a namespace walked to find SOCK_PACKET's by name */
#define INDEX_WALK 8  /* devices of one index hash bucket */
#define NETDEV_HASHENTRIES_ 256
#define ADDR_WALK 16  /* addresses of a device compared */

struct iov_iter___old {
	const struct iovec *iov;
} __attribute__((preserve_access_index));

/* Reads the frame from the message's iterator: user memory, one buffer
 * (ITER_UBUF) or an iovec (its segments gathered, as read_iov does). */
static __always_inline int read_iter(struct frame_event *e, struct msghdr *msg)
{
	__u8 type = BPF_CORE_READ(msg, msg_iter.iter_type);
	__u64 len = BPF_CORE_READ(msg, msg_iter.count);
	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF))
		return read_frame(e, BPF_CORE_READ(msg, msg_iter.ubuf), len);
	if (type != bpf_core_enum_value(enum iter_type, ITER_IOVEC))
		return -1;
	const struct iovec *iov;
	if (bpf_core_field_exists(msg->msg_iter.__iov)) {
		iov = BPF_CORE_READ(msg, msg_iter.__iov);
	} else {
		struct iov_iter___old *old = (void *)&msg->msg_iter;
		iov = BPF_CORE_READ(old, iov);
	}
	__u64 segs = BPF_CORE_READ(msg, msg_iter.nr_segs);
	if (segs <= 1)
		return read_frame(e, BPF_CORE_READ(iov, iov_base), len);
	__u32 off = 0;
	for (int i = 0; i < IOV_SEGS; i++) {
		if (i >= segs || off >= GATHER_CAP)
			break;
		const struct iovec *seg = iov + i;
		void *base = BPF_CORE_READ(seg, iov_base);
		__u64 l = BPF_CORE_READ(seg, iov_len);
		__u32 n = l > GATHER_CAP ? GATHER_CAP : (__u32)l;
		if (n == 0)
			continue;
		__u32 at = off;
		asm volatile("%0 &= 127" : "+r"(at)); /* GATHER_CAP - 1: a bound the verifier keeps */
		if (bpf_probe_read_user(&e->data[at], n, base))
			return -1;
		off += n;
	}
	if (off == 0)
		return -1;
	e->len = off > GATHER_CAP ? GATHER_CAP : off;
	return 0;
}

static __always_inline void read_dest_kernel(struct frame_event *e, struct msghdr *msg)
{
	void *name = BPF_CORE_READ(msg, msg_name);
	int namelen = BPF_CORE_READ(msg, msg_namelen);
	if (!name || namelen < 4)
		return;
	if (e->sk_type == SOCK_PACKET_) {
		bpf_probe_read_kernel(e->device, 14, name + 2);
		e->device[14] = 0;
		e->flags |= FRAME_DEVICE_NAME;
		return;
	}
	__u16 proto = 0;
	if (!bpf_probe_read_kernel(&proto, sizeof(proto), name + 2) && proto)
		e->protocol = proto;
	__s32 ifindex = 0;
	if (namelen >= 8 && !bpf_probe_read_kernel(&ifindex, sizeof(ifindex), name + 4) && ifindex > 0)
		e->ifindex = ifindex;
}

/* The frames of the TX ring the send is about to take: from tx_ring.head on,
 * those user space marked TP_STATUS_SEND_REQUEST. Returns how many lie. */

/* The device a frame goes out on: the socket's bound device when the send
 * names no other, else the namespace's index hash bucket; SOCK_PACKET names
 * it, so its devices are walked by name. */
static __always_inline struct net_device *sender_device(struct net *net, struct packet_sock *po, struct frame_event *e)
{
	if (e->flags & FRAME_DEVICE_NAME) {
		struct list_head *head = &net->dev_base_head;
		struct list_head *pos = BPF_CORE_READ(head, next);
		__u32 off = bpf_core_field_offset(struct net_device, dev_list);
		for (int i = 0; i < DEV_WALK && pos && pos != head; i++) {
			struct net_device *dev = (void *)pos - off;
			char name[16] = {};
			BPF_CORE_READ_STR_INTO(&name, dev, name);
			if (same16((const __u8 *)name, (const __u8 *)e->device))
				return dev;
			pos = BPF_CORE_READ(pos, next);
		}
		return NULL;
	}
	struct net_device *bound = BPF_CORE_READ(po, cached_dev);
	if (bound && BPF_CORE_READ(bound, ifindex) == e->ifindex)
		return bound;
	struct hlist_head *heads = BPF_CORE_READ(net, dev_index_head);
	if (!heads)
		return NULL;
	struct hlist_head *bucket = heads + (e->ifindex & (NETDEV_HASHENTRIES_ - 1));
	struct hlist_node *n = BPF_CORE_READ(bucket, first);
	__u32 off = bpf_core_field_offset(struct net_device, index_hlist);
	for (int i = 0; i < INDEX_WALK && n; i++) {
		struct net_device *dev = (void *)n - off;
		if (BPF_CORE_READ(dev, ifindex) == e->ifindex)
			return dev;
		n = BPF_CORE_READ(n, next);
	}
	return NULL;
}

static __always_inline int holds_ipv4(struct net_device *dev, __be32 addr)
{
	struct in_ifaddr *ifa = BPF_CORE_READ(dev, ip_ptr, ifa_list);
	for (int i = 0; i < ADDR_WALK && ifa; i++) {
		if (BPF_CORE_READ(ifa, ifa_local) == addr)
			return 1;
		ifa = BPF_CORE_READ(ifa, ifa_next);
	}
	return 0;
}


static __always_inline int holds_ipv6(struct net_device *dev, const __u8 *addr)
{
	struct inet6_dev *idev = BPF_CORE_READ(dev, ip6_ptr);
	if (!idev)
		return 0;
	struct list_head *head = &idev->addr_list;
	struct list_head *pos = BPF_CORE_READ(head, next);
	__u32 off = bpf_core_field_offset(struct inet6_ifaddr, if_list);
	for (int i = 0; i < ADDR_WALK && pos && pos != head; i++) {
		struct inet6_ifaddr *ifa = (void *)pos - off;
		struct in6_addr a = BPF_CORE_READ(ifa, addr);
		if (same16((const __u8 *)&a, addr))
			return 1;
		pos = BPF_CORE_READ(pos, next);
	}
	return 0;
}

/* Whether the frame in e lies, as far as the kernel can tell alone. */
static __always_inline int frame_lies(struct frame_event *e, struct packet_sock *po, struct net *net)
{
	__u16 proto;
	__u32 off = l3_offset(e, &proto);
	if (off >= FRAME_CAP)
		return 0;
	if (proto == ETH_P_ARP_) {
		__u32 at = data_at(off + 14);
		if (e->len < off + 28 || at > FRAME_CAP - 4)
			return 0;
		__be32 spa = 0;
		data_copy(e, at, (__u8 *)&spa, 4);
		if (!spa)
			return 0; /* a probe */
		struct net_device *dev = sender_device(net, po, e);
		return dev && !holds_ipv4(dev, spa);
	}
	if (proto != ETH_P_IPV6_ || e->len < off + 44)
		return 0;
	__u8 nh;
	__u32 up = upper_offset(e, off, &nh);
	if (up + 8 > e->len || up + 8 > FRAME_CAP)
		return 0;
	__u8 type = e->data[data_at(up)];
	if (nh == IPPROTO_UDP_ || (nh == IPPROTO_ICMPV6_ && (type == 134 || type == 137)))
		return 1; /* a DHCPv6 answer, a router advertisement or a redirect from a packet socket */
	if (nh != IPPROTO_ICMPV6_)
		return 0;
	__u8 addr[16];
	if (type == 135) {
		/* a solicitation claims its source address is at its source
		 * link-layer option's MAC; from :: it is duplicate detection */
		__u32 at = data_at(off + 8);
		if (at > FRAME_CAP - 16)
			return 0;
		data_copy(e, at, addr, 16);
		__u8 any = 0;
		for (int i = 0; i < 16; i++)
			any |= addr[i];
		if (!any)
			return 0;
	} else if (type == 136) {
		__u32 at = data_at(up + 8);
		if (e->len < up + 24 || at > FRAME_CAP - 16)
			return 0;
		__u8 flags = e->data[data_at(up + 4)];
		if ((flags & 0x40) && !(flags & 0x20))
			return 0; /* solicited, no override */
		data_copy(e, at, addr, 16);
	} else {
		return 0;
	}
	struct net_device *dev = sender_device(net, po, e);
	return dev && !holds_ipv6(dev, addr);
}

/* Sends e up if it can carry a claim; returns whether it is to be refused. */
static __always_inline int judge_before_send(struct frame_event *e, struct packet_sock *po, struct net *net, struct config *cfg)
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
	read_dest_kernel(e, msg);
	if (BPF_CORE_READ(po, tx_ring.pg_vec))
		return ring_frames(e, po, net, 1) ? -1 /* -EPERM */ : 0;
	/* sendmmsg asks this hook only for a message whose address differs
	 * from the one before: the first call judges the whole vector (a lie
	 * anywhere in it refuses the call) */
	void *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (regs && syscall_nr(regs) == NR_SENDMMSG)
		return mmsg_frames(e, po, net, (void *)syscall_arg(regs, 2), syscall_arg(regs, 3), 1) ? -1 /* -EPERM */ : 0;
	if (read_iter(e, msg)) {
		if (cfg && cfg->frame_lsm_reports)
			frame_count(FCOUNTER_UNREADABLE);
		return 0;
	}
	return judge_before_send(e, po, net, cfg) ? -1 /* -EPERM */ : 0;
}

#endif
