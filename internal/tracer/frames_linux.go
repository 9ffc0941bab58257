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
)

// frameHook is where the behaviour tier listens: sock_sendmsg_nosec() fires
// it after every socket send, in the sender's context (Linux >= 6.4).
const frameHook = "tp_btf/sock_send_length"

// frameTier is the packet-socket program, its link and the reader of its
// own ring: a flood of forged frames fills that ring, never the exec ring.
type frameTier struct {
	link   link.Link
	prog   *ebpf.Program
	reader *ringbuf.Reader
	out    chan []byte
	err    error // why the tier is off, nil when it runs
}

// attachFrames loads the frame program on the tracer's maps and attaches
// it. A kernel without the tracepoint keeps the exec tracer; the error says
// what is missing.
func (t *Tracer) attachFrames(spec *ebpf.CollectionSpec) error {
	one := spec.Copy()
	for name := range one.Programs {
		if name != "frame_sent" {
			delete(one.Programs, name)
		}
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"frame_sent"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: mapsByName(&t.maps)}
	if err := one.LoadAndAssign(&objs, opts); err != nil {
		return fmt.Errorf("load %s (needs Linux >= 6.4 with BTF): %w", frameHook, err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: objs.Prog})
	if err != nil {
		objs.Prog.Close()
		return fmt.Errorf("attach %s (needs Linux >= 6.4): %w", frameHook, err)
	}
	rd, err := ringbuf.NewReader(t.maps.Frames)
	if err != nil {
		l.Close()
		objs.Prog.Close()
		return fmt.Errorf("open the frame ring buffer: %w", err)
	}
	t.frames = frameTier{link: l, prog: objs.Prog, reader: rd, out: make(chan []byte, t.opts.QueueSize)}
	t.wg.Add(1)
	go t.readFrames()
	return nil
}

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
		0: &s.Sends, 1: &s.Submitted, 2: &s.ReserveFailed, 3: &s.Unreadable,
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
	if t.frames.link != nil {
		err = t.frames.link.Close()
	}
	if t.frames.reader != nil {
		if cerr := t.frames.reader.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (t *Tracer) closeFrameProgram() error {
	if t.frames.prog != nil {
		return t.frames.prog.Close()
	}
	return nil
}
