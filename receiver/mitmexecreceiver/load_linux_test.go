// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestPrivilegedStorm: both cores busy exec'ing benign binaries while 500
// tool execs are interleaved. Every tool exec is reported, nothing is lost,
// and the drop counters stay at zero.
func TestPrivilegedStorm(t *testing.T) {
	// Folding and the records-per-second ceiling off: every one of the
	// tool's execs must come out as its own record, nothing lost under load
	// (TestPrivilegedFloodFolds shows the folded accounting).
	l := startLive(t, func(c *Config) { c.Fold.Enabled = false; c.MaxRecordsPerSecond = 0 })
	arpspoof := lookPath(t, "arpspoof")
	stop := make(chan struct{})
	var benign sync.WaitGroup
	var benignExecs [2]int
	for w := 0; w < 2; w++ {
		benign.Add(1)
		go func(w int) {
			defer benign.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = exec.Command("/bin/true").Run()
				benignExecs[w]++
			}
		}(w)
	}
	const tools = 500
	markers := make([]string, tools)
	for i := range markers {
		markers[i] = newMarker(fmt.Sprintf("storm_%d", i))
		_ = exec.Command(arpspoof, "-h", markers[i]).Run()
	}
	close(stop)
	benign.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l.sink.LogRecordCount() >= tools {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range l.records() {
		args, _ := r.attrs["process.command_args"].([]any)
		if len(args) > 0 {
			seen[fmt.Sprint(args[len(args)-1])]++
		}
	}
	missing := 0
	for _, m := range markers {
		if seen[m] != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d tool execs not reported exactly once", missing, tools)
	}
	c, err := l.rcv.source.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if c.ReserveFailed != 0 || c.QueueDropped != 0 || l.rcv.consumeDropped.Load() != 0 {
		t.Errorf("drops: ring %d, queue %d, consumer %d; want none", c.ReserveFailed, c.QueueDropped, l.rcv.consumeDropped.Load())
	}
	t.Logf("benign execs during the storm: %d; kernel saw %d execs, sent %d up", benignExecs[0]+benignExecs[1], c.Execs, c.Submitted)
	if benignExecs[0]+benignExecs[1] < tools {
		t.Errorf("the storm was too light: %d benign execs", benignExecs[0]+benignExecs[1])
	}
}

// TestPrivilegedKernelDecidesBenign: once a benign binary has been judged,
// its execs stay in the kernel, and so do shells run as `sh -c` or bare.
func TestPrivilegedKernelDecidesBenign(t *testing.T) {
	l := startLive(t, nil)
	run := func() {
		_ = exec.Command("/bin/true").Run()
		_ = exec.Command("/bin/sh", "-c", "true").Run()
		_ = exec.Command("/bin/bash", "-ec", ":").Run()
	}
	run() // first sight of each file goes up once
	time.Sleep(300 * time.Millisecond)
	before, err := l.rcv.source.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	for i := 0; i < rounds; i++ {
		run()
	}
	after, err := l.rcv.source.Stats()
	if err != nil {
		t.Fatal(err)
	}
	execs, submitted := after.Execs-before.Execs, after.Submitted-before.Submitted
	if execs < 3*rounds {
		t.Fatalf("the kernel saw %d execs, want at least %d", execs, 3*rounds)
	}
	// other processes on the machine may exec unknown files meanwhile
	if submitted > 10 {
		t.Errorf("%d of %d benign execs went to user space, want ~0", submitted, execs)
	}
}

// TestPrivilegedHashRace measures the race every user-space hasher has:
// how often a short-lived process had already exited when its executable
// was hashed. On-disk files are still hashed through their path (identity
// checked); only files gone from disk too (memfd, deleted) rely on the
// kernel's fingerprint.
func TestPrivilegedHashRace(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	const copies = 200
	for i := 0; i < copies; i++ {
		p := filepath.Join(dir, fmt.Sprintf("true-%d", i))
		copyFile(t, "/bin/true", p)
		_ = exec.Command(p).Run()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := l.rcv.hasher.Stats()
		if st.FromProcExe+st.FromPath+st.Lost >= copies {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := l.rcv.hasher.Stats()
	judged := st.FromProcExe + st.FromPath + st.Lost
	t.Logf("first sights hashed: %d; through /proc/PID/exe (process still alive): %d; through the path after it exited: %d; lost: %d",
		judged, st.FromProcExe, st.FromPath, st.Lost)
	if judged < copies {
		t.Fatalf("only %d of %d new files were judged", judged, copies)
	}
	if st.Lost != 0 {
		t.Errorf("%d on-disk files could not be hashed", st.Lost)
	}
}
