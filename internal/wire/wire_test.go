// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

var (
	attMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	gw4    = netip.MustParseAddr("10.0.0.1")
	vic4   = netip.MustParseAddr("10.0.0.2")
	att4   = netip.MustParseAddr("10.0.0.66")
	gw6    = netip.MustParseAddr("fd00::1")
	att6   = netip.MustParseAddr("fd00::66")
	vic6   = netip.MustParseAddr("fd00::2")
)

func ether(proto uint16, payload []byte) []byte {
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, attMAC...)
	b = binary.BigEndian.AppendUint16(b, proto)
	return append(b, payload...)
}

func arp(op uint16, sender, target netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4}
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, attMAC...)
	b = append(b, sender.AsSlice()...)
	b = append(b, make([]byte, 6)...)
	return append(b, target.AsSlice()...)
}

func ipv6(nh byte, src, dst netip.Addr, body []byte) []byte {
	b := []byte{0x60, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = append(b, nh, 255)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	return append(b, body...)
}

func na(flags byte, target netip.Addr) []byte {
	b := []byte{136, 0, 0, 0, flags, 0, 0, 0}
	b = append(b, target.AsSlice()...)
	return append(b, append([]byte{2, 1}, attMAC...)...)
}

func ns(target netip.Addr) []byte {
	b := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	b = append(b, target.AsSlice()...)
	return append(b, append([]byte{1, 1}, attMAC...)...)
}

func raw(data []byte) *Frame { return &Frame{SockType: 3, Flags: FlagLinkHeader, Data: data} }

var attIface = &Interface{Index: 2, Name: "eth0", Addrs: []netip.Addr{att4, att6, netip.MustParseAddr("fe80::66")}}

func TestJudge(t *testing.T) {
	vlan := func(inner []byte) []byte { // one 802.1Q tag before the ethertype
		return append(append(append([]byte{}, inner[:12]...), 0x81, 0, 0, 7), inner[12:]...)
	}
	cases := []struct {
		name      string
		frame     *Frame
		lie       bool
		behaviour string
		technique string
	}{
		{"ARP reply claiming the gateway", raw(ether(0x0806, arp(2, gw4, vic4))), true, "arp_spoofer", "T1557.002"},
		{"ARP request claiming the gateway", raw(ether(0x0806, arp(1, gw4, vic4))), true, "arp_spoofer", "T1557.002"},
		{"ARP on a dgram socket", &Frame{SockType: 2, Protocol: 0x0806, Data: arp(2, gw4, vic4)}, true, "arp_spoofer", "T1557.002"},
		{"VLAN-tagged ARP claim", raw(vlan(ether(0x0806, arp(2, gw4, vic4)))), true, "arp_spoofer", "T1557.002"},
		{"ARP request for its own address", raw(ether(0x0806, arp(1, att4, gw4))), false, "", ""},
		{"gratuitous ARP for its own address", raw(ether(0x0806, arp(2, att4, att4))), false, "", ""},
		{"ARP probe from 0.0.0.0", raw(ether(0x0806, arp(1, netip.IPv4Unspecified(), gw4))), false, "", ""},
		{"NA with override for the gateway", raw(ether(0x86dd, ipv6(58, att6, gw6.Next(), na(0x60, gw6)))), true, "ndp_spoofer", "T1557"},
		{"unsolicited NA for the gateway", raw(ether(0x86dd, ipv6(58, att6, att6, na(0x00, gw6)))), true, "ndp_spoofer", "T1557"},
		{"solicited NA without override (proxy ND)", raw(ether(0x86dd, ipv6(58, att6, att6, na(0x40, gw6)))), false, "", ""},
		{"unsolicited NA for its own address", raw(ether(0x86dd, ipv6(58, att6, att6, na(0x20, att6)))), false, "", ""},
		{"router advertisement", raw(ether(0x86dd, ipv6(58, att6, gw6, append([]byte{134, 0, 0, 0}, make([]byte, 12)...)))), true, "rogue_ipv6_router", "T1557"},
		{"ARP reply claiming the gateway, IEEE 802 hardware type", raw(ether(0x0806, append([]byte{0, 6}, arp(2, gw4, vic4)[2:]...))), true, "arp_spoofer", "T1557.002"},
		{"NA behind a destination-options header", raw(ether(0x86dd, ipv6(60, att6, gw6.Next(), append([]byte{58, 0, 1, 4, 0, 0, 0, 0}, na(0x20, gw6)...)))), true, "ndp_spoofer", "T1557"},
		{"RA behind hop-by-hop and destination options", raw(ether(0x86dd, ipv6(0, att6, gw6, append([]byte{60, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0}, append([]byte{134, 0, 0, 0}, make([]byte, 12)...)...)))), true, "rogue_ipv6_router", "T1557"},
		{"NS from the gateway's address", raw(ether(0x86dd, ipv6(58, gw6, vic6, ns(vic6)))), true, "ndp_spoofer", "T1557"},
		{"NS from its own address", raw(ether(0x86dd, ipv6(58, att6, gw6, ns(gw6)))), false, "", ""},
		{"redirect", raw(ether(0x86dd, ipv6(58, att6, gw6, append([]byte{137, 0, 0, 0}, make([]byte, 36)...)))), true, "icmpv6_redirector", "T1557"},
		{"DHCPv6 reply", raw(ether(0x86dd, ipv6(17, att6, gw6, []byte{2, 35, 2, 34, 0, 12, 0, 0, 7, 0, 0, 1}))), true, "rogue_dhcpv6_server", "T1557.003"},
	}
	for _, c := range cases {
		claim, err := Parse(c.frame)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		v := Judge(&claim, attIface)
		if v.Lie != c.lie || v.Behaviour != c.behaviour || v.TechniqueID != c.technique {
			t.Errorf("%s: lie %t behaviour %q technique %q, want %t %q %q", c.name, v.Lie, v.Behaviour, v.TechniqueID, c.lie, c.behaviour, c.technique)
		}
		if v.Lie && !strings.Contains(v.Detail, "eth0") {
			t.Errorf("%s: detail %q does not name the interface", c.name, v.Detail)
		}
	}
}

func TestParseBadFrames(t *testing.T) {
	full := ether(0x0806, arp(2, gw4, vic4))
	cases := []struct {
		name  string
		frame *Frame
		want  error
	}{
		{"empty", raw(nil), ErrTruncated},
		{"Ethernet header cut", raw(full[:10]), ErrTruncated},
		{"ARP body cut", raw(full[:30]), ErrTruncated},
		{"ARP for frame relay", raw(ether(0x0806, append([]byte{0, 15}, arp(2, gw4, vic4)[2:]...))), ErrMalformed},
		{"NS from :: (duplicate address detection)", raw(ether(0x86dd, ipv6(58, netip.IPv6Unspecified(), gw6, ns(gw6)))), ErrNoClaim},
		{"extension header cut", raw(ether(0x86dd, ipv6(60, att6, gw6, []byte{58, 4, 0, 0}))), ErrTruncated},
		{"RARP opcode", raw(ether(0x0806, append(arp(2, gw4, vic4)[:6], append([]byte{0, 3}, arp(2, gw4, vic4)[8:]...)...))), ErrNoClaim},
		{"IPv4 frame", raw(ether(0x0800, make([]byte, 40))), ErrNoClaim},
		{"IPv6 header cut", raw(ether(0x86dd, make([]byte, 20))), ErrTruncated},
		{"IPv6 frame claiming version 4", raw(ether(0x86dd, append([]byte{0x40}, make([]byte, 60)...))), ErrMalformed},
		{"NA cut before its target", raw(ether(0x86dd, ipv6(58, att6, gw6, na(0x20, gw6)[:12]))), ErrTruncated},
		{"echo request", raw(ether(0x86dd, ipv6(58, att6, gw6, []byte{128, 0, 0, 0, 0, 0}))), ErrNoClaim},
		{"UDP to another port", raw(ether(0x86dd, ipv6(17, att6, gw6, []byte{2, 35, 0, 53, 0, 12, 0, 0, 7}))), ErrNoClaim},
		{"three VLAN tags", raw(append(append(append([]byte{}, full[:12]...), 0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3), full[12:]...)), ErrNoClaim},
	}
	for _, c := range cases {
		if _, err := Parse(c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func record(f func(b []byte)) []byte {
	b := make([]byte, RecordSize)
	f(b)
	return b
}

func TestDecode(t *testing.T) {
	frame := ether(0x0806, arp(2, gw4, vic4))
	b := record(func(b []byte) {
		le := binary.LittleEndian
		le.PutUint64(b[offStart:], 7e9)
		le.PutUint64(b[offExecStart:], 5e9)
		le.PutUint32(b[offTGID:], 4242)
		le.PutUint32(b[offExecTGID:], 4200)
		le.PutUint32(b[offNetNS:], 4026532000)
		le.PutUint32(b[offIfIndex:], 2)
		le.PutUint16(b[offSockType:], 3)
		b[offProtocol], b[offProtocol+1] = 0x08, 0x06
		le.PutUint16(b[offLen:], uint16(len(frame)))
		le.PutUint16(b[offFlags:], FlagLinkHeader)
		copy(b[offComm:], "python3")
		copy(b[offData:], frame)
	})
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.PID != 4242 || f.ExecPID != 4200 || f.ExecStartBootTimeNs != 5e9 || f.NetNS != 4026532000 || f.IfIndex != 2 ||
		f.Protocol != 0x0806 || f.Comm != "python3" || string(f.Data) != string(frame) || !f.Has(FlagLinkHeader) {
		t.Errorf("decoded %+v", f)
	}
	if _, err := Decode(b[:RecordSize-1]); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("short record: %v", err)
	}
	binary.LittleEndian.PutUint16(b[offLen:], CaptureBytes+1)
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "len") {
		t.Errorf("len past the capture: %v", err)
	}
}

// FuzzParse: any record decodes or fails cleanly, and a parsed claim is
// judged without panicking, a lie always saying why.
func FuzzParse(f *testing.F) {
	f.Add(uint16(3), uint16(FlagLinkHeader), uint16(0), ether(0x0806, arp(2, gw4, vic4)))
	f.Add(uint16(2), uint16(0), uint16(0x86dd), ipv6(58, att6, gw6, na(0x20, gw6)))
	f.Add(uint16(3), uint16(FlagLinkHeader), uint16(0), ether(0x86dd, ipv6(17, att6, gw6, []byte{2, 35, 2, 34, 0, 12, 0, 0, 7})))
	f.Fuzz(func(t *testing.T, sockType, flags, proto uint16, data []byte) {
		b := record(func(b []byte) {
			binary.LittleEndian.PutUint16(b[offSockType:], sockType)
			binary.LittleEndian.PutUint16(b[offFlags:], flags)
			binary.BigEndian.PutUint16(b[offProtocol:], proto)
			n := copy(b[offData:offData+CaptureBytes], data)
			binary.LittleEndian.PutUint16(b[offLen:], uint16(n))
		})
		fr, err := Decode(b)
		if err != nil {
			t.Fatalf("a well-formed record failed to decode: %v", err)
		}
		c, err := Parse(&fr)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoClaim) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if v := Judge(&c, attIface); v.Lie && (v.Detail == "" || v.TechniqueID == "") {
			t.Fatalf("a lie without detail or technique: %+v", v)
		}
	})
}
