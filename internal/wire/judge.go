// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Interface is a network interface as its network namespace describes it.
type Interface struct {
	Index int32
	Name  string
	// Addrs are the addresses the interface holds, with those of the
	// master it is enslaved to (a bridge or bond port sends for it).
	Addrs []netip.Addr
}

// Holds reports whether the interface holds a.
func (i *Interface) Holds(a netip.Addr) bool {
	return slices.Contains(i.Addrs, a.Unmap())
}

// InterfaceQuery names the interface a frame went out on, the way a
// frame record can.
type InterfaceQuery struct {
	NetNS   uint32 // the socket's namespace inode, as the kernel reported it
	PID     uint32 // the sender, whose /proc entry leads into the namespace
	TID     uint32
	IfIndex int32  // 0 when only Device is known
	Device  string // SOCK_PACKET's device name
}

// Errors an interface lookup (internal/netaddr) returns wrapped, so that
// the receiver counts a frame it could not judge by why.
var (
	// ErrNamespaceGone says the sender's network namespace could not be
	// reached any more: the sender exited, or left the namespace its
	// socket is in.
	ErrNamespaceGone = errors.New("the sender's network namespace is gone")
	// ErrInterfaceGone says the namespace has no such interface (any more).
	ErrInterfaceGone = errors.New("the interface is gone")
)

// QueryOf names f's interface.
func QueryOf(f *Frame) InterfaceQuery {
	return InterfaceQuery{NetNS: f.NetNS, PID: f.PID, TID: f.TID, IfIndex: f.IfIndex, Device: f.Device}
}

// Verdict is what a claim means.
type Verdict struct {
	Lie bool
	// Technique is the MITRE ATT&CK technique of the lie.
	TechniqueID, TechniqueName string
	// Behaviour names the class of tool that tells such lies, the
	// record's tool name when the sender's exec names none.
	Behaviour string
	// Detail says what was claimed to whom on which interface.
	Detail string
}

// ARP cache poisoning, DHCP spoofing, and AiTM for what has no
// sub-technique of its own (neighbour discovery, router advertisements).
const (
	techniqueARP    = "T1557.002"
	techniqueDHCP   = "T1557.003"
	techniqueAiTM   = "T1557"
	nameARP         = "ARP Cache Poisoning"
	nameDHCP        = "DHCP Spoofing"
	nameAiTM        = "Adversary-in-the-Middle"
	arpSpoofer      = "arp_spoofer"
	ndSpoofer       = "ndp_spoofer"
	rogueRouter     = "rogue_ipv6_router"
	redirector      = "icmpv6_redirector"
	rogueDHCPServer = "rogue_dhcpv6_server"
)

// Judge decides whether claim, sent on iface, lies. A packet socket is
// how user space forges a frame: the kernel's own ARP and neighbour
// discovery, radvd (a raw ICMPv6 socket) and DHCP servers (UDP sockets)
// never come here.
func Judge(c *Claim, iface *Interface) Verdict {
	on := fmt.Sprintf("on %s (ifindex %d)", iface.Name, iface.Index)
	switch c.Class {
	case ClassARP:
		// 0.0.0.0 is a probe (RFC 5227); an address the interface holds
		// is the sender's own (arping, a gratuitous ARP for a VIP it has).
		if c.Address.IsUnspecified() || iface.Holds(c.Address) {
			return Verdict{}
		}
		kind := "request"
		if c.Op == 2 {
			kind = "reply"
		}
		return Verdict{Lie: true, TechniqueID: techniqueARP, TechniqueName: nameARP, Behaviour: arpSpoofer,
			Detail: fmt.Sprintf("ARP %s claims %s is at %s, told to %s, %s, which does not hold %s", kind, c.Address, c.MAC, c.Target, on, c.Address)}
	case ClassNA:
		if iface.Holds(c.Address) || (c.Solicited && !c.Override) {
			return Verdict{}
		}
		return Verdict{Lie: true, TechniqueID: techniqueAiTM, TechniqueName: nameAiTM, Behaviour: ndSpoofer,
			Detail: fmt.Sprintf("neighbor advertisement (override %t, solicited %t) claims %s is at %s, told to %s, %s, which does not hold %s",
				c.Override, c.Solicited, c.Address, c.MAC, c.Target, on, c.Address)}
	case ClassNS:
		// a solicitation updates the receiver's entry for its source
		// (RFC 4861 7.2.3): from an address the interface does not hold,
		// it plants the sender's MAC for someone else's address
		if iface.Holds(c.Address) {
			return Verdict{}
		}
		return Verdict{Lie: true, TechniqueID: techniqueAiTM, TechniqueName: nameAiTM, Behaviour: ndSpoofer,
			Detail: fmt.Sprintf("neighbor solicitation from %s claims it is at %s, asking for %s, %s, which does not hold %s",
				c.Address, c.MAC, c.Target, on, c.Address)}
	case ClassRA:
		return Verdict{Lie: true, TechniqueID: techniqueAiTM, TechniqueName: nameAiTM, Behaviour: rogueRouter,
			Detail: fmt.Sprintf("router advertisement from %s (%s) to %s forged through a packet socket %s", c.Address, c.MAC, c.Target, on)}
	case ClassRedirect:
		return Verdict{Lie: true, TechniqueID: techniqueAiTM, TechniqueName: nameAiTM, Behaviour: redirector,
			Detail: fmt.Sprintf("ICMPv6 redirect from %s to %s forged through a packet socket %s", c.Address, c.Target, on)}
	case ClassDHCPv6:
		kind := "advertise"
		if c.Op == 7 {
			kind = "reply"
		}
		return Verdict{Lie: true, TechniqueID: techniqueDHCP, TechniqueName: nameDHCP, Behaviour: rogueDHCPServer,
			Detail: fmt.Sprintf("DHCPv6 %s from %s to %s forged through a packet socket %s", kind, c.Address, c.Target, on)}
	}
	return Verdict{}
}
