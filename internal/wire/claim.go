// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Class names the kind of claim a frame makes.
type Class string

const (
	ClassARP      Class = "arp"                        // ARP request or reply: "SenderIP is at SenderMAC"
	ClassNA       Class = "ndp_neighbor_advertisement" // "Target is at the option's MAC"
	ClassNS       Class = "ndp_neighbor_solicitation"  // "my source address is at my source link-layer option's MAC"
	ClassRA       Class = "ndp_router_advertisement"   // "I am a router (for these prefixes)"
	ClassRedirect Class = "icmpv6_redirect"            // "use this next hop instead"
	ClassDHCPv6   Class = "dhcpv6_server"              // DHCPv6 advertise or reply: "I am your DHCP server"
	etherTypeARP        = 0x0806
	etherTypeIPv6       = 0x86dd
	etherTypeVLAN       = 0x8100
	etherTypeQinQ       = 0x88a8
	sockDgram           = 2
	maxExtHeaders       = 2 // as the kernel's filter (EXT_HEADERS in bpf/frame_read.h)
)

// Claim is what a frame says about addresses.
type Claim struct {
	Class Class
	// Op: ARP opcode (1 request, 2 reply); ICMPv6 type; DHCPv6 message type.
	Op int
	// Address is the address the frame claims for its sender: ARP's sender
	// protocol address, an NA's target, the RA's or redirect's or DHCPv6
	// answer's IPv6 source.
	Address netip.Addr
	// MAC is the hardware address claimed for Address (ARP's sender, the
	// NA's target link-layer option, else the frame's source), when known.
	MAC net.HardwareAddr
	// Target is who the claim is told to (ARP's target protocol address,
	// the IPv6 destination), when known.
	Target netip.Addr
	// Override and Solicited are an NA's flags.
	Override, Solicited bool
}

// Errors Parse returns, one per kind of bad frame so each is counted.
var (
	ErrTruncated = errors.New("frame truncated")
	ErrMalformed = errors.New("frame malformed")
	ErrNoClaim   = errors.New("frame carries no address claim")
)

// Parse reads the claim a frame makes. Up to two VLAN tags are skipped.
func Parse(f *Frame) (Claim, error) {
	d := f.Data
	proto := f.Protocol
	var srcMAC net.HardwareAddr
	if f.Has(FlagLinkHeader) {
		if len(d) < 14 {
			return Claim{}, fmt.Errorf("%w: %d bytes, an Ethernet header is 14", ErrTruncated, len(d))
		}
		srcMAC = net.HardwareAddr(d[6:12])
		proto, d = binary.BigEndian.Uint16(d[12:]), d[14:]
		for tags := 0; (proto == etherTypeVLAN || proto == etherTypeQinQ) && tags < 2; tags++ {
			if len(d) < 4 {
				return Claim{}, fmt.Errorf("%w: VLAN tag cut", ErrTruncated)
			}
			proto, d = binary.BigEndian.Uint16(d[2:]), d[4:]
		}
	} else if f.SockType != sockDgram && f.SockType != 0 {
		return Claim{}, fmt.Errorf("%w: socket type %d without a link header", ErrMalformed, f.SockType)
	}
	switch proto {
	case etherTypeARP:
		return parseARP(d)
	case etherTypeIPv6:
		return parseIPv6(d, srcMAC)
	}
	return Claim{}, fmt.Errorf("%w: ethertype %#04x", ErrNoClaim, proto)
}

func parseARP(d []byte) (Claim, error) {
	if len(d) < 8 {
		return Claim{}, fmt.Errorf("%w: ARP header is %d bytes, want 8", ErrTruncated, len(d))
	}
	htype, ptype := binary.BigEndian.Uint16(d), binary.BigEndian.Uint16(d[2:])
	hlen, plen, op := int(d[4]), int(d[5]), int(binary.BigEndian.Uint16(d[6:]))
	// Linux's arp_process takes IEEE 802 (6) for Ethernet (1) too
	if (htype != 1 && htype != 6) || ptype != 0x0800 || hlen != 6 || plen != 4 {
		return Claim{}, fmt.Errorf("%w: ARP for hardware %d/%d bytes, protocol %#04x/%d bytes; only Ethernet/IPv4 is judged", ErrMalformed, htype, hlen, ptype, plen)
	}
	if op != 1 && op != 2 {
		return Claim{}, fmt.Errorf("%w: ARP opcode %d", ErrNoClaim, op)
	}
	if len(d) < 28 {
		return Claim{}, fmt.Errorf("%w: ARP body is %d bytes, want 28", ErrTruncated, len(d))
	}
	return Claim{
		Class: ClassARP, Op: op,
		MAC:     net.HardwareAddr(d[8:14]),
		Address: netip.AddrFrom4([4]byte(d[14:18])),
		Target:  netip.AddrFrom4([4]byte(d[24:28])),
	}, nil
}

func parseIPv6(d []byte, srcMAC net.HardwareAddr) (Claim, error) {
	if len(d) < 40 {
		return Claim{}, fmt.Errorf("%w: IPv6 header is %d bytes, want 40", ErrTruncated, len(d))
	}
	if d[0]>>4 != 6 {
		return Claim{}, fmt.Errorf("%w: IP version %d in an IPv6 frame", ErrMalformed, d[0]>>4)
	}
	src, dst := netip.AddrFrom16([16]byte(d[8:24])), netip.AddrFrom16([16]byte(d[24:40]))
	nh, body := d[6], d[40:]
	// Neighbour discovery behind hop-by-hop, routing or destination
	// options is accepted by the kernel (RFC 7113's RA-Guard evasion).
	for ext := 0; ext < maxExtHeaders && (nh == 0 || nh == 43 || nh == 60); ext++ {
		if len(body) < 2 {
			return Claim{}, fmt.Errorf("%w: IPv6 extension header cut", ErrTruncated)
		}
		n := (int(body[1]) + 1) * 8
		if len(body) < n {
			return Claim{}, fmt.Errorf("%w: IPv6 extension header of %d bytes cut at %d", ErrTruncated, n, len(body))
		}
		nh, body = body[0], body[n:]
	}
	switch nh {
	case 58: // ICMPv6
		if len(body) < 4 {
			return Claim{}, fmt.Errorf("%w: ICMPv6 header cut", ErrTruncated)
		}
		switch typ := int(body[0]); typ {
		case 134:
			return Claim{Class: ClassRA, Op: typ, Address: src, MAC: srcMAC, Target: dst}, nil
		case 137:
			return Claim{Class: ClassRedirect, Op: typ, Address: src, MAC: srcMAC, Target: dst}, nil
		case 135:
			if src.IsUnspecified() {
				return Claim{}, fmt.Errorf("%w: a neighbour solicitation from :: (duplicate address detection)", ErrNoClaim)
			}
			if len(body) < 24 {
				return Claim{}, fmt.Errorf("%w: neighbour solicitation is %d bytes, want 24", ErrTruncated, len(body))
			}
			c := Claim{Class: ClassNS, Op: typ, Address: src, MAC: srcMAC, Target: netip.AddrFrom16([16]byte(body[8:24]))}
			// the source link-layer address option (type 1) names the MAC
			if opts := body[24:]; len(opts) >= 8 && opts[0] == 1 && opts[1] == 1 {
				c.MAC = net.HardwareAddr(opts[2:8])
			}
			return c, nil
		case 136:
			if len(body) < 24 {
				return Claim{}, fmt.Errorf("%w: neighbor advertisement is %d bytes, want 24", ErrTruncated, len(body))
			}
			c := Claim{
				Class: ClassNA, Op: typ, Target: dst, MAC: srcMAC,
				Address:   netip.AddrFrom16([16]byte(body[8:24])),
				Solicited: body[4]&0x40 != 0, Override: body[4]&0x20 != 0,
			}
			// the target link-layer address option (type 2) names the MAC
			if opts := body[24:]; len(opts) >= 8 && opts[0] == 2 && opts[1] == 1 {
				c.MAC = net.HardwareAddr(opts[2:8])
			}
			return c, nil
		default:
			return Claim{}, fmt.Errorf("%w: ICMPv6 type %d", ErrNoClaim, typ)
		}
	case 17: // UDP
		if len(body) < 9 {
			return Claim{}, fmt.Errorf("%w: UDP header cut", ErrTruncated)
		}
		if port, msg := binary.BigEndian.Uint16(body[2:]), int(body[8]); port == 546 && (msg == 2 || msg == 7) {
			return Claim{Class: ClassDHCPv6, Op: msg, Address: src, MAC: srcMAC, Target: dst}, nil
		}
		return Claim{}, fmt.Errorf("%w: UDP not a DHCPv6 answer", ErrNoClaim)
	}
	return Claim{}, fmt.Errorf("%w: IPv6 next header %d", ErrNoClaim, nh)
}
