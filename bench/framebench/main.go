// SPDX-License-Identifier: Apache-2.0

//go:build linux

// framebench measures what the behaviour tier costs: BPF time per frame a
// process sends through a packet socket (truthful and lying), BPF time on
// an ordinary socket send (the family check it returns at), that forwarded
// traffic never runs it, and the collector's CPU per 1000 truthful and per
// 1000 lying frames. It makes its own network namespaces (a sender, a
// router, a receiver over veth pairs) and sends nothing beyond them.
//
//	sudo go run ./bench/framebench -otelcol $PWD/_build/otelcol-custom
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/test/harness"
)

func main() {
	otelcol := flag.String("otelcol", "", "absolute path of the built collector (_build/otelcol-custom); required")
	frames := flag.Int("frames", 20000, "frames per packet-socket workload")
	packets := flag.Int("packets", 200000, "UDP datagrams of the forwarding workload")
	flag.Parse()
	if err := run(*otelcol, *frames, *packets); err != nil {
		fmt.Fprintln(os.Stderr, "framebench:", err)
		os.Exit(1)
	}
}

type lan struct{ prefix string }

func (l lan) ns(n string) string { return l.prefix + "-" + n }

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}

// setup: snd (10.233.1.2) -- rtr (10.233.1.1 | 10.233.2.1) -- rcv (10.233.2.2)
func (l lan) setup() error {
	steps := [][]string{
		{"netns", "add", l.ns("snd")}, {"netns", "add", l.ns("rtr")}, {"netns", "add", l.ns("rcv")},
		{"-n", l.ns("snd"), "link", "add", "eth0", "type", "veth", "peer", "name", "a0", "netns", l.ns("rtr")},
		{"-n", l.ns("rcv"), "link", "add", "eth0", "type", "veth", "peer", "name", "b0", "netns", l.ns("rtr")},
		{"-n", l.ns("snd"), "addr", "add", "10.233.1.2/24", "dev", "eth0"},
		{"-n", l.ns("rtr"), "addr", "add", "10.233.1.1/24", "dev", "a0"},
		{"-n", l.ns("rtr"), "addr", "add", "10.233.2.1/24", "dev", "b0"},
		{"-n", l.ns("rcv"), "addr", "add", "10.233.2.2/24", "dev", "eth0"},
		{"-n", l.ns("snd"), "link", "set", "eth0", "up"}, {"-n", l.ns("rcv"), "link", "set", "eth0", "up"},
		{"-n", l.ns("rtr"), "link", "set", "a0", "up"}, {"-n", l.ns("rtr"), "link", "set", "b0", "up"},
		{"-n", l.ns("snd"), "route", "add", "10.233.2.0/24", "via", "10.233.1.1"},
		{"-n", l.ns("rcv"), "route", "add", "10.233.1.0/24", "via", "10.233.2.1"},
		{"netns", "exec", l.ns("rtr"), "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

func (l lan) teardown() {
	for _, n := range []string{"snd", "rtr", "rcv"} {
		exec.Command("ip", "netns", "del", l.ns(n)).Run()
	}
}

// inNetns runs f on a thread that has entered the namespace; the thread is
// not returned to Go's pool (it dies with the goroutine).
func inNetns(name string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err == nil {
			err = netns.Set(ns)
			ns.Close()
		}
		if err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

func arpFrame(mac net.HardwareAddr, claim net.IP) []byte {
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(b, mac...)
	b = append(b, claim.To4()...)
	return append(b, 0, 0, 0, 0, 0, 0, 10, 233, 1, 1)
}

// sendARP sends n ARP requests from snd's eth0 claiming claim.
func sendARP(l lan, n int, claim net.IP) error {
	return inNetns(l.ns("snd"), func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
			return err
		}
		f := arpFrame(ifc.HardwareAddr, claim)
		for i := 0; i < n; i++ {
			if err := unix.Send(fd, f, 0); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return err
			}
		}
		return nil
	})
}

// sendUDP sends n datagrams from snd to rcv through rtr.
func sendUDP(l lan, n int) error {
	return inNetns(l.ns("snd"), func() error {
		c, err := net.Dial("udp4", "10.233.2.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64)
		for i := 0; i < n; i++ {
			c.Write(buf) // ECONNREFUSED from an ICMP error is fine
		}
		return nil
	})
}

type progStats struct{ runs, ns uint64 }

func frameProgram(pid int) (*ebpf.Program, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if id, ok := strings.CutPrefix(line, "prog_id:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(id))
				p, err := ebpf.NewProgramFromID(ebpf.ProgramID(n))
				if err != nil {
					continue
				}
				if info, err := p.Info(); err == nil && info.Name == "frame_sent" {
					return p, nil
				}
				p.Close()
			}
		}
	}
	return nil, fmt.Errorf("the collector (pid %d) holds no frame_sent program", pid)
}

func stats(p *ebpf.Program) progStats {
	s, err := p.Stats()
	if err != nil {
		return progStats{}
	}
	return progStats{runs: s.RunCount, ns: uint64(s.Runtime.Nanoseconds())}
}

// setupDone is what run sets up for the workloads: the collector, its
// frame program, the namespaces.
type setupDone struct {
	col  *harness.Process
	prog *ebpf.Program
	lan  lan
}

func run(otelcol string, frames, packets int) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: it loads eBPF (the collector) and makes network namespaces")
	}
	if !filepath.IsAbs(otelcol) {
		return errors.New("-otelcol must be the absolute path of the built collector (make otelcol)")
	}
	closer, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	defer closer.Close()
	work, err := os.MkdirTemp("", "framebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	snk := harness.NewSink()
	srv, err := harness.Serve("127.0.0.1:0", snk)
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg, err := harness.WriteConfig(work, harness.ExportConfig("", srv.URL, false))
	if err != nil {
		return err
	}
	col, err := harness.StartCollector(harness.CollectorSpec{Bin: otelcol, ConfigPath: cfg, ReadyTimeout: time.Minute, StopGrace: 10 * time.Second})
	if err != nil {
		return err
	}
	defer col.Stop(10 * time.Second)
	prog, err := frameProgram(col.Pid())
	if err != nil {
		return err
	}
	defer prog.Close()
	l := lan{prefix: fmt.Sprintf("mxfb%d", os.Getpid())}
	defer l.teardown()
	if err := l.setup(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the collector settle
	return workloads(setupDone{col: col, prog: prog, lan: l}, frames, packets)
}

// measure runs work and returns the frame program's runs and run time
// over it and the collector's CPU per 1000 of n (ms; utime+stime, so in
// steps of 10 ms over the whole workload).
func (s setupDone) measure(name string, n int, work func() error) (progStats, float64, error) {
	s0 := stats(s.prog)
	c0, _ := harness.ProcStatCPU(s.col.Pid())
	if err := work(); err != nil {
		return progStats{}, 0, fmt.Errorf("%s: %w", name, err)
	}
	time.Sleep(time.Second) // the reader drains
	s1 := stats(s.prog)
	c1, _ := harness.ProcStatCPU(s.col.Pid())
	d := progStats{runs: s1.runs - s0.runs, ns: s1.ns - s0.ns}
	return d, float64(c1-c0) / float64(time.Millisecond) / float64(n) * 1000, nil
}

// workloads measures idle, truthful and lying ARP frames and forwarded UDP,
// and prints the figures and the checks.
func workloads(s setupDone, frames, packets int) error {
	l := s.lan
	_, idleCPU, _ := s.measure("idle", 1, func() error { time.Sleep(5 * time.Second); return nil })
	fmt.Printf("framebench: collector idle CPU %.2f ms/s (5 s window)\n", idleCPU/1000/5)
	truth, truthCPU, err := s.measure("truthful ARP", frames, func() error { return sendARP(l, frames, net.IPv4(10, 233, 1, 2)) })
	if err != nil {
		return err
	}
	lie, lieCPU, err := s.measure("lying ARP", frames, func() error { return sendARP(l, frames, net.IPv4(10, 233, 1, 1)) })
	if err != nil {
		return err
	}
	udp, _, err := s.measure("forwarded UDP", packets, func() error { return sendUDP(l, packets) })
	if err != nil {
		return err
	}
	fmt.Printf("framebench: truthful ARP frames: %d runs, BPF %.0f ns per frame, collector CPU %.2f ms per 1000 frames (idle included)\n", truth.runs, truth.perRun(), truthCPU)
	fmt.Printf("framebench: lying ARP frames: %d runs, BPF %.0f ns per frame, collector CPU %.2f ms per 1000 frames (one record, the rest folded)\n", lie.runs, lie.perRun(), lieCPU)
	fmt.Printf("framebench: %d UDP datagrams sent and forwarded by a router namespace: %d runs (%.2f per datagram: the sender's socket sends only, none on the forwarding path), BPF %.0f ns per run (the family check)\n",
		packets, udp.runs, float64(udp.runs)/float64(packets), udp.perRun())
	fmt.Printf("framebench: %s forwarding runs nothing (runs per forwarded datagram <= 1.01, the sender's own send)\n", verdict(float64(udp.runs)/float64(packets) <= 1.01))
	fmt.Printf("framebench: %s every packet-socket frame seen (runs >= frames sent, truthful and lying)\n", verdict(truth.runs >= uint64(frames) && lie.runs >= uint64(frames)))
	return nil
}

// perRun is the mean run time in ns, 0 without a run.
func (p progStats) perRun() float64 {
	if p.runs == 0 {
		return 0
	}
	return float64(p.ns) / float64(p.runs)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
