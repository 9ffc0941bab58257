// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// The behaviour tier against the real kernel: real MitM code poisons a
// real victim between network namespaces the test makes (a bridge with a
// gateway, a victim and an attacker; no route out of them), and each lie is
// reported with the sender's pid, each truthful frame is not.

const pythonDebian = "/usr/bin/python3" // Debian's, with python3-scapy; PATH's python3 may be another

// lan is three namespaces on a bridge in a fourth.
type lan struct {
	prefix string // namespace names: prefix-gw, -vic, -att, -br
	net4   string // "10.231.N"
	net6   string // "fd00:231:N"
}

func (n *lan) ns(host string) string { return n.prefix + "-" + host }

func newLAN(t *testing.T) *lan {
	t.Helper()
	for _, tool := range []string{"ip", pythonDebian} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is missing (test/setup.sh installs it): %v", tool, err)
		}
	}
	n := &lan{prefix: fmt.Sprintf("mxb%d", os.Getpid()%100000), net4: fmt.Sprintf("10.232.%d", os.Getpid()%250), net6: fmt.Sprintf("fd00:232:%x", os.Getpid()%65000)}
	t.Cleanup(func() {
		for _, h := range []string{"gw", "vic", "att", "br"} {
			exec.Command("ip", "netns", "del", n.ns(h)).Run()
		}
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", n.ns("br"))
	run("-n", n.ns("br"), "link", "add", "br0", "type", "bridge")
	run("-n", n.ns("br"), "link", "set", "br0", "up")
	for _, h := range []struct {
		name string
		host int
	}{{"gw", 1}, {"vic", 2}, {"att", 66}} {
		run("netns", "add", n.ns(h.name))
		run("-n", n.ns("br"), "link", "add", "p-"+h.name, "type", "veth", "peer", "name", "eth0", "netns", n.ns(h.name))
		run("-n", n.ns("br"), "link", "set", "p-"+h.name, "master", "br0", "up")
		run("-n", n.ns(h.name), "addr", "add", fmt.Sprintf("%s.%d/24", n.net4, h.host), "dev", "eth0")
		run("-n", n.ns(h.name), "addr", "add", fmt.Sprintf("%s::%x/64", n.net6, h.host), "dev", "eth0", "nodad")
		run("-n", n.ns(h.name), "link", "set", "eth0", "up")
		run("-n", n.ns(h.name), "link", "set", "lo", "up")
	}
	return n
}

// mac is the attacker's (or any host's) eth0 address.
func (n *lan) mac(t *testing.T, host string) string {
	out, err := exec.Command("ip", "netns", "exec", n.ns(host), "cat", "/sys/class/net/eth0/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// start runs argv in host's namespace and returns its pid; the process
// runs until it ends or stop is called.
type started struct {
	cmd    *exec.Cmd
	out    *strings.Builder
	exited chan struct{} // closed when the process has ended; err says how
	err    error
}

func (n *lan) start(t *testing.T, host string, argv ...string) *started {
	t.Helper()
	// ip netns exec execs the program in place: the pid is the program's
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns(host)}, argv...)...)
	out := new(strings.Builder)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	s := &started{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *started) pid() int { return s.cmd.Process.Pid }

// stop ends the process (TERM, then KILL) and says how it ended.
func (s *started) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(2 * time.Second):
	}
	s.cmd.Process.Kill()
	<-s.exited
	return s.err
}

// wait lets the process end by itself within d.
func (s *started) wait(d time.Duration) (error, bool) {
	select {
	case <-s.exited:
		return s.err, true
	case <-time.After(d):
		return nil, false
	}
}

func (l *liveReceiver) byPID(pid int) []liveRecord {
	var out []liveRecord
	for _, r := range l.records() {
		if p, _ := r.attrs["process.pid"].(int64); p == int64(pid) {
			out = append(out, r)
		}
	}
	return out
}

func (l *liveReceiver) waitPID(pid int, d time.Duration) []liveRecord {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := l.byPID(pid); len(got) > 0 {
			time.Sleep(300 * time.Millisecond) // let repeats arrive, if any
			return l.byPID(pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// pyARP sends count ARP frames claiming claimIP is at the sender's MAC,
// told to toIP, every gap seconds, through an AF_PACKET socket of type
// typ (raw: with the Ethernet header; dgram: the kernel builds it from
// sendto's sockaddr_ll).
func pyARP(typ string, op int, claimIP, toIP string, count int, gap float64) []string {
	return []string{pythonDebian, "-c", fmt.Sprintf(`
import socket, time
m = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
arp = bytes.fromhex("000108000604%04x") + m + socket.inet_aton(%q) + b"\0" * 6 + socket.inet_aton(%q)
if %q == "raw":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
    send = lambda: s.send(b"\xff" * 6 + m + b"\x08\x06" + arp)
else:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
    send = lambda: s.sendto(arp, ("eth0", 0x0806, 0, 0, b"\xff" * 6))
for _ in range(%d):
    send(); time.sleep(%v)
`, op, claimIP, toIP, typ, count, gap)}
}

func TestPrivilegedBehaviourLies(t *testing.T) {
	requirePrivileges(t)
	n := newLAN(t)
	l := startLive(t, nil)
	gw4, vic4, att4 := n.net4+".1", n.net4+".2", n.net4+".66"
	gw6 := n.net6 + "::1"
	attMAC := n.mac(t, "att")
	dir := t.TempDir()

	// A copy of thc-ipv6's parasite6 no static identity of the original
	// survives: other bytes in the ELF header's padding and at its end.
	ndcheck := filepath.Join(dir, "ndcheck")
	paddedCopy(t, "/usr/bin/atk6-parasite6", ndcheck)
	routerCopy := filepath.Join(dir, "netcfg")
	paddedCopy(t, "/usr/bin/atk6-fake_router6", routerCopy)

	// the victim keeps asking for the gateway, so a poisoner has something to answer
	// (and forgets the answer each time, so it asks again)
	pinger := n.start(t, "vic", "sh", "-c", fmt.Sprintf("while :; do ip -6 neigh flush dev eth0; ping -c 1 -W 1 %s; ping -6 -c 1 -W 1 %s; sleep 0.3; done", gw4, gw6))
	defer pinger.stop()

	type lie struct {
		name, behaviour, claim, address, technique string
		tool                                       string // the catalog's name where the exec names a tool
		argv                                       []string
		run                                        time.Duration
	}
	lies := []lie{
		{"scapy arp_mitm", "arp_spoofer", "arp", gw4, "T1557.002", "",
			[]string{pythonDebian, "-c", fmt.Sprintf(`from scapy.all import arp_mitm; arp_mitm(%q, %q, iface="eth0", inter=0.5)`, vic4, gw4)}, 4 * time.Second},
		{"ARP requests claiming the gateway, raw AF_PACKET", "arp_spoofer", "arp", gw4, "T1557.002", "", pyARP("raw", 1, gw4, vic4, 6, 0.3), 3 * time.Second},
		{"ARP replies claiming the gateway, dgram AF_PACKET", "arp_spoofer", "arp", gw4, "T1557.002", "", pyARP("dgram", 2, gw4, vic4, 6, 0.3), 3 * time.Second},
		{"patched parasite6 copy", "ndp_spoofer", "ndp_neighbor_advertisement", gw6, "T1557", "parasite6",
			[]string{ndcheck, "eth0"}, 4 * time.Second},
		{"scapy unsolicited NA claiming the gateway", "ndp_spoofer", "ndp_neighbor_advertisement", gw6, "T1557", "",
			[]string{pythonDebian, "-c", fmt.Sprintf(`from scapy.all import *
sendp(Ether(dst="33:33:00:00:00:01")/IPv6(src=%q, dst="ff02::1")/ICMPv6ND_NA(tgt=%q, R=1, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr=%q), iface="eth0", count=3, inter=0.3, verbose=0)`, n.net6+"::66", gw6, attMAC)}, 3 * time.Second},
		{"patched fake_router6 copy", "rogue_ipv6_router", "ndp_router_advertisement", "", "T1557", "fake_router6",
			[]string{routerCopy, "eth0", "fd00:bad::/64"}, 4 * time.Second},
		{"scapy DHCPv6 reply", "rogue_dhcpv6_server", "dhcpv6_server", "", "T1557.003", "",
			[]string{pythonDebian, "-c", fmt.Sprintf(`from scapy.all import *
sendp(Ether(dst="33:33:00:01:00:02")/IPv6(src="fe80::66", dst=%q)/UDP(sport=547, dport=546)/DHCP6_Reply(trid=1), iface="eth0", count=2, inter=0.3, verbose=0)`, n.net6+"::2")}, 3 * time.Second},
	}
	poisoned := false
	for _, c := range lies {
		p := n.start(t, "att", c.argv...)
		// while it runs, look whether the victim believes it
		for end := time.Now().Add(c.run); time.Now().Before(end); {
			if out, _ := exec.Command("ip", "-n", n.ns("vic"), "-4", "neigh", "show", gw4).CombinedOutput(); strings.Contains(string(out), attMAC) {
				poisoned = true
			}
			if _, ended := p.wait(200 * time.Millisecond); ended {
				break
			}
		}
		p.stop()
		got := l.waitPID(p.pid(), 10*time.Second)
		if len(got) == 0 {
			t.Errorf("%s (pid %d): no record; its output:\n%s", c.name, p.pid(), p.out.String())
			continue
		}
		var found bool
		for _, r := range got {
			a := r.attrs
			if a["mitmexec.match"] != "network_behaviour" || a["mitmexec.network.claim"] != c.claim {
				continue
			}
			if c.address != "" && a["mitmexec.network.claimed_address"] != c.address {
				continue
			}
			found = true
			// a sender whose exec named a catalog tool keeps its name
			if (a["mitmexec.tool.name"] != c.behaviour && a["mitmexec.tool.name"] != c.tool) || a["mitmexec.network.behaviour"] != c.behaviour {
				t.Errorf("%s: tool %v behaviour %v, want %s", c.name, a["mitmexec.tool.name"], a["mitmexec.network.behaviour"], c.behaviour)
			}
			if a["network.interface.name"] != "eth0" {
				t.Errorf("%s: interface %v, want eth0", c.name, a["network.interface.name"])
			}
			if _, ok := a["mitmexec.namespace.net"].(int64); !ok {
				t.Errorf("%s: no mitmexec.namespace.net", c.name)
			}
			if a["mitmexec.tool.technique.id"] != c.technique {
				t.Errorf("%s: technique %v, want %s", c.name, a["mitmexec.tool.technique.id"], c.technique)
			}
			if d, _ := a["mitmexec.match.detail"].(string); !strings.Contains(d, "eth0") {
				t.Errorf("%s: detail %q does not name the interface", c.name, d)
			}
			assertContract(t, c.name, r)
		}
		if !found {
			t.Errorf("%s: no %s record claiming %q among %d records of pid %d: %v", c.name, c.claim, c.address, len(got), p.pid(), got[0].attrs)
		}
	}
	// One lie, and gone at once: the sender's namespace may be unreadable by
	// the time user space judges, and the kernel's own verdict carries it.
	quick := n.start(t, "att", pyARP("raw", 1, gw4, vic4, 1, 0)...)
	quick.wait(5 * time.Second)
	if got := l.waitPID(quick.pid(), 10*time.Second); len(got) != 1 || got[0].attrs["mitmexec.network.claimed_address"] != gw4 {
		t.Errorf("a single lie from a process that exits at once: %d records, want one claiming %s", len(got), gw4)
	}
	// The lies were real: the victim's kernel believed one of them.
	if !poisoned {
		t.Errorf("the victim's neighbour table never took the attacker's MAC %s for the gateway: the lies did not reach it", attMAC)
	}
	_ = att4
}

// paddedCopy copies a program with bytes changed where nothing runs: the
// ELF header's padding (so the kernel's fingerprint differs) and bytes
// appended (so its hash does).
func paddedCopy(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		testenv.SkipOrFail(t, "%s is missing (test/setup.sh installs thc-ipv6): %v", src, err)
	}
	b[9] ^= 0x4d
	b = append(b, []byte("not the original")...)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedBehaviourTruths(t *testing.T) {
	requirePrivileges(t)
	n := newLAN(t)
	l := startLive(t, nil)
	gw4, vic4 := n.net4+".1", n.net4+".2"
	vicMAC := n.mac(t, "vic")
	truths := []struct {
		name string
		argv []string
		// sends: it sends through a packet socket, so the judge must see
		// its frames and find them truthful (a case that sends nothing
		// could not fail)
		sends bool
	}{
		{"arping the gateway", []string{"arping", "-c", "2", "-w", "3", "-I", "eth0", gw4}, true},
		{"arping -U for its own address", []string{"arping", "-U", "-c", "2", "-I", "eth0", "-s", vic4, vic4}, true},
		{"arping -A for its own address", []string{"arping", "-A", "-c", "2", "-I", "eth0", "-s", vic4, vic4}, true},
		// duplicate address detection of a free address, as a DHCP client
		// does before it takes one: the probe (sender 0.0.0.0) must not be
		// reported. Whether its frames are counted truthful is not asserted:
		// in CI they were counted only through another case's late frames
		// (the count is host-wide), and when probing the gateway arping
		// exits at the first reply, before the judge reads its namespace.
		{"arping -D, a probe from 0.0.0.0", []string{"arping", "-D", "-c", "2", "-w", "3", "-I", "eth0", n.net4 + ".77"}, false},
		{"scapy ARP scan", []string{pythonDebian, "-c", fmt.Sprintf(`from scapy.all import *
srp(Ether(dst="ff:ff:ff:ff:ff:ff")/ARP(pdst=%q), iface="eth0", timeout=1, verbose=0)`, n.net4+".0/29")}, true},
		{"scapy unsolicited NA for its own address", []string{pythonDebian, "-c", fmt.Sprintf(`from scapy.all import *
sendp(Ether(dst="33:33:00:00:00:01")/IPv6(src=%q, dst="ff02::1")/ICMPv6ND_NA(tgt=%q, R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr=%q), iface="eth0", count=2, verbose=0)`, n.net6+"::2", n.net6+"::2", vicMAC)}, true},
		{"a VIP announced right after it was added", []string{"sh", "-c", fmt.Sprintf("ip addr add %s.99/32 dev eth0 && arping -U -c 2 -I eth0 -s %s.99 %s.99", n.net4, n.net4, n.net4)}, true},
		{"tcpdump", []string{"tcpdump", "-n", "-i", "eth0", "-c", "5"}, false},
		{"the kernel's own ARP and ND", []string{"sh", "-c", fmt.Sprintf("ping -c 2 %s; ping -6 -c 2 %s", gw4, n.net6+"::1")}, false},
		{"ip_forward on", []string{"sysctl", "-w", "net.ipv4.ip_forward=1"}, false},
	}
	for _, c := range truths {
		for _, tool := range []string{c.argv[0]} {
			if _, err := exec.LookPath(tool); err != nil {
				testenv.SkipOrFail(t, "%s is missing (test/setup.sh installs it)", tool)
			}
		}
		before := l.rcv.frameCounts.Get(frameTruthful)
		p := n.start(t, "vic", c.argv...)
		if _, ended := p.wait(4 * time.Second); !ended {
			p.stop()
		}
		if got := l.waitPID(p.pid(), 2*time.Second); len(got) != 0 {
			t.Errorf("%s (pid %d): want no record, got %d: %v", c.name, p.pid(), len(got), got[0].attrs)
		}
		if c.sends && l.rcv.frameCounts.Get(frameTruthful) == before {
			counts := map[frameOutcome]uint64{}
			for _, o := range frameOutcomes {
				counts[o] = l.rcv.frameCounts.Get(o)
			}
			t.Errorf("%s: no frame of it was judged truthful: it was never seen (frames so far by outcome: %v)", c.name, counts)
		}
	}
	if c := l.rcv.frameCounts.Get(frameTruthful); c == 0 {
		t.Errorf("no frame was judged truthful: the truths above never reached the judge")
	}
}

func TestPrivilegedBehaviourKill(t *testing.T) {
	requirePrivileges(t)
	n := newLAN(t)
	l := startLive(t, func(c *Config) { c.NetworkBehaviour.Action = actionKill })
	gw4, vic4 := n.net4+".1", n.net4+".2"
	attMAC := n.mac(t, "att")
	// the victim knows the gateway
	if out, err := exec.Command("ip", "netns", "exec", n.ns("vic"), "ping", "-c", "1", "-W", "2", gw4).CombinedOutput(); err != nil {
		t.Fatalf("the victim cannot reach the gateway: %v\n%s", err, out)
	}
	hook, refuses := l.rcv.source.(frameSource).FramesHook()
	t.Logf("behaviour tier on %s, refusing lies: %t", hook, refuses)
	// the kernel matrix knows where the BPF LSM must refuse (test/kernels/guest.sh)
	if os.Getenv("MX_EXPECT_FRAME_DENY") == "1" && !refuses {
		t.Fatalf("block mode under the BPF LSM: the tier on %s does not refuse lies", hook)
	}

	// block mode: the spoofer is stopped at its first lie, long before its 30 s
	p := n.start(t, "att", pyARP("raw", 2, gw4, vic4, 100, 0.3)...)
	err, ended := p.wait(10 * time.Second)
	if !ended {
		t.Fatalf("block mode: the spoofer still runs 10 s after its first lie")
	}
	got := l.waitPID(p.pid(), 5*time.Second)
	if refuses {
		// the BPF LSM refused the frame before it left: the send failed
		// (EPERM) and the victim still has the gateway's own address
		if len(got) != 1 || got[0].attrs["mitmexec.action"] != "denied" {
			t.Errorf("block mode under the BPF LSM: want one record with action denied, got %d: %v", len(got), got)
		}
		out, _ := exec.Command("ip", "-n", n.ns("vic"), "-4", "neigh", "show", gw4).CombinedOutput()
		if strings.Contains(string(out), attMAC) {
			t.Errorf("block mode under the BPF LSM: the victim took the attacker's MAC for the gateway: the frame left\n%s", out)
		}
		if !strings.Contains(p.out.String(), "PermissionError") {
			if ws, ok := exitStatus(err); !ok || !ws.Signaled() {
				t.Errorf("block mode under the BPF LSM: the spoofer's send did not fail and it was not killed: %v\n%s", err, p.out.String())
			}
		}
		return
	}
	if ws, ok := exitStatus(err); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("block mode: the spoofer ended with %v, want SIGKILL", err)
	}
	if len(got) != 1 || got[0].attrs["mitmexec.action"] != "killed_late" {
		t.Errorf("block mode: want one record with action killed_late, got %d: %v", len(got), got)
	}
}

func exitStatus(err error) (syscall.WaitStatus, bool) {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ws, ok
}

func TestPrivilegedBehaviourFlood(t *testing.T) {
	requirePrivileges(t)
	n := newLAN(t)
	l := startLive(t, nil)
	gw4, vic4 := n.net4+".1", n.net4+".2"
	// a flood of 10,000 lies is one record, and every frame is accounted for
	before := l.rcv.frameCounts.Get(frameFolded)
	flood := n.start(t, "att", pyARP("raw", 2, gw4, vic4, 10000, 0)...)
	if _, ended := flood.wait(60 * time.Second); !ended {
		t.Fatal("the flood did not finish in 60 s")
	}
	recs := l.waitPID(flood.pid(), 5*time.Second)
	if len(recs) != 1 {
		t.Errorf("flood: want one record, got %d", len(recs))
	}
	time.Sleep(time.Second)
	fs, err := l.rcv.source.(frameSource).FrameStats()
	if err != nil {
		t.Fatal(err)
	}
	folded := l.rcv.frameCounts.Get(frameFolded) - before
	if folded+fs.ReserveFailed+fs.QueueDropped < 9000 {
		t.Errorf("flood: %d frames folded, %d lost in the ring, %d dropped from the queue: 10,000 sent", folded, fs.ReserveFailed, fs.QueueDropped)
	}
}
