// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// TestFrameHook sends ARP frames on the loopback interface through every
// way user space has to send on a packet socket, and checks that the
// kernel sends each up, read from the send, attributed to this process.
// On a kernel without the sock_send_length tracepoint (before 6.4) the
// tier must say so and stay off while the exec tracer runs.
func TestFrameHook(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := New(Options{Frames: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// The tier is on wherever the kernel has the tracepoint; without it,
	// where the LSM hook attaches (the kernel matrix requires that on 6.1
	// with bpf in lsm=: TestFrameDeny's FRAME-DENY line, guest.sh).
	if err := tr.FramesErr(); err != nil {
		if kernelHasFrameTracepoint(t) {
			t.Fatalf("the kernel has sock_send_length but the tier is off: %v", err)
		}
		if !strings.Contains(err.Error(), "6.4") || !strings.Contains(err.Error(), "lsm") {
			t.Fatalf("the tier is off, but the error does not say why (Linux 6.4, the LSM hook): %v", err)
		}
		t.Logf("behaviour tier off here, as it must be: %v", err)
		return
	}
	hook, _ := tr.FramesHook()
	t.Logf("behaviour tier on %s", hook)
	sendFlags := func(f uint16) uint16 { // the LSM hook reads before the send, where no bypass flag is read
		if hook == frameLSM { // the LSM hook alone
			return f&^wire.FlagQdiscBypass | wire.FlagBeforeSend
		}
		return f
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Flags&net.FlagUp == 0 { // a VM of the kernel matrix may boot with lo down
		link, err := netlink.LinkByIndex(lo.Index)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("bring lo up: %v", err)
		}
	}
	// Each path claims its own address in 127.77.0.0/16, so its frame is told apart.
	paths := []struct {
		name  string
		flags uint16 // flags the record must carry
		send  func(t *testing.T, claim [4]byte)
	}{
		{"raw send", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, false, func(fd int) error { return unix.Send(fd, arpFrame(c), 0) })
		}},
		{"raw write", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, false, func(fd int) error { _, err := unix.Write(fd, arpFrame(c)); return err })
		}},
		{"raw writev", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, false, func(fd int) error { _, err := unix.Writev(fd, [][]byte{arpFrame(c)}); return err })
		}},
		{"raw sendmsg", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, false, func(fd int) error { return unix.Sendmsg(fd, arpFrame(c), nil, nil, 0) })
		}},
		{"raw sendmmsg", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, false, func(fd int) error { return sendmmsg(fd, [][]byte{arpFrame([4]byte{127, 77, 9, 9}), arpFrame(c)}) })
		}},
		{"raw PACKET_QDISC_BYPASS", wire.FlagLinkHeader | wire.FlagQdiscBypass, func(t *testing.T, c [4]byte) {
			rawSocket(t, lo.Index, true, func(fd int) error { return unix.Send(fd, arpFrame(c), 0) })
		}},
		{"dgram sendto", 0, func(t *testing.T, c [4]byte) {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: lo.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
			if err := unix.Sendto(fd, arpFrame(c)[14:], 0, to); err != nil {
				t.Fatal(err)
			}
		}},
		{"raw writev, header and body in two iovecs", wire.FlagLinkHeader, func(t *testing.T, c [4]byte) {
			f := arpFrame(c)
			rawSocket(t, lo.Index, false, func(fd int) error { _, err := unix.Writev(fd, [][]byte{f[:14], f[14:]}); return err })
		}},
		{"dgram sendmmsg, one address for all, the claim fifth", 0, func(t *testing.T, c [4]byte) {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			// the kernel asks the LSM only for the first message to an address
			var frames [][]byte
			for i := 0; i < 6; i++ {
				f := arpFrame([4]byte{127, 0, 0, 1})[14:]
				if i == 4 {
					f = arpFrame(c)[14:]
				}
				frames = append(frames, f)
			}
			to := unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(unix.ETH_P_ARP), Ifindex: int32(lo.Index), Halen: 6,
				Addr: [8]uint8{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
			if err := sendmmsgTo(fd, frames, &to); err != nil {
				t.Fatal(err)
			}
		}},
		{"SOCK_PACKET", wire.FlagLinkHeader | wire.FlagDeviceName, func(t *testing.T, c [4]byte) { sockPacket(t, arpFrame(c)) }},
		{"TX ring", wire.FlagLinkHeader | wire.FlagTxRing, func(t *testing.T, c [4]byte) { txRing(t, lo.Index, arpFrame(c)) }},
	}
	for i, p := range paths {
		claim := [4]byte{127, 77, 1, byte(i + 1)}
		p.send(t, claim)
		f, err := awaitFrame(tr, claim, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		if f.PID != uint32(os.Getpid()) || f.ExecPID != uint32(os.Getpid()) {
			t.Errorf("%s: frame from pid %d (exec %d), want %d", p.name, f.PID, f.ExecPID, os.Getpid())
		}
		// lo holds 127.0.0.1, not the claimed address: the kernel says so too
		if want := sendFlags(p.flags) | wire.FlagKernelLie; f.Flags&want != want {
			t.Errorf("%s: flags %#x, want %#x set", p.name, f.Flags, want)
		}
		if p.flags&wire.FlagDeviceName != 0 {
			if f.Device != "lo" {
				t.Errorf("%s: device %q, want lo", p.name, f.Device)
			}
		} else if f.IfIndex != int32(lo.Index) {
			t.Errorf("%s: ifindex %d, want lo's %d", p.name, f.IfIndex, lo.Index)
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/net", &st); err == nil && f.NetNS != uint32(st.Ino) {
			t.Errorf("%s: netns %d, want ours %d", p.name, f.NetNS, st.Ino)
		}
		c, err := wire.Parse(&f)
		if err != nil || c.Class != wire.ClassARP {
			t.Errorf("%s: the frame sent up does not parse as the ARP claim sent: %v %+v", p.name, err, c)
		}
	}
	// A neighbour advertisement behind a destination-options header (the
	// kernel accepts it; RA-Guard does not look past the header).
	target := [16]byte{0xfd, 0x77, 15: 1}
	rawSocket(t, lo.Index, false, func(fd int) error { return unix.Send(fd, naBehindDstOpts(target), 0) })
	f, err := awaitClaim(tr, func(c wire.Claim) bool { return c.Class == wire.ClassNA && c.Address.As16() == target }, 5*time.Second)
	if err != nil || f.Flags&wire.FlagKernelLie == 0 {
		t.Errorf("NA behind a destination-options header: %v, flags %#x: want it sent up, a lie to the kernel too", err, f.Flags)
	}
	if s, err := tr.FrameStats(); err != nil || s.Sends < uint64(len(paths)) {
		t.Errorf("frame counters %+v (%v): want at least %d sends", s, err, len(paths))
	}
}

// kernelHasFrameTracepoint looks for the tracepoint in the kernel's BTF.
func kernelHasFrameTracepoint(t *testing.T) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("kernel BTF: %v", err)
	}
	var typ *btf.Typedef
	return spec.TypeByName("btf_trace_sock_send_length", &typ) == nil
}

func awaitFrame(tr *Tracer, claim [4]byte, d time.Duration) (wire.Frame, error) {
	return awaitClaim(tr, func(c wire.Claim) bool { return c.Address.Is4() && c.Address.As4() == claim }, d)
}

func awaitClaim(tr *Tracer, match func(wire.Claim) bool, d time.Duration) (wire.Frame, error) {
	deadline := time.After(d)
	for {
		select {
		case raw, ok := <-tr.Frames():
			if !ok {
				return wire.Frame{}, errors.New("frame channel closed")
			}
			f, err := wire.Decode(raw)
			if err != nil {
				return wire.Frame{}, err
			}
			if c, err := wire.Parse(&f); err == nil && match(c) {
				return f, nil
			}
		case <-deadline:
			return wire.Frame{}, errors.New("no frame record within the deadline")
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// naBehindDstOpts is an Ethernet frame with an unsolicited, overriding
// neighbour advertisement for target behind an 8-byte destination-options
// header.
func naBehindDstOpts(target [16]byte) []byte {
	mac := []byte{2, 0, 0, 0, 0, 0x77}
	b := append([]byte{0x33, 0x33, 0, 0, 0, 1}, mac...)
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 40, 60, 255)
	src := [16]byte{0: 0xfe, 1: 0x80, 14: 0x77, 15: 1}
	dst := [16]byte{0: 0xff, 1: 0x02, 15: 1}
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	b = append(b, 58, 0, 1, 4, 0, 0, 0, 0)     // destination options: next header ICMPv6
	b = append(b, 136, 0, 0, 0, 0x20, 0, 0, 0) // NA, override
	b = append(b, target[:]...)
	return append(b, append([]byte{2, 1}, mac...)...) // target link-layer address
}

// arpFrame is an Ethernet ARP request claiming claim is at 02:00:00:00:00:77.
func arpFrame(claim [4]byte) []byte {
	mac := []byte{2, 0, 0, 0, 0, 0x77}
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(b, mac...)
	b = append(b, claim[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1)
	return b
}

func rawSocket(t *testing.T, ifindex int, bypass bool, send func(fd int) error) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	if bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(fd); err != nil {
		t.Fatal(err)
	}
}

func sendmmsg(fd int, frames [][]byte) error { return sendmmsgTo(fd, frames, nil) }

func sendmmsgTo(fd int, frames [][]byte, to *unix.RawSockaddrLinklayer) error {
	type mmsghdr struct {
		hdr unix.Msghdr
		len uint32
		_   [4]byte
	}
	iovs := make([]unix.Iovec, len(frames))
	msgs := make([]mmsghdr, len(frames))
	for i, f := range frames {
		iovs[i].Base = &f[0]
		iovs[i].SetLen(len(f))
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.SetIovlen(1)
		if to != nil {
			msgs[i].hdr.Name = (*byte)(unsafe.Pointer(to))
			msgs[i].hdr.Namelen = uint32(unsafe.Sizeof(*to))
		}
	}
	_, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sockPacket sends through the old SOCK_PACKET interface, which names the
// device in a struct sockaddr (socket(AF_INET, SOCK_PACKET) is the same).
func sockPacket(t *testing.T, frame []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_PACKET, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var sa [16]byte
	binary.LittleEndian.PutUint16(sa[:], unix.AF_PACKET)
	copy(sa[2:], "lo")
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)), 0,
		uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if errno != 0 {
		t.Fatal(errno)
	}
}

// txRing sends one frame through a TPACKET_V2 TX ring: the frame is written
// into the mapped ring, and send(fd, NULL, 0) has the kernel send it.
func txRing(t *testing.T, ifindex int, frame []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		t.Fatal(err)
	}
	req := unix.TpacketReq{Block_size: 4096, Block_nr: 1, Frame_size: 2048, Frame_nr: 2}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	ring, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(ring)
	// tpacket2_hdr: tp_status, tp_len, ...; the data starts at
	// TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) = 32 (no PACKET_TX_HAS_OFF)
	copy(ring[32:], frame)
	binary.LittleEndian.PutUint32(ring[4:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(ring[0:], unix.TP_STATUS_SEND_REQUEST)
	if _, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, 0, 0, 0); errno != 0 {
		t.Fatal(errno)
	}
}

// TestFrameDeny: in block mode, where the BPF LSM is active, a frame that
// claims an address its device does not hold is refused before it leaves,
// and a truthful one passes; elsewhere the tier observes after the send and
// says it does not refuse.
func TestFrameDeny(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := New(Options{Frames: true, FrameDeny: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	hook, refuses := tr.FramesHook()
	if !strings.HasPrefix(hook, frameLSM) {
		if refuses || tr.FramesLSMErr() == nil {
			t.Fatalf("the tier is on %q, refusing %t, LSM error %v: off the LSM hook it cannot refuse, and must say why", hook, refuses, tr.FramesLSMErr())
		}
		t.Logf("FRAME-DENY: none (the LSM hook did not attach: %v); lies are killed after the send", tr.FramesLSMErr())
		return
	}
	if !refuses {
		t.Fatalf("block mode on the LSM hook: not refusing")
	}
	t.Logf("FRAME-DENY: %s", frameLSM)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	var lieErr, truthErr error
	rawSocket(t, lo.Index, false, func(fd int) error {
		lieErr = unix.Send(fd, arpFrame([4]byte{127, 77, 3, 1}), 0) // lo holds 127.0.0.1, not 127.77.3.1
		truthErr = unix.Send(fd, arpFrame([4]byte{127, 0, 0, 1}), 0)
		return nil
	})
	if !errors.Is(lieErr, unix.EPERM) {
		t.Errorf("a lying frame: send returned %v, want EPERM", lieErr)
	}
	if truthErr != nil {
		t.Errorf("a truthful frame: send returned %v, want it sent", truthErr)
	}
	f, err := awaitFrame(tr, [4]byte{127, 77, 3, 1}, 5*time.Second)
	if err != nil || f.Flags&wire.FlagDenied == 0 {
		t.Errorf("the refused frame: %v, flags %#x: want it sent up marked denied", err, f.Flags)
	}
	if s, err := tr.FrameStats(); err != nil || s.Denied == 0 {
		t.Errorf("frame counters %+v (%v): want a denial counted", s, err)
	}
	// an executable an allow entry names is not refused in the kernel
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id, err := fileid.Path(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.AllowFrameSender(id); err != nil {
		t.Fatal(err)
	}
	rawSocket(t, lo.Index, false, func(fd int) error {
		lieErr = unix.Send(fd, arpFrame([4]byte{127, 77, 3, 2}), 0)
		return nil
	})
	if lieErr != nil {
		t.Errorf("a lie of an allowed executable: send returned %v, want it sent (user space judges it)", lieErr)
	}
}
