// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Package tracer loads the exec tracer into the kernel, reads its ring buffer
// and writes verdicts back into its maps. It is the only package that talks to
// the kernel; everything after it works on bytes and is tested without root.
package tracer

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
)

// stragglerWait is how soon the reader looks again after a record; keep it
// above WAKEUP_GAP_NS in bpf/mitmexec.bpf.c.
const stragglerWait = 10 * time.Millisecond

// Tracer is a loaded and attached exec tracer.
type Tracer struct {
	maps    mitmexecMaps
	progs   []*ebpf.Program
	links   []link.Link
	hook    string
	envScan string // which scan of the loader's environment: "bpf_loop" or "bounded"
	deny    link.Link
	denyErr error
	reader  *ringbuf.Reader
	out     chan []byte

	opts          Options
	queueDropped  atomic.Uint64
	frames        frameTier
	framesDropped atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// Hook names the attach point in use and the loader-environment scan
// the exec program was built with.
func (t *Tracer) Hook() string { return t.hook }

// New loads the BPF objects, attaches the exec hook and starts reading. The
// error says what is missing when the kernel refuses.
func New(opts Options) (*Tracer, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if err := checkCapabilities(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain(fmt.Errorf("remove memlock limit: %w", err))
	}
	envScan, err := probeKernel(kernelProbes)
	if err != nil {
		return nil, err
	}
	spec, err := loadMitmexec()
	if err != nil {
		return nil, fmt.Errorf("load embedded BPF spec: %w", err)
	}

	t := &Tracer{opts: opts, done: make(chan struct{}), envScan: envScan}
	if err := t.attachExec(spec); err != nil {
		return nil, explain(err)
	}
	if opts.Deny {
		t.deny, t.denyErr = attachDeny(spec, &t.maps)
	} else {
		t.denyErr = errors.New("not requested")
	}
	if beforeConfig != nil {
		beforeConfig(t)
	}
	if opts.Frames {
		t.frames.err = t.attachFrames(spec)
	} else {
		t.frames.err = errors.New("not requested")
	}
	if err := t.writeConfig(); err != nil {
		t.release()
		return nil, err
	}
	rd, err := ringbuf.NewReader(t.maps.Events)
	if err != nil {
		t.release()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	t.reader = rd
	t.out = make(chan []byte, opts.QueueSize)
	t.wg.Add(1)
	go t.read()
	return t, nil
}

// attachExec loads and attaches the exec and fork hooks. tp_btf needs BTF
// and a trampoline-capable kernel; the raw tracepoint sees the same
// arguments without either. No probe says whether tp_btf attaches
// (cilium/ebpf's probe of the Tracing type loads an fentry program, which
// some kernels refuse while they accept tp_btf), so it is tried. Only the
// programs in use are loaded: a program that fails to verify would fail
// the whole collection. The error is the first flavour's.
func (t *Tracer) attachExec(spec *ebpf.CollectionSpec) error {
	var firstErr error
	for _, flavor := range []string{"btf", "raw"} {
		err := t.attachFlavor(spec, flavor)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// attachFlavor loads one flavour's exec and fork programs with their maps
// and attaches them; on failure nothing of it stays loaded.
func (t *Tracer) attachFlavor(spec *ebpf.CollectionSpec, flavor string) error {
	one := spec.Copy()
	execName, forkName := execProgram(flavor, t.envScan), "sched_process_fork_"+flavor
	for name := range one.Programs {
		if name != execName && name != forkName {
			delete(one.Programs, name)
		}
	}
	var objs struct {
		mitmexecMaps
		Exec *ebpf.Program `ebpf:"exec"`
		Fork *ebpf.Program `ebpf:"fork"`
	}
	one.Programs["exec"], one.Programs["fork"] = one.Programs[execName], one.Programs[forkName]
	delete(one.Programs, execName)
	delete(one.Programs, forkName)
	if err := one.LoadAndAssign(&objs, nil); err != nil {
		return err
	}
	links, err := attach(flavor, objs.Exec, objs.Fork)
	if err != nil {
		objs.Exec.Close()
		objs.Fork.Close()
		objs.mitmexecMaps.Close()
		return err
	}
	t.maps, t.progs, t.links = objs.mitmexecMaps, []*ebpf.Program{objs.Exec, objs.Fork}, links
	t.hook = hookName(flavor) + " (" + t.envScan + " environment scan)"
	return nil
}

// writeConfig writes what the programs read at run time: the collector's
// pid and the behaviour tier's mode, known once its hooks are attached.
func (t *Tracer) writeConfig() error {
	cfg := mitmexecConfig{SelfTgid: uint32(os.Getpid())}
	if t.frames.deny {
		cfg.FrameDeny = 1
	}
	if t.frames.lsmReports {
		cfg.FrameLsmReports = 1
	}
	if t.opts.SubmitAll {
		cfg.SubmitAll = 1
	}
	if err := t.maps.ConfigMap.Put(uint32(0), cfg); err != nil {
		return fmt.Errorf("write tracer config: %w", err)
	}
	return nil
}

// beforeConfig, when set by a test, runs after the programs are attached and
// before the tracer's configuration is written: it can make that write fail.
var beforeConfig func(*Tracer)

// execProgram names the exec program of a flavour ("btf", "raw") with an
// environment scan ("bpf_loop", "bounded"), as in bpf/mitmexec.bpf.c.
func execProgram(flavor, envScan string) string {
	if envScan == envScanBounded {
		return "sched_process_exec_" + flavor + "_bounded"
	}
	return "sched_process_exec_" + flavor
}

// The scans of the loader's environment (loader_only_lists in bpf/args.h).
const (
	envScanLoop    = "bpf_loop"
	envScanBounded = "bounded"
)

// probes are the kernel features the tracer needs, each a function so that
// a test can stand in for a kernel that lacks one. Each returns nil when
// the feature is there and an error wrapping ebpf.ErrNotSupported when not.
type probes struct {
	ringBuf    func() error // BPF_MAP_TYPE_RINGBUF, Linux 5.8
	kernelBTF  func() error // /sys/kernel/btf/vmlinux, for CO-RE in every program
	rawTP      func() error // BPF_PROG_TYPE_RAW_TRACEPOINT, Linux 4.17: the fallback hook
	bpfLoop    func() error // the bpf_loop helper, Linux 5.17
	kernelName func() string
}

var kernelProbes = probes{
	ringBuf: func() error { return features.HaveMapType(ebpf.RingBuf) },
	kernelBTF: func() error {
		_, err := btf.LoadKernelSpec()
		return err
	},
	rawTP: func() error { return features.HaveProgramType(ebpf.RawTracepoint) },
	// bpf_loop is a base helper, offered to every program type alike when
	// it exists, so the raw tracepoint answers for tp_btf too (cilium/ebpf
	// has no helper probe for tracing programs).
	bpfLoop:    func() error { return features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop) },
	kernelName: kernelRelease,
}

// probeKernel checks the kernel for what the tracer needs before anything is
// loaded, so that a missing feature is named with the release that has it
// instead of surfacing as a verifier log. It returns the environment scan
// to load: the bounded one where bpf_loop is missing.
func probeKernel(p probes) (string, error) {
	need := []struct {
		probe func() error
		what  string
	}{
		{p.ringBuf, "the BPF ring buffer map (Linux >= 5.8 has it)"},
		{p.kernelBTF, "BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF=y, Linux >= 5.4 has it)"},
		{p.rawTP, "raw tracepoint programs (Linux >= 4.17 has them)"},
	}
	for _, n := range need {
		if err := n.probe(); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("kernel %s lacks %s: %w", p.kernelName(), n.what, err)
			}
			return "", explain(fmt.Errorf("probe for %s: %w", n.what, err))
		}
	}
	// Only a conclusive "no" selects the bounded scan; an inconclusive
	// probe keeps bpf_loop, and a kernel that then refuses it fails to
	// load with the verifier's reason.
	if err := p.bpfLoop(); errors.Is(err, ebpf.ErrNotSupported) {
		return envScanBounded, nil
	}
	return envScanLoop, nil
}

// kernelRelease is the running kernel's release, as uname -r prints it.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(release unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func hookName(flavor string) string {
	if flavor == "btf" {
		return "tp_btf/sched_process_exec"
	}
	return "raw_tracepoint/sched_process_exec"
}

// attachDeny loads the LSM program on the tracer's own maps. Many kernels
// refuse lsm/ programs (no bpf in lsm=, or, as on the machine this was
// written on, EPERM for any of them); the exec hook's SIGKILL remains.
func attachDeny(spec *ebpf.CollectionSpec, maps *mitmexecMaps) (link.Link, error) {
	if err := bpfLSMActive(readFile); err != nil {
		return nil, err
	}
	one := spec.Copy()
	for name := range one.Programs {
		if name != "bprm_check_deny" {
			delete(one.Programs, name)
		}
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"bprm_check_deny"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: mapsByName(maps)}
	if err := one.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load lsm/bprm_check_security: %w", err)
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: objs.Prog})
	objs.Prog.Close() // the link holds the program
	if err != nil {
		return nil, fmt.Errorf("attach lsm/bprm_check_security: %w", err)
	}
	return l, nil
}

// mapsByName lists the loaded maps by their names in the C file, from the
// generated struct's tags, so another program can share them.
func mapsByName(maps *mitmexecMaps) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(maps).Elem()
	for i := 0; i < v.NumField(); i++ {
		if name := v.Type().Field(i).Tag.Get("ebpf"); name != "" {
			if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil {
				out[name] = m
			}
		}
	}
	return out
}

// Deny reports whether the LSM program refuses tool execs: nil when it is
// attached, else why not.
func (t *Tracer) Deny() error { return t.denyErr }

// attach attaches the exec hook, then the fork hook that feeds the process
// table; either failing undoes both.
func attach(flavor string, execProg, forkProg *ebpf.Program) ([]link.Link, error) {
	open := func(name string, p *ebpf.Program) (link.Link, error) {
		if flavor == "btf" {
			return link.AttachTracing(link.TracingOptions{Program: p})
		}
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: p})
	}
	execLink, err := open("sched_process_exec", execProg)
	if err != nil {
		return nil, err
	}
	forkLink, err := open("sched_process_fork", forkProg)
	if err != nil {
		execLink.Close()
		return nil, err
	}
	return []link.Link{execLink, forkLink}, nil
}

// checkCapabilities names the missing privilege before the kernel refuses
// with a bare EPERM (which cilium/ebpf would report as a memlock failure).
func checkCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil // cannot tell; let the kernel decide
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON)) {
		return nil
	}
	return fmt.Errorf("loading eBPF needs root or CAP_BPF+CAP_PERFMON, and this process (euid %d) has neither", os.Geteuid())
}

// explain turns the kernel's refusal into what the user must change.
func explain(err error) error {
	if err == nil {
		return errors.New("no exec hook could be attached")
	}
	switch {
	case errors.Is(err, os.ErrPermission), errors.Is(err, unix.EPERM):
		return fmt.Errorf("loading eBPF needs root or CAP_BPF+CAP_PERFMON (and CAP_SYS_RESOURCE on kernels before 5.11): %w", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("kernel lacks a feature the exec tracer needs (BTF at /sys/kernel/btf/vmlinux and Linux >= 5.8 for the ring buffer): %w", err)
	}
	if _, serr := os.Stat("/sys/kernel/btf/vmlinux"); serr != nil {
		return fmt.Errorf("kernel BTF is missing (/sys/kernel/btf/vmlinux; needs CONFIG_DEBUG_INFO_BTF=y): %w", err)
	}
	return fmt.Errorf("load exec tracer: %w", err)
}

// Records delivers raw records; it is closed after Close.
func (t *Tracer) Records() <-chan []byte { return t.out }

func (t *Tracer) read() {
	defer t.wg.Done()
	defer close(t.out)
	var rec ringbuf.Record
	var look readerLook
	for {
		t.reader.SetDeadline(look.deadline(time.Now(), t.opts.PollInterval))
		err := t.reader.ReadInto(&rec)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				look = look.next()
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			select {
			case <-t.done:
				return
			case <-time.After(stragglerWait):
				// an unexpected read error: do not spin on it
			}
			continue
		}
		look = lookStraggler
		buf := make([]byte, len(rec.RawSample))
		copy(buf, rec.RawSample)
		select {
		case t.out <- buf:
		default:
			t.queueDropped.Add(1)
		}
	}
}

// PutVerdict caches a verdict for a file identity in the kernel.
func (t *Tracer) PutVerdict(id event.FileID, v event.Verdict) error {
	key := mitmexecFileKey{Ino: id.Ino, CtimeNs: id.CtimeNs, Dev: id.Dev}
	return t.maps.Verdicts.Put(key, toVerdict(v))
}

// PutName marks a file name (the loaded file's dentry name) in the kernel.
func (t *Tracer) PutName(name string, v event.Verdict) error {
	var key mitmexecNameKey
	if len(name) >= len(key.Name) {
		return fmt.Errorf("name %q is %d bytes, the kernel name table holds at most %d", name, len(name), len(key.Name)-1)
	}
	for i := 0; i < len(name); i++ {
		key.Name[i] = int8(name[i])
	}
	return t.maps.Names.Put(key, toVerdict(v))
}

// Protect exempts a process from kills in the exec hook: pid while it is
// the process that started startTicks clock ticks after boot (its
// /proc/PID/stat start time; any start for pid 1).
func (t *Tracer) Protect(pid uint32, startTicks uint64) error {
	return t.maps.Protected.Put(pid, startTicks)
}

// PutFingerprint marks a content fingerprint in the kernel.
func (t *Tracer) PutFingerprint(fp event.Fingerprint, v event.Verdict) error {
	key := mitmexecFingerprintKey{Head: fp.Head}
	return t.maps.Fingerprints.Put(key, toVerdict(v))
}

func toVerdict(v event.Verdict) mitmexecVerdict {
	return mitmexecVerdict{ToolId: v.ToolID, Kind: v.Kind, Action: v.Action}
}

// Stats sums the kernel's per-CPU counters and adds the reader's.
func (t *Tracer) Stats() (Stats, error) {
	s := Stats{QueueDropped: t.queueDropped.Load()}
	for idx, dst := range map[uint32]*uint64{
		event.CounterExecs: &s.Execs, event.CounterSubmitted: &s.Submitted,
		event.CounterReserveFailed: &s.ReserveFailed, event.CounterKills: &s.Kills,
	} {
		var perCPU []uint64
		if err := t.maps.Counters.Lookup(idx, &perCPU); err != nil {
			return s, fmt.Errorf("read counter %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return s, nil
}

// Close detaches, stops the reader and frees the objects. Safe to call twice.
func (t *Tracer) Close() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.done)
		err = t.detach()
		t.wg.Wait()
		if cerr := t.closeObjects(); err == nil {
			err = cerr
		}
	})
	return err
}

// release undoes a New that failed after attaching: no reader runs yet.
func (t *Tracer) release() {
	t.detach()
	t.closeObjects()
}

// detach closes the links, so that the programs stop running, then the
// ring reader, which ends the read loop.
func (t *Tracer) detach() error {
	var err error
	keep := func(cerr error) {
		if cerr != nil && err == nil {
			err = cerr
		}
	}
	if t.deny != nil {
		keep(t.deny.Close())
	}
	for _, l := range t.links {
		keep(l.Close())
	}
	if t.reader != nil {
		keep(t.reader.Close())
	}
	keep(t.detachFrames())
	return err
}

// closeObjects frees the programs and the maps; the kernel frees each when
// its last reference (fd, link or program using the map) is gone.
func (t *Tracer) closeObjects() error {
	var err error
	for _, p := range t.progs {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if cerr := t.closeFrameProgram(); cerr != nil && err == nil {
		err = cerr
	}
	if cerr := t.maps.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
