// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"os/exec"
	"testing"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// execsSeen runs /bin/true n times and returns how many execs the tracer's
// kernel counter saw meanwhile (other execs on the machine included).
func execsSeen(t *testing.T, tr *Tracer, n int) uint64 {
	t.Helper()
	s0, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	s1, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s1.Execs - s0.Execs
}

// A detached tracer sees no exec at all, attached again it sees ours, and
// Close after Detach still releases every BPF object.
func TestDetachAttach(t *testing.T) {
	testenv.RequireRoot(t)
	before := bpfFDs(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := execsSeen(t, tr, 3); got < 3 {
		t.Fatalf("attached: %d execs seen, want at least our 3", got)
	}
	if err := tr.Detach(); err != nil {
		t.Fatal(err)
	}
	if got := execsSeen(t, tr, 3); got != 0 {
		t.Fatalf("detached: %d execs seen, want 0", got)
	}
	if err := tr.Attach(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Attach(); err != nil {
		t.Fatalf("second Attach: %v", err)
	}
	if got := execsSeen(t, tr, 3); got < 3 {
		t.Fatalf("attached again: %d execs seen, want at least our 3", got)
	}
	execProg, forkProg := tr.HookPrograms()
	if execProg == nil || forkProg == nil || execProg == forkProg {
		t.Fatalf("hook programs %v, %v: want two", execProg, forkProg)
	}
	if err := tr.Detach(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("%d BPF objects open before New, %d after Detach and Close", before, after)
	}
}
