// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/mitmexec/mitmexec/internal/event"
)

// The behaviour tier's hooks: sock_sendmsg_nosec() fires the tracepoint
// after every socket send, in the sender's context (Linux >= 6.4); the LSM
// hook runs before the send and can refuse it (block mode, where the BPF
// LSM is active).
const (
	frameTracepoint = "tp_btf/sock_send_length"
	frameLSM        = "lsm/socket_sendmsg"
)

// frameTier is the packet-socket program, its link and the reader of its
// own ring: a flood of forged frames fills that ring, never the exec ring.
type frameTier struct {
	links  []link.Link
	progs  []*ebpf.Program
	reader *ringbuf.Reader
	out    chan []byte
	hook   string
	deny   bool // the LSM hook refuses lying frames
	// lsmReports: the LSM hook is the only one and reports every frame;
	// beside the tracepoint it reports only what it refused.
	lsmReports bool
	err        error // why the tier is off, nil when it runs
	lsmErr     error // why the LSM hook is not the one in use, when it is not
}

// attachFrames attaches the frame program: the LSM hook where block mode
// asks for refusals and the BPF LSM is active, else the tracepoint, else
// the LSM hook to observe. A kernel with neither keeps the exec tracer; the
// error says what is missing.
func (t *Tracer) attachFrames(spec *ebpf.CollectionSpec) error {
	lsmErr := bpfLSMActive(readFile)
	var errs []error
	try := func(hook string) bool {
		err := t.attachFrameHook(spec, hook)
		if err != nil {
			errs = append(errs, err)
		}
		return err == nil
	}
	lsm := false
	if t.opts.FrameDeny && lsmErr == nil && try(frameLSM) {
		lsm, t.frames.deny = true, true
	} else if len(errs) > 0 {
		t.frames.lsmErr = errs[0]
	}
	if try(frameTracepoint) {
		if t.frames.lsmErr == nil && !lsm && t.opts.FrameDeny {
			t.frames.lsmErr = fmt.Errorf("%s: %w", frameLSM, lsmErr)
		}
		t.frames.hook = frameTracepoint
		if lsm {
			t.frames.hook = frameLSM + "+" + frameTracepoint
		}
	} else if !lsm && lsmErr == nil && try(frameLSM) {
		lsm = true
		t.frames.hook, t.frames.lsmReports = frameLSM, true
	} else if lsm {
		t.frames.hook, t.frames.lsmReports = frameLSM, true
	}
	if t.frames.hook == "" {
		if lsmErr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", frameLSM, lsmErr))
		}
		return errors.Join(errs...)
	}
	rd, err := ringbuf.NewReader(t.maps.Frames)
	if err != nil {
		return fmt.Errorf("open the frame ring buffer: %w", err)
	}
	t.frames.reader, t.frames.out = rd, make(chan []byte, t.opts.QueueSize)
	t.wg.Add(1)
	go t.readFrames()
	return nil
}

func (t *Tracer) attachFrameHook(spec *ebpf.CollectionSpec, hook string) error {
	name, need := "frame_sent", "Linux >= 6.4 with BTF"
	if hook == frameLSM {
		name, need = "frame_check", "the BPF LSM"
	}
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"prog"`
	}
	one.Programs["prog"] = one.Programs[name]
	delete(one.Programs, name)
	opts := &ebpf.CollectionOptions{MapReplacements: mapsByName(&t.maps)}
	if err := one.LoadAndAssign(&objs, opts); err != nil {
		return fmt.Errorf("load %s (needs %s): %w", hook, need, err)
	}
	var l link.Link
	var err error
	if hook == frameLSM {
		l, err = link.AttachLSM(link.LSMOptions{Program: objs.Prog})
	} else {
		l, err = link.AttachTracing(link.TracingOptions{Program: objs.Prog})
	}
	if err != nil {
		objs.Prog.Close()
		return fmt.Errorf("attach %s (needs %s): %w", hook, need, err)
	}
	t.frames.links = append(t.frames.links, l)
	t.frames.progs = append(t.frames.progs, objs.Prog)
	return nil
}

// AllowFrameSender keeps block mode from refusing, in the kernel, frames
// of the executable with identity id (an allow entry names it): user
// space judges them like any.
func (t *Tracer) AllowFrameSender(id event.FileID) error {
	return t.maps.FrameAllowed.Put(mitmexecFrameSenderKey{Ino: id.Ino, Dev: id.Dev}, uint8(1))
}

// FramesLSMErr says why lying frames are not refused before they leave
// (block mode without the BPF LSM hook), nil when they are or when no
// refusal was asked for.
func (t *Tracer) FramesLSMErr() error { return t.frames.lsmErr }

// FramesHook names the hook the behaviour tier listens on and whether it
// refuses lying frames.
func (t *Tracer) FramesHook() (string, bool) { return t.frames.hook, t.frames.deny }

// Frames delivers raw frame records (wire.Decode reads them); nil when the
// behaviour tier is off. Closed after Close.
func (t *Tracer) Frames() <-chan []byte { return t.frames.out }

// FramesErr says why the behaviour tier is off, nil when it runs.
func (t *Tracer) FramesErr() error { return t.frames.err }

// readFrames wakes on every frame record: the kernel sends up only frames
// that can carry a claim, a handful a second on a busy LAN.
func (t *Tracer) readFrames() {
	defer t.wg.Done()
	defer close(t.frames.out)
	var rec ringbuf.Record
	for {
		err := t.frames.reader.ReadInto(&rec)
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			select {
			case <-t.done:
				return
			case <-time.After(stragglerWait):
			}
			continue
		}
		buf := make([]byte, len(rec.RawSample))
		copy(buf, rec.RawSample)
		select {
		case t.frames.out <- buf:
		default:
			t.framesDropped.Add(1)
		}
	}
}

// FrameStats sums the frame program's per-CPU counters and adds the
// reader's drops.
func (t *Tracer) FrameStats() (FrameStats, error) {
	s := FrameStats{QueueDropped: t.framesDropped.Load()}
	for idx, dst := range map[uint32]*uint64{
		0: &s.Sends, 1: &s.Submitted, 2: &s.ReserveFailed, 3: &s.Unreadable, 4: &s.Denied,
	} {
		var perCPU []uint64
		if err := t.maps.FrameCounters.Lookup(idx, &perCPU); err != nil {
			return s, fmt.Errorf("read frame counter %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return s, nil
}

func (t *Tracer) detachFrames() error {
	var err error
	for _, l := range t.frames.links {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}
	if t.frames.reader != nil {
		if cerr := t.frames.reader.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (t *Tracer) closeFrameProgram() error {
	var err error
	for _, p := range t.frames.progs {
		if cerr := p.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
