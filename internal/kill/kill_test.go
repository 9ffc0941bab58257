// SPDX-License-Identifier: Apache-2.0

package kill

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeProc is one process of a fake /proc.
type fakeProc struct {
	pid, ppid, pgrp, session uint32
	start                    uint64 // ticks since boot
}

// fakeProcRoot writes a /proc with a stat and a main thread per process;
// each main thread lists the processes whose parent it is.
type fakeProcRoot struct {
	t    *testing.T
	root string
	mu   sync.Mutex
	// the fake pidfds: descriptor → pid, what was signalled, what is open
	fds     map[int]uint32
	next    int
	signals []string
	open    int
	// onStop runs when a process is sent SIGSTOP, instead of it stopping at once.
	onStop func(pid uint32)
	// procs: what each stat file says, to rewrite it with another state
	procsMu sync.Mutex
	procs   map[uint32]fakeProc
}

func newFakeProcRoot(t *testing.T, procs ...fakeProc) *fakeProcRoot {
	f := &fakeProcRoot{t: t, root: t.TempDir(), fds: map[int]uint32{}, next: 100, procs: map[uint32]fakeProc{}}
	for _, p := range procs {
		f.write(p, 'S')
	}
	for _, p := range procs {
		f.writeChildren(p.pid, procs)
	}
	return f
}

func (f *fakeProcRoot) write(p fakeProc, state byte) {
	f.procsMu.Lock()
	f.procs[p.pid] = p
	f.procsMu.Unlock()
	line := fmt.Sprintf("%d (a (b) c) %c %d %d %d 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n",
		p.pid, state, p.ppid, p.pgrp, p.session, p.start)
	task := filepath.Join(f.root, fmt.Sprint(p.pid), "task", fmt.Sprint(p.pid))
	if err := os.MkdirAll(task, 0o755); err != nil {
		f.t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(f.root, fmt.Sprint(p.pid), "stat"), filepath.Join(task, "stat")} {
		f.writeFile(path, []byte(line))
	}
}

func (f *fakeProcRoot) writeChildren(pid uint32, procs []fakeProc, extra ...uint32) {
	var kids []string
	for _, c := range procs {
		if c.ppid == pid {
			kids = append(kids, fmt.Sprint(c.pid))
		}
	}
	for _, c := range extra {
		kids = append(kids, fmt.Sprint(c))
	}
	path := filepath.Join(f.root, fmt.Sprint(pid), "task", fmt.Sprint(pid), "children")
	f.writeFile(path, []byte(strings.Join(kids, " ")))
}

// writeFile replaces a file at once, as the kernel's files change: the
// killer may read it meanwhile.
func (f *fakeProcRoot) writeFile(path string, b []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		f.t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		f.t.Error(err)
	}
}

// setState rewrites the state letter of pid's stat files.
func (f *fakeProcRoot) setState(pid uint32, state byte) {
	f.procsMu.Lock()
	p, ok := f.procs[pid]
	f.procsMu.Unlock()
	if !ok {
		f.t.Errorf("pid %d has no stat file to rewrite", pid)
		return
	}
	f.write(p, state)
}

func (f *fakeProcRoot) pidfds() pidfds {
	return pidfds{
		open: func(pid uint32) (int, error) {
			if _, err := os.Stat(filepath.Join(f.root, fmt.Sprint(pid))); err != nil {
				return -1, syscall.ESRCH
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.next++
			f.fds[f.next] = pid
			f.open++
			return f.next, nil
		},
		signal: func(fd int, sig syscall.Signal) error {
			f.mu.Lock()
			pid, ok := f.fds[fd]
			if ok {
				f.signals = append(f.signals, fmt.Sprintf("%s %d", map[syscall.Signal]string{syscall.SIGSTOP: "STOP", syscall.SIGKILL: "KILL"}[sig], pid))
			}
			onStop := f.onStop
			f.mu.Unlock()
			if !ok {
				return syscall.EBADF
			}
			if sig == syscall.SIGSTOP {
				if onStop != nil {
					onStop(pid)
				} else {
					f.setState(pid, 'T')
				}
			}
			return nil
		},
		close: func(fd int) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.fds[fd]; !ok {
				f.t.Errorf("fd %d closed twice", fd)
			}
			delete(f.fds, fd)
			f.open--
		},
	}
}

func (f *fakeProcRoot) killer(childrenFiles bool) *Killer {
	return &Killer{procRoot: f.root, guard: map[uint32]uint64{1: 0, 999: 540}, childrenFiles: childrenFiles,
		maxProcs: maxKillProcs, stopWait: 2 * time.Second, pidfds: f.pidfds()}
}

// checkOrder checks that nothing was killed before everything was stopped,
// and returns the pids stopped and killed.
func (f *fakeProcRoot) checkOrder(t *testing.T) (stopped, killed []string) {
	t.Helper()
	for _, s := range f.signals {
		sig, pid, _ := strings.Cut(s, " ")
		switch {
		case sig == "STOP" && len(killed) > 0:
			t.Errorf("pid %s stopped after the kills began: %v", pid, f.signals)
		case sig == "STOP":
			stopped = append(stopped, pid)
		default:
			killed = append(killed, pid)
		}
	}
	if f.open != 0 {
		t.Errorf("%d pidfds left open", f.open)
	}
	return stopped, killed
}

const tick = uint64(1e7) // ns per clock tick (USER_HZ 100)

func TestKillTreeFromFakeProc(t *testing.T) {
	for _, childrenFiles := range []bool{true, false} {
		t.Run(fmt.Sprintf("children_files=%v", childrenFiles), func(t *testing.T) {
			// GIVEN a tool (100) in its parent's group, its children and
			// grandchild, a child that started before it, a guarded pid
			// among its descendants and an unrelated later process
			f := newFakeProcRoot(t,
				fakeProc{pid: 50, ppid: 1, pgrp: 50, session: 50, start: 100},
				fakeProc{pid: 100, ppid: 50, pgrp: 50, session: 50, start: 500},
				fakeProc{pid: 101, ppid: 100, pgrp: 50, session: 50, start: 510},
				fakeProc{pid: 102, ppid: 100, pgrp: 50, session: 50, start: 520},
				fakeProc{pid: 103, ppid: 101, pgrp: 50, session: 50, start: 530},
				fakeProc{pid: 104, ppid: 100, pgrp: 50, session: 50, start: 499},
				fakeProc{pid: 999, ppid: 102, pgrp: 50, session: 50, start: 540},
				fakeProc{pid: 200, ppid: 1, pgrp: 50, session: 50, start: 600},
			)
			// and a pid listed as a child that a stranger holds by now
			f.writeChildren(100, nil, 101, 102, 104, 105)
			f.write(fakeProc{pid: 105, ppid: 7, pgrp: 7, session: 7, start: 550}, 'S')

			// WHEN the tool is killed
			res, err := f.killer(childrenFiles).Kill(100, 500*tick+3)

			// THEN the tool and its later descendants are stopped, then
			// killed; the guard, the older child, the stranger and the
			// unrelated process are not touched
			if err != nil {
				t.Fatal(err)
			}
			if res != (Result{Killed: 4, Descendants: 3}) {
				t.Errorf("result %+v, want 4 killed, 3 of them descendants", res)
			}
			stopped, killed := f.checkOrder(t)
			if strings.Join(stopped, ",") != "100,101,102,103" || strings.Join(killed, ",") != "100,101,102,103" {
				t.Errorf("signals %v, want 100..103 stopped (the tool first), then killed", f.signals)
			}
		})
	}
}

func TestKillTakesOrphansOfAGroupTheToolLeads(t *testing.T) {
	for _, leads := range []bool{true, false} {
		t.Run(fmt.Sprintf("leads=%v", leads), func(t *testing.T) {
			// GIVEN a tool that leads its process group (or does not), an
			// orphan it left in that group whose parent exited, and an
			// older process that joined the group later
			pgrp := uint32(50)
			if leads {
				pgrp = 100
			}
			f := newFakeProcRoot(t,
				fakeProc{pid: 100, ppid: 50, pgrp: pgrp, session: 50, start: 500},
				fakeProc{pid: 110, ppid: 1, pgrp: pgrp, session: 50, start: 510},
				fakeProc{pid: 111, ppid: 1, pgrp: pgrp, session: 50, start: 400},
			)
			// WHEN the tool is killed
			res, err := f.killer(true).Kill(100, 500*tick)
			// THEN the orphan goes with it only through the group the tool
			// created; the older process stays
			if err != nil {
				t.Fatal(err)
			}
			want := Result{Killed: 1}
			if leads {
				want = Result{Killed: 2, Descendants: 1}
			}
			if res != want {
				t.Errorf("result %+v, want %+v (signals %v)", res, want, f.signals)
			}
			f.checkOrder(t)
		})
	}
}

func TestKillRefusesGuardedAndReusedPids(t *testing.T) {
	// GIVEN a process that started at tick 500, and the guarded 999
	f := newFakeProcRoot(t, fakeProc{pid: 100, ppid: 50, pgrp: 50, session: 50, start: 500},
		fakeProc{pid: 999, ppid: 102, pgrp: 60, session: 60, start: 540})
	k := f.killer(true)
	// WHEN a guarded pid, a pid with another start and a gone pid are killed
	if _, err := k.Kill(999, 0); !errors.Is(err, ErrProtected) {
		t.Errorf("guarded pid: %v, want ErrProtected", err)
	}
	_, err := k.Kill(100, 600*tick)
	if err == nil || !strings.Contains(err.Error(), "start time 500 ticks since boot, the exec'd one's is 600") {
		t.Errorf("reused pid: %v, want the start times named", err)
	}
	if _, err := k.Kill(300, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("gone pid: %v, want ESRCH", err)
	}
	// THEN nothing is signalled and no pidfd is left open
	if len(f.signals) != 0 || f.open != 0 {
		t.Errorf("signals %v, %d pidfds open", f.signals, f.open)
	}
}

func TestKillCapsTheTree(t *testing.T) {
	// GIVEN a tool with ten children
	procs := []fakeProc{{pid: 100, ppid: 50, pgrp: 50, session: 50, start: 500}}
	for i := range uint32(10) {
		procs = append(procs, fakeProc{pid: 101 + i, ppid: 100, pgrp: 50, session: 50, start: 501})
	}
	f := newFakeProcRoot(t, procs...)
	k := f.killer(true)
	k.maxProcs = 4
	// WHEN it is killed with room for four processes
	res, err := k.Kill(100, 500*tick)
	// THEN four are killed, the tool among them, and the result says so
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Killed: 4, Descendants: 3, Capped: true}) {
		t.Errorf("result %+v, want 4 killed, 3 descendants, capped", res)
	}
	f.checkOrder(t)
}

func TestKillWaitsForTheStopBeforeReadingChildren(t *testing.T) {
	// GIVEN a tool whose fork was in flight when SIGSTOP came: the child
	// appears, and only then does the tool stop
	f := newFakeProcRoot(t, fakeProc{pid: 100, ppid: 50, pgrp: 50, session: 50, start: 500})
	done := make(chan struct{})
	f.onStop = func(pid uint32) {
		if pid != 100 {
			f.setState(pid, 'T')
			return
		}
		go func() {
			defer close(done)
			time.Sleep(20 * time.Millisecond)
			child := fakeProc{pid: 101, ppid: 100, pgrp: 50, session: 50, start: 501}
			f.write(child, 'R')
			f.writeChildren(100, []fakeProc{child})
			f.setState(100, 'T')
		}()
	}
	// WHEN it is killed
	res, err := f.killer(true).Kill(100, 500*tick)
	<-done
	// THEN the child is found and killed too
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Killed: 2, Descendants: 1}) {
		t.Errorf("result %+v, want the late child killed too (signals %v)", res, f.signals)
	}
}

func TestNewKillerLooksForChildrenFiles(t *testing.T) {
	// GIVEN a /proc whose threads list their children, and one without
	with, without := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(with, "self", "task", "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(with, "self", "task", "7", "children"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// THEN the killer reads children files only where they exist, and
	// guards pid 1 and itself either way
	for root, want := range map[string]bool{with: true, without: false} {
		k := New(root)
		_, one := k.guard[1]
		_, self := k.guard[uint32(os.Getpid())]
		if k.childrenFiles != want || !one || !self {
			t.Errorf("%s: children files %v, guard %v; want %v", root, k.childrenFiles, k.guard, want)
		}
	}
}

// TestKillGuardIsAProcessNotAPid: the guard names a process by its pid and
// its start; a later process that reuses a guarded pid is killed like any.
func TestKillGuardIsAProcessNotAPid(t *testing.T) {
	// GIVEN pid 999 guarded as the process that started at tick 540, and
	// now held by another process that started at tick 700
	f := newFakeProcRoot(t, fakeProc{pid: 999, ppid: 50, pgrp: 999, session: 50, start: 700})
	k := f.killer(true)
	// WHEN that process is killed
	res, err := k.Kill(999, 700*tick)
	// THEN it is
	if err != nil || res.Killed != 1 {
		t.Fatalf("reused guarded pid: %+v, %v; want it killed", res, err)
	}
	if got := k.Protected(); len(got) != 2 {
		t.Errorf("protected %v, want pid 1 and 999 with their starts", got)
	}
}
