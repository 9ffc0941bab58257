// SPDX-License-Identifier: Apache-2.0

package fold

import (
	"fmt"
	"testing"
	"time"
)

func TestFold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := New[string, int](5 * time.Second)
	// GIVEN a first detection and three repeats within the window
	if !f.Offer("a", "", 1, t0) {
		t.Fatal("the first of a window must go out at once")
	}
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if f.Offer("a", "", 2+i, t0.Add(d)) {
			t.Fatalf("repeat %d went out", i)
		}
	}
	// another key is independent
	if !f.Offer("b", "", 9, t0.Add(time.Second)) {
		t.Fatal("another key was folded")
	}
	if got := f.Expired(t0.Add(4 * time.Second)); len(got) != 0 {
		t.Fatalf("window still open, got %v", got)
	}
	if f.Pending() != 3 {
		t.Fatalf("pending %d, want 3", f.Pending())
	}
	// WHEN the window ends
	got := f.Expired(t0.Add(5 * time.Second))
	// THEN the latest repeat leaves standing for all three
	if len(got) != 1 || got[0].Record != 4 || got[0].Count != 3 {
		t.Fatalf("got %+v, want record 4 standing for 3", got)
	}
	// and the next one starts a new window, going out at once
	if !f.Offer("a", "", 5, t0.Add(6*time.Second)) {
		t.Fatal("first of the next window was held")
	}
}

func TestFoldNewWindowBeforeCollection(t *testing.T) {
	t0 := time.Unix(0, 0)
	f := New[string, int](time.Second)
	f.Offer("a", "", 1, t0)
	f.Offer("a", "", 2, t0.Add(500*time.Millisecond))
	// the window ended but nobody collected it before the next exec came
	if !f.Offer("a", "", 3, t0.Add(2*time.Second)) {
		t.Fatal("first of the new window was held")
	}
	f.Offer("a", "", 4, t0.Add(2100*time.Millisecond))
	got := f.Flush()
	total := 0
	for _, g := range got {
		total += g.Count
	}
	if len(got) != 2 || total != 2 {
		t.Fatalf("flush %+v, want both windows' repeats", got)
	}
}

func TestFoldDisabled(t *testing.T) {
	f := New[string, int](0)
	for i := 0; i < 3; i++ {
		if !f.Offer("a", "", i, time.Unix(0, 0)) {
			t.Fatal("folding disabled but a record was held")
		}
	}
}

// A flood of one tool whose arguments vary folds all the same: a few
// variants go out on their own, the rest leave as one counted record.
func TestFloodOfVariantsFolds(t *testing.T) {
	f := New[string, int](time.Minute)
	t0 := time.Now()
	sent := 0
	for i := 0; i < 5000; i++ {
		if f.Offer("arpspoof", fmt.Sprint("argv ", i), i, t0.Add(time.Duration(i)*time.Millisecond)) {
			sent++
		}
	}
	held := f.Flush()
	if sent != MaxVariants || len(held) != 1 || held[0].Count != 5000-MaxVariants {
		t.Fatalf("sent %d records and held %+v; want %d sent and one record for the other %d", sent, held, MaxVariants, 5000-MaxVariants)
	}
}

// A folder is open while a window is open, so that its owner can stop its
// clock when nothing can expire.
func TestFoldOpenWhileAWindowIs(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := New[string, int](5 * time.Second)
	if f.Open() {
		t.Fatal("a new folder is open")
	}
	f.Offer("a", "", 1, t0)
	if !f.Open() {
		t.Fatal("a folder with a window open is not open")
	}
	f.Expired(t0.Add(time.Second))
	if !f.Open() {
		t.Fatal("the window closed before it ended")
	}
	f.Expired(t0.Add(5 * time.Second))
	if f.Open() {
		t.Fatal("the folder is open after its only window ended")
	}
	off := New[string, int](0)
	if off.Offer("a", "", 1, t0); off.Open() {
		t.Fatal("a disabled folder opened a window")
	}
}
