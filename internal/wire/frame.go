// SPDX-License-Identifier: Apache-2.0

// Package wire reads the frames the kernel's behaviour tier sends up (a
// frame a process sent through a packet socket that can carry a claim
// about an address), parses the claim and decides whether it is a lie. It
// is pure Go on bytes and fuzzed; the addresses an interface really holds
// come through the Interfaces seam.
package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/mitmexec/mitmexec/internal/event"
)

// Frame flags (enum frame_flag in bpf/mitmexec.h; internal/tracer's
// TestABIMatchesC checks them).
const (
	FlagLinkHeader  = 1 << 0 // Data starts with the Ethernet header
	FlagTxRing      = 1 << 1 // read back from the socket's TX ring
	FlagQdiscBypass = 1 << 2 // PACKET_QDISC_BYPASS: tc never saw it
	FlagDeviceName  = 1 << 3 // SOCK_PACKET: Device names the interface
	FlagDenied      = 1 << 4 // refused by the LSM hook: it never left
	FlagBeforeSend  = 1 << 5 // read by the LSM hook, before the send
	FlagKernelLie   = 1 << 6 // the kernel found the sending device does not hold the claimed address
)

// Kernel counters of the behaviour tier (enum frame_counter in
// bpf/mitmexec.h).
const (
	CounterSends = iota
	CounterSubmitted
	CounterReserveFailed
	CounterUnreadable
	CounterDenied
)

// Layout of struct frame_event (bpf/mitmexec.h); the tracer's layout test pins
// these to what bpf2go generated from the C.
const (
	offBootTime  = 0
	offStart     = 8
	offExecStart = 16
	offExeIno    = 24
	offExeCtime  = 32
	offExeDev    = 40
	offTGID      = 44
	offTID       = 48
	offExecTGID  = 52
	offUID       = 56
	offGID       = 60
	offNetNS     = 64
	offIfIndex   = 68
	offSent      = 72
	offSockType  = 76
	offProtocol  = 78
	offLen       = 80
	offFlags     = 82
	offComm      = 84
	offDevice    = 100
	offData      = 116
	CaptureBytes = 256
	// RecordSize is sizeof(struct frame_event): 8-byte aligned.
	RecordSize = (offData + CaptureBytes + 7) &^ 7
)

// Offsets names each decoded field's offset, for the layout test.
func Offsets() map[string]int {
	return map[string]int{
		"KtimeBootNs": offBootTime, "StartBoottimeNs": offStart, "ExecStartBoottimeNs": offExecStart, "ExecTgid": offExecTGID, "ExeIno": offExeIno, "ExeCtimeNs": offExeCtime,
		"ExeDev": offExeDev, "Tgid": offTGID, "Tid": offTID, "Uid": offUID, "Gid": offGID, "Netns": offNetNS,
		"Ifindex": offIfIndex, "Sent": offSent, "SkType": offSockType, "Protocol": offProtocol, "Len": offLen,
		"Flags": offFlags, "Comm": offComm, "Device": offDevice, "Data": offData,
	}
}

// Frame is one frame a process sent through a packet socket, with the
// sender as the kernel saw it at the moment it sent.
type Frame struct {
	BootTimeNs      uint64 // CLOCK_BOOTTIME of the send
	StartBootTimeNs uint64 // the sender's start: pins its pid
	// ExecPID and ExecStartBootTimeNs name the process whose exec started
	// the program the sender runs: the sender itself, or the ancestor it
	// forked from without exec'ing.
	ExecPID             uint32
	ExecStartBootTimeNs uint64
	Exe                 event.FileID
	PID, TID            uint32 // thread group (process) and thread
	UID, GID            uint32
	NetNS               uint32 // inode of the socket's network namespace
	IfIndex             int32  // 0: not known from the send (SOCK_PACKET names Device)
	Sent                uint32
	SockType            uint16 // SOCK_RAW 3, SOCK_DGRAM 2, SOCK_PACKET 10
	Protocol            uint16 // the ethertype of a dgram socket's frame, host order
	Flags               uint16
	Comm, Device        string
	Data                []byte // the frame's first bytes (from the link header when FlagLinkHeader)
}

// Has reports whether flag is set.
func (f *Frame) Has(flag uint16) bool { return f.Flags&flag != 0 }

// Decode reads one record of the frame ring. Data aliases b.
func Decode(b []byte) (Frame, error) {
	if len(b) < RecordSize {
		return Frame{}, fmt.Errorf("frame record is %d bytes, want %d", len(b), RecordSize)
	}
	le := binary.LittleEndian
	n := int(le.Uint16(b[offLen:]))
	if n > CaptureBytes {
		return Frame{}, fmt.Errorf("frame record len is %d, the capture holds at most %d", n, CaptureBytes)
	}
	return Frame{
		BootTimeNs:          le.Uint64(b[offBootTime:]),
		StartBootTimeNs:     le.Uint64(b[offStart:]),
		ExecPID:             le.Uint32(b[offExecTGID:]),
		ExecStartBootTimeNs: le.Uint64(b[offExecStart:]),
		Exe:                 event.FileID{Ino: le.Uint64(b[offExeIno:]), CtimeNs: le.Uint64(b[offExeCtime:]), Dev: le.Uint32(b[offExeDev:])},
		PID:                 le.Uint32(b[offTGID:]),
		TID:                 le.Uint32(b[offTID:]),
		UID:                 le.Uint32(b[offUID:]),
		GID:                 le.Uint32(b[offGID:]),
		NetNS:               le.Uint32(b[offNetNS:]),
		IfIndex:             int32(le.Uint32(b[offIfIndex:])),
		Sent:                le.Uint32(b[offSent:]),
		SockType:            le.Uint16(b[offSockType:]),
		Protocol:            binary.BigEndian.Uint16(b[offProtocol:]),
		Flags:               le.Uint16(b[offFlags:]),
		Comm:                cstring(b[offComm : offComm+16]),
		Device:              cstring(b[offDevice : offDevice+16]),
		Data:                b[offData : offData+n],
	}, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
