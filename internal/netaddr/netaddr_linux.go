// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Package netaddr answers which addresses a network interface holds, in the
// network namespace of the process that sent a frame on it, from that
// namespace's own netlink: never from anything the frame says.
package netaddr

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/wire"
)

type key struct {
	netns   uint32
	ifindex int32
	device  string
}

type entry struct {
	iface wire.Interface
	read  time.Time
}

// Resolver caches interfaces per namespace for TTL; Lookup with fresh set
// reads the namespace again, which is what a verdict of "lie" is based on.
type Resolver struct {
	ttl   time.Duration
	cache *bounded.Map[key, entry]
}

// maxInterfaces bounds the interfaces remembered, over all namespaces.
const maxInterfaces = 1024

// New returns a resolver that trusts a read for ttl.
func New(ttl time.Duration) *Resolver {
	return &Resolver{ttl: ttl, cache: bounded.New[key, entry](maxInterfaces)}
}

// Lookup returns the interface q names with its addresses.
func (r *Resolver) Lookup(q wire.InterfaceQuery, fresh bool) (wire.Interface, error) {
	k := key{q.NetNS, q.IfIndex, q.Device}
	if q.IfIndex != 0 {
		k.device = ""
	}
	e, ok := r.cache.Get(k)
	if ok && !fresh && time.Since(e.read) < r.ttl {
		return e.iface, nil
	}
	iface, err := read(q)
	if err != nil {
		return wire.Interface{}, err
	}
	r.cache.Put(k, entry{iface: iface, read: time.Now()})
	return iface, nil
}

// read enters the namespace through the sender's thread (a thread may
// setns on its own), checks it is the socket's namespace by inode, and
// dumps the interface's addresses over a netlink socket made in it.
func read(q wire.InterfaceQuery) (wire.Interface, error) {
	ns, err := openNamespace(q)
	if err != nil {
		return wire.Interface{}, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return wire.Interface{}, fmt.Errorf("netlink in network namespace %d: %w", q.NetNS, err)
	}
	defer h.Close()
	var link netlink.Link
	if q.IfIndex != 0 {
		link, err = h.LinkByIndex(int(q.IfIndex))
	} else {
		link, err = h.LinkByName(q.Device)
	}
	if err != nil {
		return wire.Interface{}, fmt.Errorf("%w: ifindex %d device %q in network namespace %d: %v", wire.ErrInterfaceGone, q.IfIndex, q.Device, q.NetNS, err)
	}
	attrs := link.Attrs()
	iface := wire.Interface{Index: int32(attrs.Index), Name: attrs.Name}
	if iface.Addrs, err = addrs(h, link); err != nil {
		return wire.Interface{}, err
	}
	// A bridge or bond port carries its master's addresses on the wire.
	if attrs.MasterIndex != 0 {
		if master, err := h.LinkByIndex(attrs.MasterIndex); err == nil {
			more, err := addrs(h, master)
			if err != nil {
				return wire.Interface{}, err
			}
			iface.Addrs = append(iface.Addrs, more...)
		}
	}
	return iface, nil
}

func addrs(h *netlink.Handle, link netlink.Link) ([]netip.Addr, error) {
	list, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list the addresses of %s: %w", link.Attrs().Name, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func openNamespace(q wire.InterfaceQuery) (netns.NsHandle, error) {
	for _, tid := range []uint32{q.TID, 0} {
		fd, err := procfs.OpenNamespace(procfs.Root, q.PID, tid, "net")
		if err != nil {
			continue
		}
		ns := netns.NsHandle(fd)
		var st unix.Stat_t
		if err := unix.Fstat(int(ns), &st); err == nil && uint32(st.Ino) == q.NetNS {
			return ns, nil
		}
		ns.Close()
	}
	return netns.None(), fmt.Errorf("%w: pid %d, namespace %d", wire.ErrNamespaceGone, q.PID, q.NetNS)
}
