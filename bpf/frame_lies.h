// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

/* The behaviour tier's own judgement, for block mode under the BPF LSM
 * (frame.h): whether a frame lies about an address, as far as the kernel can
 * tell alone from the sending device's addresses. */

#ifndef MITMEXEC_FRAME_LIES_H
#define MITMEXEC_FRAME_LIES_H

#include "mitmexec.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "frame_read.h"

static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

#define DEV_WALK	    64 /* devices of a namespace walked to find SOCK_PACKET's by name */
#define INDEX_WALK	    8  /* devices of one index hash bucket */
#define NETDEV_HASHENTRIES_ 256
#define ADDR_WALK	    16 /* addresses of a device compared */

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

#endif
