// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"testing"
	"time"
)

// After a record the reader looks again twice, then sleeps until the
// kernel wakes it: an idle collector is not woken by its own reader.
func TestReaderLookSequence(t *testing.T) {
	now := time.Unix(1000, 0)
	poll := 3 * time.Second
	look := lookStraggler
	if got := look.deadline(now, poll); !got.Equal(now.Add(stragglerWait)) {
		t.Fatalf("straggler look deadline %v, want %v", got, now.Add(stragglerWait))
	}
	look = look.next()
	if look != lookPoll {
		t.Fatalf("after the straggler look: %d, want the poll look", look)
	}
	if got := look.deadline(now, poll); !got.Equal(now.Add(poll)) {
		t.Fatalf("poll look deadline %v, want %v", got, now.Add(poll))
	}
	look = look.next()
	if look != lookBlock {
		t.Fatalf("after the poll look: %d, want to block", look)
	}
	if got := look.deadline(now, poll); !got.IsZero() {
		t.Fatalf("blocking look has deadline %v, want none", got)
	}
	if look.next() != lookBlock {
		t.Fatal("a blocking look that timed out must block again")
	}
}
