// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// The behaviour tier: a process that puts a lie on the wire (a frame
// claiming someone else's address, sent through a packet socket) is
// reported whatever its bytes or its name, with the context of its exec.

// frameSource is the kernel's behaviour tier as the receiver sees it;
// *tracer.Tracer is one on Linux.
type frameSource interface {
	Frames() <-chan []byte
	FramesErr() error
	FramesHook() (hook string, refuses bool)
	AllowFrameSender(id event.FileID) error
	FrameStats() (tracer.FrameStats, error)
}

// interfaceLookup answers which addresses an interface holds in the
// sender's network namespace; internal/netaddr on Linux, a fake in tests.
type interfaceLookup interface {
	Lookup(q wire.InterfaceQuery, fresh bool) (wire.Interface, error)
}

// frameOutcome is what became of one frame record, each counted.
type frameOutcome string

const (
	frameUndecodable   frameOutcome = "undecodable"
	frameTruncated     frameOutcome = "truncated"
	frameMalformed     frameOutcome = "malformed"
	frameNoClaim       frameOutcome = "no_claim"
	frameNamespaceGone frameOutcome = "namespace_gone"
	frameInterfaceGone frameOutcome = "interface_gone"
	frameTruthful      frameOutcome = "truthful"
	frameLie           frameOutcome = "lie"
	frameFolded        frameOutcome = "folded"
	// a lie told by a process that forked from the exec'd one (also counted as lie or folded)
	frameForkedSender frameOutcome = "forked_sender"
	// a frame the kernel refused that user space finds truthful (counted also as truthful)
	frameDeniedTruth frameOutcome = "denied_truthful"
	// the sender's namespace could not be read; the kernel's verdict decided (also counted as lie or folded)
	frameJudgedInKernel frameOutcome = "judged_in_kernel"
)

var frameOutcomes = []frameOutcome{frameUndecodable, frameTruncated, frameMalformed, frameNoClaim,
	frameNamespaceGone, frameInterfaceGone, frameTruthful, frameLie, frameFolded, frameForkedSender, frameDeniedTruth, frameJudgedInKernel}

// frameCounts counts frame records by outcome.
type frameCounts struct {
	by map[frameOutcome]*atomic.Uint64
}

func newFrameCounts() *frameCounts {
	c := &frameCounts{by: map[frameOutcome]*atomic.Uint64{}}
	for _, o := range frameOutcomes {
		c.by[o] = new(atomic.Uint64)
	}
	return c
}

func (c *frameCounts) add(o frameOutcome) { c.by[o].Add(1) }

// Get returns the count of one outcome.
func (c *frameCounts) Get(o frameOutcome) uint64 { return c.by[o].Load() }

// claimKey is one offending process and one claim: a flood of the same
// lie is one record, another address or interface is another.
type claimKey struct {
	pid     uint32
	start   uint64 // clock ticks
	class   wire.Class
	address netip.Addr
	ifindex int32
	device  string
}

// claimsSeen remembers the claims already reported, bounded: at most
// maxAddressesPerSender records per process, class and interface, so a
// spoofer cycling through addresses costs bounded records, and when full
// it forgets the older half of what it holds, never all.
type claimsSeen struct {
	mu        sync.Mutex // has and add read both maps as one
	seen      *bounded.Map[claimKey, struct{}]
	perSender *bounded.Map[claimKey, int] // keyed with address left zero
}

const (
	maxClaimsSeen         = 4096
	maxAddressesPerSender = 8
)

func newClaimsSeen() *claimsSeen {
	return &claimsSeen{seen: bounded.New[claimKey, struct{}](maxClaimsSeen), perSender: bounded.New[claimKey, int](maxClaimsSeen)}
}

func senderOf(k claimKey) claimKey {
	k.address = netip.Addr{}
	return k
}

// has reports whether k needs no record: reported already, or its sender
// has had its share of records for the class on the interface.
func (s *claimsSeen) has(k claimKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasLocked(k)
}

func (s *claimsSeen) hasLocked(k claimKey) bool {
	_, ok := s.seen.Get(k)
	n, _ := s.perSender.Get(senderOf(k))
	return ok || n >= maxAddressesPerSender
}

// add reports whether k is new, and remembers it.
func (s *claimsSeen) add(k claimKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasLocked(k) {
		return false
	}
	s.seen.Put(k, struct{}{})
	s.perSender.Update(senderOf(k), func(n int, _ bool) int { return n + 1 })
	return true
}

// wireClaim is what a behaviour record says beyond the exec's context.
type wireClaim struct {
	Claim     wire.Claim
	SenderPID uint32 // the process that sent, when it forked from the record's without exec'ing
	Denied    bool   // the LSM hook refused the frame: it never left
	Interface string
	IfIndex   int32
	NetNS     uint32
	Behaviour string
}

// startFrames starts judging frames where the kernel sends them up.
func (r *mitmexecReceiver) startFrames() {
	if !r.cfg.NetworkBehaviour.Enabled {
		return
	}
	fs, ok := r.source.(frameSource)
	if !ok || r.interfaces == nil {
		return
	}
	if err := fs.FramesErr(); err != nil {
		r.set.Logger.Warn("network behaviour is not watched: frames sent through packet sockets are not judged", zap.Error(err))
		return
	}
	hook, deny := fs.FramesHook()
	if deny {
		r.allowFrameSenders(fs)
	}
	r.set.Logger.Info("network behaviour watched: frames sent through packet sockets that claim an address are judged",
		zap.String("hook", hook), zap.Bool("refuses_lies", deny))
	r.loops.Add(1)
	go r.judgeFrames(fs.Frames())
}

// allowFrameSenders tells the kernel which executables allow entries name
// by path, so that block mode does not refuse their frames before user
// space, which applies the whole entry, has judged them. An entry without
// executable_path cannot be told to the kernel: its senders' lies are
// refused there (README, Block mode).
func (r *mitmexecReceiver) allowFrameSenders(fs frameSource) {
	for _, a := range r.cfg.Allow {
		if a.ExecutablePath == "" {
			continue
		}
		id, err := fileid.Path(a.ExecutablePath)
		if err == nil {
			err = fs.AllowFrameSender(id)
		}
		if err != nil {
			r.set.Logger.Warn("block mode: an allowed executable's frames may be refused in the kernel",
				zap.String("executable_path", a.ExecutablePath), zap.Error(err))
		}
	}
}

// judgeFrames serves the frame records until the tracer closes them. One
// goroutine: a lie costs one netlink read, a flood of the same lie a map
// lookup per frame.
func (r *mitmexecReceiver) judgeFrames(frames <-chan []byte) {
	defer r.loops.Done()
	for raw := range frames {
		r.handleFrame(raw)
	}
}

func (r *mitmexecReceiver) handleFrame(raw []byte) {
	f, err := wire.Decode(raw)
	if err != nil {
		r.frameCounts.add(frameUndecodable)
		return
	}
	c, err := wire.Parse(&f)
	switch {
	case errors.Is(err, wire.ErrTruncated):
		r.frameCounts.add(frameTruncated)
		return
	case errors.Is(err, wire.ErrNoClaim):
		r.frameCounts.add(frameNoClaim)
		return
	case err != nil:
		r.frameCounts.add(frameMalformed)
		return
	}
	r.judgeFrame(&f, &c)
}

// judgeFrame judges a frame's claim against the interface it went out on
// and reports a lie once per process and claim.
func (r *mitmexecReceiver) judgeFrame(f *wire.Frame, c *wire.Claim) {
	q := wire.QueryOf(f)
	iface, err := r.interfaces.Lookup(q, false)
	if err != nil && f.Has(wire.FlagKernelLie) {
		// The sender (and with it the way into its namespace) is gone, but
		// the kernel looked at the device's addresses when it sent.
		r.frameCounts.add(frameJudgedInKernel)
		iface, err = wire.Interface{Index: f.IfIndex, Name: f.Device}, nil
	}
	if err != nil {
		r.countLookupError(err)
		r.set.Logger.Debug("frame not judged: its interface could not be read", zap.Uint32("pid", f.PID), zap.Error(err))
		return
	}
	v := wire.Judge(c, &iface)
	if !v.Lie && f.Has(wire.FlagDenied) {
		// the kernel judges a device's own addresses only: a bridge port
		// sending for its master's address is refused there
		v = r.refusedTruth(f, c, q)
	}
	if !v.Lie {
		r.frameCounts.add(frameTruthful)
		return
	}
	// A child that forked without exec'ing tells its parent's program's
	// lie: the record is that exec's, the sender is named beside it.
	if f.ExecPID != 0 && f.ExecPID != f.PID {
		r.frameCounts.add(frameForkedSender)
	} else {
		f.ExecPID, f.ExecStartBootTimeNs = f.PID, f.StartBootTimeNs
	}
	k := claimKey{pid: f.ExecPID, start: f.ExecStartBootTimeNs / 1e7, class: c.Class, address: c.Address, ifindex: f.IfIndex, device: f.Device}
	if r.claims.has(k) {
		r.frameCounts.add(frameFolded)
		return
	}
	// A lie is judged on a fresh read of the namespace: an address added a
	// moment ago (a VIP announced right after it was configured) is the
	// sender's own.
	if fresh, err := r.interfaces.Lookup(q, true); err == nil && !f.Has(wire.FlagDenied) {
		iface = fresh
		if v = wire.Judge(c, &iface); !v.Lie {
			r.frameCounts.add(frameTruthful)
			return
		}
	}
	if !r.claims.add(k) {
		r.frameCounts.add(frameFolded)
		return
	}
	r.frameCounts.add(frameLie)
	r.reportLie(f, c, &iface, &v)
}

// reportLie reports a lie with the context of the exec that started the
// sender's program, named as the catalog tool that exec was reported as.
func (r *mitmexecReceiver) reportLie(f *wire.Frame, c *wire.Claim, iface *wire.Interface, v *wire.Verdict) {
	var e event.Exec
	var tool *detect.Tool
	// the exec reported for this process, if it is still the program that runs
	if x, ok := r.execTools.get(f.ExecPID, f.ExecStartBootTimeNs); ok && (f.Exe.Ino == 0 || x.exec.File == f.Exe) {
		e, tool = x.exec, x.tool // reported at its exec: the kernel's account of it
		e.BootTimeNs = f.BootTimeNs
	} else {
		e = r.senderExec(f)
	}
	var sender uint32
	if f.PID != f.ExecPID {
		sender = f.PID
	}
	if tool == nil {
		tool = &detect.Tool{Name: v.Behaviour, Technique: v.TechniqueID, Action: r.cfg.NetworkBehaviour.Action}
	} else {
		// the catalog's tool, telling this lie: its own action holds
		t := *tool
		t.Technique = v.TechniqueID
		tool = &t
	}
	r.report(detectionRecord{
		Exec:      e,
		Detection: detect.Detection{Tool: tool, Match: detect.MatchNetworkBehaviour, Detail: v.Detail},
		Wire: &wireClaim{Claim: *c, Interface: iface.Name, IfIndex: iface.Index, NetNS: f.NetNS, SenderPID: sender, Denied: f.Has(wire.FlagDenied),
			Behaviour: v.Behaviour},
	}, false)
}

// refusedTruth handles a frame the kernel refused that user space finds
// truthful: it is said, and counted, not reported as a lie.
func (r *mitmexecReceiver) refusedTruth(f *wire.Frame, c *wire.Claim, q wire.InterfaceQuery) wire.Verdict {
	r.frameCounts.add(frameDeniedTruth)
	r.set.Logger.Warn("block mode refused a frame that claims an address its interface's master holds; allow the sender or set network_behaviour.action to alert",
		zap.Uint32("pid", f.PID), zap.String("claimed", c.Address.String()), zap.Int32("ifindex", q.IfIndex))
	return wire.Verdict{}
}

// behaviourAction is what a lie of a process no catalog tool names does.
func (r *mitmexecReceiver) behaviourAction() string {
	if r.cfg.NetworkBehaviour.Action != "" {
		return r.cfg.NetworkBehaviour.Action
	}
	return r.cfg.Action
}

// countLookupError counts a frame whose interface could not be read: an
// interface gone, else (the namespace gone, or a netlink failure in it)
// the namespace.
func (r *mitmexecReceiver) countLookupError(err error) {
	if errors.Is(err, wire.ErrInterfaceGone) {
		r.frameCounts.add(frameInterfaceGone)
		return
	}
	r.frameCounts.add(frameNamespaceGone)
}

// senderExec describes the sending process: from /proc while it is the
// process the kernel saw send (same start time), else from what the
// frame record itself carries. A process that forked without exec'ing
// shows its parent's program, which is what it runs.
func (r *mitmexecReceiver) senderExec(f *wire.Frame) event.Exec {
	if e, ok := r.recent.get(f.ExecPID); ok && e.StartBootTimeNs/1e7 == f.ExecStartBootTimeNs/1e7 {
		e.BootTimeNs = f.BootTimeNs
		return e // the kernel's own account of that exec
	}
	e := r.execFromProc(f.ExecPID)
	if e.StartBootTimeNs/1e7 != f.ExecStartBootTimeNs/1e7 {
		e = event.Exec{PID: f.ExecPID, UID: f.UID, EUID: f.UID, GID: f.GID, EGID: f.GID, LoginUID: 0xffffffff}
		if f.ExecPID == f.PID {
			e.Name = f.Comm
		}
	}
	e.Filename = e.ExePath
	e.File = f.Exe
	if f.ExecPID == f.PID {
		e.Comm = f.Comm
	}
	e.BootTimeNs = f.BootTimeNs
	e.StartBootTimeNs = f.ExecStartBootTimeNs
	return e
}

// execTools remembers which catalog tool each reported process is, so a
// tool that later lies on the wire is named as itself.
type execTools struct {
	byProcess *bounded.Map[processKey, reportedExec]
}

func newExecTools() *execTools {
	return &execTools{byProcess: bounded.New[processKey, reportedExec](maxReported)}
}

// reportedExec is a reported exec: the kernel's account of it and the tool.
type reportedExec struct {
	exec event.Exec
	tool *detect.Tool
}

func (t *execTools) put(e *event.Exec, tool *detect.Tool) {
	t.byProcess.Put(processKey{e.PID, e.StartBootTimeNs / 1e7}, reportedExec{exec: *e, tool: tool})
}

func (t *execTools) get(pid uint32, start uint64) (reportedExec, bool) {
	return t.byProcess.Get(processKey{pid, start / 1e7})
}

// interfaceTTL is how long a read of an interface's addresses serves
// frames that tell the truth; a lie is always judged on a fresh read.
const interfaceTTL = 2 * time.Second

func putWire(a pcommon.Map, w *wireClaim) {
	if w == nil {
		return
	}
	a.PutStr(record.AttrNetworkClaim, string(w.Claim.Class))
	a.PutStr(record.AttrNetworkBehaviour, w.Behaviour)
	putStrIf(a, record.AttrNetworkInterfaceName, w.Interface)
	if w.IfIndex != 0 {
		a.PutInt(record.AttrNetworkInterfaceIndex, int64(w.IfIndex))
	}
	if w.Claim.Address.IsValid() {
		a.PutStr(record.AttrNetworkClaimedAddress, w.Claim.Address.String())
	}
	if len(w.Claim.MAC) > 0 {
		a.PutStr(record.AttrNetworkClaimedMAC, w.Claim.MAC.String())
	}
	if w.Claim.Target.IsValid() {
		a.PutStr(record.AttrNetworkTargetAddress, w.Claim.Target.String())
	}
	if w.NetNS != 0 {
		a.PutInt(record.AttrNamespaceNet, int64(w.NetNS))
	}
	if w.SenderPID != 0 {
		a.PutInt(record.AttrNetworkSenderPID, int64(w.SenderPID))
	}
}

// observeFrames reports the frame counters, the kernel's and the judge's,
// as one metric with the outcome as attribute.
func (r *mitmexecReceiver) observeFrames(_ context.Context, o metric.Int64Observer) error {
	if r.frameCounts == nil {
		return nil
	}
	put := func(outcome string, v uint64) {
		o.Observe(int64(v), metric.WithAttributes(attribute.String("outcome", outcome)))
	}
	for _, out := range frameOutcomes {
		put(string(out), r.frameCounts.Get(out))
	}
	fs, ok := r.source.(frameSource)
	if !ok || fs.FramesErr() != nil {
		return nil
	}
	st, err := fs.FrameStats()
	if err != nil {
		return err
	}
	put("seen", st.Sends)
	put("lost_ring", st.ReserveFailed)
	put("unreadable", st.Unreadable)
	put("denied", st.Denied)
	put("lost_queue", st.QueueDropped)
	return nil
}
