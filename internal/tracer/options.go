// SPDX-License-Identifier: Apache-2.0

package tracer

import "time"

// The tracer's contract, in a file of its own without build tags: the
// receiver configures and reads the tracer through these on every platform,
// and only Linux has a Tracer behind them.

// Defaults for Options left zero; the receiver's configuration defaults to
// the same values.
const (
	DefaultQueueSize    = 4096
	DefaultPollInterval = time.Second
)

// Options configure a Tracer.
type Options struct {
	// QueueSize bounds the records waiting between the ring reader and the
	// consumer; when full, records are dropped and counted, never blocking
	// the reader (a blocked reader would fill the ring and lose in the kernel).
	QueueSize int
	// PollInterval is when the reader looks at the ring once more after
	// records stopped coming (a safety net for a record that raced its
	// last look); then it sleeps until the kernel wakes it, which the
	// kernel does for known tools at once and for other records at most
	// every 5 ms.
	PollInterval time.Duration
	// SubmitAll sends every exec up (debugging, benchmarks).
	SubmitAll bool
	// Deny loads the BPF LSM program that refuses the exec of a tool whose
	// verdict says kill, where the kernel allows lsm/ programs.
	Deny bool
	// Frames attaches the behaviour tier: frames sent through packet
	// sockets that can carry an address claim (Tracer.Frames).
	Frames bool
	// FrameDeny has the behaviour tier refuse lying frames before they
	// leave, where the BPF LSM is active (block mode).
	FrameDeny bool
}

// Stats are the tracer's counters.
type Stats struct {
	Execs         uint64 // execs the kernel filter saw
	Submitted     uint64 // records sent up
	ReserveFailed uint64 // records lost because the ring was full
	Kills         uint64 // SIGKILLs sent from the exec hook
	QueueDropped  uint64 // records dropped because the queue was full
}

// FrameStats are the behaviour tier's counters.
type FrameStats struct {
	Sends         uint64 // sends on packet sockets the kernel saw
	Submitted     uint64 // frames that can carry a claim, sent up
	ReserveFailed uint64 // frames lost because the frame ring was full
	Unreadable    uint64 // packet-socket sends whose frame could not be read (io_uring, 32-bit tasks)
	QueueDropped  uint64 // frame records dropped because the queue was full
	Denied        uint64 // lying frames the LSM hook refused
}
