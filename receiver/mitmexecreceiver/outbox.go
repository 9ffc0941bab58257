// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fold"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// outbox is the last stage before the pipeline: it drops a second report
// of one process (its exec and the module it loaded), folds repeats, keeps
// records under the per-host ceiling and hands them to one emitting
// goroutine. Every detection that reaches it is accounted for: it leaves as
// a record, or as a count on one (mitmexec.repeat_count,
// mitmexec.summarized_count), or is counted as dropped.
type outbox struct {
	r      *mitmexecReceiver
	window time.Duration
	queue  chan detectionRecord
	// pending tells run that a window opened or a record was held back:
	// its clock runs only while tick has something to do, so an idle
	// collector is not woken by it.
	pending chan struct{}

	mu        sync.Mutex
	folder    *fold.Folder[foldKey, detectionRecord]
	reported  *bounded.Map[processKey, bool] // processes with a record already (true: for a module they loaded)
	perSecond float64
	tokens    float64
	refilled  time.Time
	held      *detectionRecord // the latest detection the ceiling held back
	heldCount int              // detections the ceiling held back since the last record
	closed    bool
}

type processKey struct {
	pid   uint32
	start uint64
}

// maxReported bounds the memory of processes already reported.
const maxReported = 4096

func newOutbox(r *mitmexecReceiver, window time.Duration) *outbox {
	perSecond := float64(r.cfg.MaxRecordsPerSecond)
	return &outbox{
		r: r, window: window, queue: make(chan detectionRecord, r.cfg.QueueSize), pending: make(chan struct{}, 1),
		folder: fold.New[foldKey, detectionRecord](window), reported: bounded.New[processKey, bool](maxReported),
		perSecond: perSecond, tokens: perSecond, refilled: time.Now(),
	}
}

// weight is how many detections a record stands for.
func weight(rec *detectionRecord) int { return max(rec.RepeatCount, 1) }

// claim reports whether rec is the first report of its process, and
// takes it: a process seen both by its exec and by a module it loaded is
// one record (whichever came first), acted on once. moduleLoad says where
// rec comes from.
func (o *outbox) claim(rec *detectionRecord, moduleLoad bool) bool {
	// Start times in clock ticks: the kernel's exact one and /proc's agree
	// only to the tick, and a module load may know only /proc's.
	k := processKey{rec.Exec.PID, rec.Exec.StartBootTimeNs / 1e7}
	o.mu.Lock()
	defer o.mu.Unlock()
	byModule, seen := o.reported.Get(k)
	if seen && (moduleLoad || byModule) && k.pid != 0 {
		return false
	}
	o.reported.Put(k, moduleLoad || byModule)
	return true
}

// offer takes a detection already claimed.
func (o *outbox) offer(rec detectionRecord) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.r.consumeDropped.Add(1)
		return
	}
	variant := strings.Join(rec.Exec.Args, "\x00") + "\x00" + strings.Join(rec.Exec.ArgsTail, "\x00")
	defer o.signalPending()
	if !o.folder.Offer(foldKeyOf(&rec), variant, rec, now) {
		o.r.folded.Add(1)
		return
	}
	o.send(rec, now, false)
}

// hasPending reports whether tick has something to do later: a fold
// window open or a record held back. o.mu is held.
func (o *outbox) hasPending() bool {
	return o.folder.Open() || o.held != nil
}

// signalPending starts run's clock when tick has something to do; o.mu is
// held.
func (o *outbox) signalPending() {
	if !o.hasPending() {
		return
	}
	select {
	case o.pending <- struct{}{}:
	default: // already signalled
	}
}

// send passes rec under the ceiling, or holds it back and counts it; the
// next record that goes out says how many were held.
func (o *outbox) send(rec detectionRecord, now time.Time, force bool) {
	if o.perSecond > 0 {
		o.tokens = min(o.perSecond, o.tokens+now.Sub(o.refilled).Seconds()*o.perSecond)
		o.refilled = now
		if o.tokens < 1 && !force {
			o.held = &rec
			o.heldCount += weight(&rec)
			return
		}
		o.tokens--
	}
	rec.SummarizedCount = o.heldCount
	o.r.summarized.Add(uint64(o.heldCount))
	o.held, o.heldCount = nil, 0
	o.push(rec)
}

func (o *outbox) push(rec detectionRecord) {
	select {
	case o.queue <- rec:
	default:
		o.r.consumeDropped.Add(uint64(weight(&rec) + rec.SummarizedCount))
	}
}

// tick sends the repeats of windows that ended, and the held-back record
// once the ceiling allows. It reports whether something is left for a
// later tick.
func (o *outbox) tick(now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	for _, f := range o.folder.Expired(now) {
		rec := f.Record
		rec.RepeatCount = f.Count
		o.send(rec, now, false)
	}
	o.releaseHeld(now, false)
	return o.hasPending()
}

func (o *outbox) releaseHeld(now time.Time, force bool) {
	if o.held == nil {
		return
	}
	rec := *o.held
	o.held = nil
	o.heldCount -= weight(&rec)
	o.send(rec, now, force)
}

// close sends everything held, ceiling or not (shutdown), and ends the queue.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	now := time.Now()
	for _, f := range o.folder.Flush() {
		rec := f.Record
		rec.RepeatCount = f.Count
		o.send(rec, now, true)
	}
	o.releaseHeld(now, true)
	o.closed = true
	close(o.queue)
}

// run emits records until the queue ends; once ctx is cancelled (the
// shutdown deadline passed) what is left is dropped and counted.
func (o *outbox) run(ctx context.Context, host component.Host) {
	period := foldTick(o.window)
	clock := time.NewTimer(period)
	clock.Stop()
	defer clock.Stop()
	running := false
	for {
		select {
		case rec, ok := <-o.queue:
			if !ok {
				return
			}
			o.r.emit(ctx, host, rec)
		case <-o.pending:
			if !running {
				clock.Reset(period)
				running = true
			}
		case now := <-clock.C:
			running = o.tick(now)
			if running {
				clock.Reset(period)
			}
		case <-ctx.Done():
			for rec := range o.queueDrained() {
				o.r.consumeDropped.Add(uint64(weight(&rec) + rec.SummarizedCount))
			}
			return
		}
	}
}

// queueDrained yields what is still queued without waiting for more.
func (o *outbox) queueDrained() func(func(detectionRecord) bool) {
	return func(yield func(detectionRecord) bool) {
		for {
			select {
			case rec, ok := <-o.queue:
				if !ok || !yield(rec) {
					return
				}
			default:
				return
			}
		}
	}
}

func foldTick(window time.Duration) time.Duration {
	if window <= 0 {
		return time.Second
	}
	return max(min(window/4, time.Second), 25*time.Millisecond)
}

// foldKey groups repeats: the same tool started by the same parent as the
// same user from the same file. The command line is not part of it: a
// flood whose arguments vary is still one flood (fold.MaxVariants of its
// distinct command lines go out on their own).
type foldKey struct {
	claim wire.Class // a behaviour record's class of claim, "" for an exec
	tool  string
	ppid  uint32
	uid   uint32
	file  event.FileID
	exe   string
}

func foldKeyOf(rec *detectionRecord) foldKey {
	e := &rec.Exec
	k := foldKey{tool: rec.Detection.Tool.Name, ppid: e.PPID, uid: e.EUID, file: e.File, exe: e.ExePath}
	if rec.Wire != nil {
		k.claim = rec.Wire.Claim.Class
	}
	return k
}
