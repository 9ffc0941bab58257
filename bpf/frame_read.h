// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The behaviour tier's reading of a frame: where a send's bytes and
 * destination are (the syscall's arguments, per architecture), copying them
 * into the record, and the parse that says whether the frame can carry a
 * claim about an address. See frame.h for the hooks. */

#ifndef MITMEXEC_FRAME_READ_H
#define MITMEXEC_FRAME_READ_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define GATHER_CAP 128 /* bytes gathered from a frame split over several iovecs */
#define IOV_SEGS   4

#define ETH_HLEN_	 14
#define ETH_P_ARP_	 0x0806
#define ETH_P_IPV6_	 0x86DD
#define ETH_P_8021Q_	 0x8100
#define ETH_P_8021AD_	 0x88A8
#define IPPROTO_ICMPV6_	 58
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_DSTOPTS_ 60
#define EXT_HEADERS	 2 /* IPv6 extension headers skipped before ICMPv6 or UDP */
#define IPPROTO_UDP_	 17
#define SOCK_DGRAM_	 2
#define SOCK_PACKET_	 10
#define AF_PACKET_	 17

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
#define NR_WRITE    64
#define NR_WRITEV   66
#define NR_SENDTO   206
#define NR_SENDMSG  211
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
	case 2:
		return BPF_CORE_READ(r, regs[1]);
	case 3:
		return BPF_CORE_READ(r, regs[2]);
	case 5:
		return BPF_CORE_READ(r, regs[4]);
	default:
		return BPF_CORE_READ(r, regs[5]);
	}
}
#else
#define NR_WRITE    1
#define NR_WRITEV   20
#define NR_SENDTO   44
#define NR_SENDMSG  46
#define NR_SENDMMSG 307
static __always_inline long syscall_nr(void *regs)
{
	return BPF_CORE_READ((struct pt_regs___mx_x86 *)regs, orig_ax);
}
static __always_inline __u64 syscall_arg(void *regs, int n)
{
	struct pt_regs___mx_x86 *r = regs;
	switch (n) {
	case 2:
		return BPF_CORE_READ(r, si);
	case 3:
		return BPF_CORE_READ(r, dx);
	case 5:
		return BPF_CORE_READ(r, r8);
	default:
		return BPF_CORE_READ(r, r9);
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

/* A copy from user memory (the syscall's own arguments) or from the
 * kernel's copy of them (the msghdr the LSM hook sees); user is a constant
 * at every call, so each caller keeps one helper. */
static __always_inline long read_mem(void *dst, __u32 n, const void *src, const int user)
{
	return user ? bpf_probe_read_user(dst, n, src) : bpf_probe_read_kernel(dst, n, src);
}

/* sockaddr_ll: family, protocol (network order), ifindex; sockaddr_pkt
 * (SOCK_PACKET): family, then the device's name in 14 bytes. */
static __always_inline void read_dest(struct frame_event *e, const void *name, int namelen, const int user)
{
	if (!name || namelen < 4)
		return;
	if (e->sk_type == SOCK_PACKET_) {
		read_mem(e->device, 14, name + 2, user);
		e->device[14] = 0;
		e->flags |= FRAME_DEVICE_NAME;
		return;
	}
	__u16 proto = 0;
	if (!read_mem(&proto, sizeof(proto), name + 2, user) && proto)
		e->protocol = proto;
	__s32 ifindex = 0;
	if (namelen >= 8 && !read_mem(&ifindex, sizeof(ifindex), name + 4, user) && ifindex > 0)
		e->ifindex = ifindex;
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
 * up to IOV_SEGS segments, GATHER_CAP bytes. The iovec array is in user
 * memory (sendmsg's) or the kernel's copy of it (user, as in read_mem);
 * struct iovec and the user's have one layout. */
static __always_inline int gather_iov(struct frame_event *e, const struct user_iovec_ *iovp, __u64 segs, const int user)
{
	struct user_iovec_ iov = {};
	__u32 off = 0;
	for (int i = 0; i < IOV_SEGS; i++) {
		if (i >= segs || off >= GATHER_CAP)
			break;
		if (read_mem(&iov, sizeof(iov), &iovp[i], user))
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

static __always_inline int read_iov(struct frame_event *e, struct user_iovec_ *iovp, __u64 iovlen)
{
	if (iovlen == 1) {
		struct user_iovec_ iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), iovp))
			return -1;
		return read_frame(e, iov.base, iov.len);
	}
	return gather_iov(e, iovp, iovlen, 1);
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
	return gather_iov(e, (const struct user_iovec_ *)iov, segs, 0);
}

#endif
