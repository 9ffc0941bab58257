// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import "time"

// readerLook is what the ring reader waits for next. The kernel wakes the
// reader at once for a known tool and for the first other record after a
// quiet gap (WAKEUP_GAP_NS in bpf/mitmexec.bpf.c); records that follow
// within the gap are submitted without a wakeup. So after a record the
// reader looks again shortly (the straggler look, longer than the gap),
// then once more after the poll interval in case a record raced that look,
// and then sleeps until the kernel wakes it: an idle reader never wakes on
// its own.
type readerLook uint8

const (
	lookBlock     readerLook = iota // no deadline: only the kernel's wakeup
	lookStraggler                   // stragglerWait after the last record
	lookPoll                        // the poll interval after the straggler look
)

// deadline is when a read that starts at now gives up, the zero time for
// none.
func (l readerLook) deadline(now time.Time, poll time.Duration) time.Time {
	switch l {
	case lookStraggler:
		return now.Add(stragglerWait)
	case lookPoll:
		return now.Add(poll)
	}
	return time.Time{}
}

// next is the look after a read that found nothing before its deadline.
func (l readerLook) next() readerLook {
	if l == lookStraggler {
		return lookPoll
	}
	return lookBlock
}
