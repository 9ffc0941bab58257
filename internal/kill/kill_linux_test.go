// SPDX-License-Identifier: Apache-2.0

//go:build linux

package kill

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// killTestEnv marks the processes of a test's tree. Every descendant
// inherits it, orphans too, so the test sees what the killer should take
// without relying on the parent links the killer itself reads.
const killTestEnv = "MITMEXEC_KILL_TEST"

// killTestTree is a shell started by a test as the "tool".
type killTestTree struct {
	t       *testing.T
	token   string
	cmd     *exec.Cmd
	pid     uint32
	startNs uint64
	waited  bool
}

// startKillTestTree runs script under /bin/sh; ownGroup makes the shell a
// process group leader, as a job-control shell does for a job.
func startKillTestTree(t *testing.T, script string, ownGroup bool) *killTestTree {
	t.Helper()
	tr := &killTestTree{t: t, token: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())}
	tr.cmd = exec.Command("/bin/sh", "-c", script)
	tr.cmd.Env = append(os.Environ(), killTestEnv+"="+tr.token)
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.cleanup)
	tr.pid = uint32(tr.cmd.Process.Pid)
	tr.startNs = killTestStartNs(t, tr.pid)
	return tr
}

// cleanup kills whatever a failed test left of the tree. One sweep is not
// enough when a loop of it still runs: it forks between the listing and
// the kill.
func (tr *killTestTree) cleanup() {
	killTestPoll(5*time.Second, func() bool {
		left := tr.marked()
		for _, pid := range left {
			if fd, err := unix.PidfdOpen(int(pid), 0); err == nil {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				_ = unix.Close(fd)
			}
		}
		return len(left) == 0
	})
	tr.wait()
}

// wait reaps the shell and reports whether SIGKILL ended it.
func (tr *killTestTree) wait() bool {
	if tr.waited {
		return false
	}
	tr.waited = true
	err := tr.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// marked lists the live processes of the tree: a zombie's environment
// reads empty, and a zombie is dead already.
func (tr *killTestTree) marked() []uint32 {
	want := []byte("\x00" + killTestEnv + "=" + tr.token + "\x00")
	dirs, _ := os.ReadDir("/proc")
	var out []uint32
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, env...), want) {
			out = append(out, uint32(pid))
		}
	}
	return out
}

// size counts the tree's processes, at most limit, through the kernel's
// children lists (CONFIG_PROC_CHILDREN).
func (tr *killTestTree) size(limit int) int {
	n, queue := 0, []uint32{tr.pid}
	for len(queue) > 0 && n < limit {
		pid := queue[0]
		queue = queue[1:]
		n++
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(b)) {
				if v, err := strconv.ParseUint(c, 10, 32); err == nil {
					queue = append(queue, uint32(v))
				}
			}
		}
	}
	return n
}

// comms counts the tree's live processes by command name.
func (tr *killTestTree) comms() map[string]int {
	out := map[string]int{}
	for _, pid := range tr.marked() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		out[strings.TrimSpace(string(b))]++
	}
	return out
}

// requireGone waits a second at most for the whole tree to die.
func (tr *killTestTree) requireGone() {
	tr.t.Helper()
	if !tr.wait() {
		tr.t.Errorf("the tool (pid %d) did not die of SIGKILL", tr.pid)
	}
	if !killTestPoll(time.Second, func() bool { return len(tr.marked()) == 0 }) {
		tr.t.Errorf("alive a second after the kill: %v (%v)", tr.marked(), tr.comms())
	}
}

func killTestPoll(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// killTestStartNs is the start in CLOCK_BOOTTIME ns, to clock-tick precision.
func killTestStartNs(t *testing.T, pid uint32) uint64 {
	t.Helper()
	e, err := procfs.ReadStat("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	return e.StartTicks * 1e7
}

func killTestState(pid uint32) byte {
	e, err := procfs.ReadStat("/proc", pid)
	if err != nil {
		return 0
	}
	return e.State
}

// startKillTestBystander starts a sleep before the tool: the tool's sibling, its
// children's uncle, which must survive.
func startKillTestBystander(t *testing.T) uint32 {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return uint32(cmd.Process.Pid)
}

func TestKillTakesTheWholeTreePrivileged(t *testing.T) {
	testenv.RequireRoot(t)
	for _, childrenFiles := range []bool{true, false} {
		t.Run(fmt.Sprintf("children_files=%v", childrenFiles), func(t *testing.T) {
			// GIVEN an unrelated sleep, then a tool running as a job with
			// two background children, an orphan (its subshell exited) and
			// a foreground child
			unrelated := startKillTestBystander(t)
			tr := startKillTestTree(t, `sleep 60 & sleep 60 & (sleep 60 &) ; sleep 60`, true)
			if !killTestPoll(10*time.Second, func() bool { c := tr.comms(); return c["sleep"] == 4 && c["sh"] <= 1 }) {
				t.Fatalf("tree not up: %v", tr.comms())
			}
			before := len(tr.marked())

			// WHEN the tool is killed
			k := New("/proc")
			if !k.childrenFiles {
				t.Fatal("this kernel lists no children in /proc/self/task/*/children (CONFIG_PROC_CHILDREN)")
			}
			k.childrenFiles = childrenFiles
			res, err := k.Kill(tr.pid, tr.startNs)

			// THEN the whole tree is gone within a second, and the sleep
			// started before the tool still sleeps
			if err != nil {
				t.Fatal(err)
			}
			if want := (Result{Killed: before, Descendants: before - 1}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
			tr.requireGone()
			if s := killTestState(unrelated); s != 'S' {
				t.Errorf("unrelated sleep %d is in state %q, want S", unrelated, s)
			}
		})
	}
}

func TestKillTakesForkingTreesPrivileged(t *testing.T) {
	testenv.RequireRoot(t)
	for _, c := range []struct {
		name, script string
		ownGroup     bool
	}{
		{"loop", `while :; do sleep 60 & done`, false},
		{"loop as a job", `while :; do sleep 60 & done`, true},
		{"three loops in subshells", `for i in 1 2 3; do (while :; do sleep 60 & done) & done; wait`, false},
		{"loop leaving orphans, as a job", `while :; do (sleep 60 &); done`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for round := range 3 {
				// GIVEN a tool that keeps forking
				unrelated := startKillTestBystander(t)
				tr := startKillTestTree(t, c.script, c.ownGroup)
				// (counted through the tree's own children lists: reading
				// every process's environment takes long enough, with
				// thousands of sleeps from earlier rounds still exiting,
				// for three unthrottled loops to outgrow the kill's cap;
				// orphans, which leave the tree, are found by environment)
				if !killTestPoll(10*time.Second, func() bool { return tr.size(30) >= 30 || len(tr.marked()) >= 30 }) {
					t.Fatalf("round %d: tree not up: %v", round, tr.comms())
				}
				// WHEN it is killed mid-fork
				began := time.Now()
				// The walk's bound is TestKillCapPrivileged's subject; here
				// it must not decide the race: three unthrottled loops fork
				// thousands of sleeps between the listing and the stop on a
				// fast machine, and a capped walk leaves them alive.
				k := New("/proc")
				k.maxProcs = 4 * maxKillProcs
				res, err := k.Kill(tr.pid, tr.startNs)
				t.Logf("round %d: %+v in %v", round, res, time.Since(began))
				// THEN no child is left behind
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if res.Capped || res.Killed < 30 || res.Descendants != res.Killed-1 {
					t.Errorf("round %d: result %+v, want at least 30 killed, not capped", round, res)
				}
				tr.requireGone()
				if s := killTestState(unrelated); s != 'S' {
					t.Errorf("round %d: unrelated sleep %d is in state %q, want S", round, unrelated, s)
				}
			}
		})
	}
}

func TestKillCapPrivileged(t *testing.T) {
	testenv.RequireRoot(t)
	// GIVEN a tool that keeps forking, and a killer with room for ten
	tr := startKillTestTree(t, `while :; do sleep 60 & done`, true)
	if !killTestPoll(10*time.Second, func() bool { return len(tr.marked()) >= 30 }) {
		t.Fatalf("tree not up: %v", tr.comms())
	}
	k := New("/proc")
	k.maxProcs = 10
	// WHEN it is killed
	res, err := k.Kill(tr.pid, tr.startNs)
	// THEN ten die, the tool among them, and the result says the cap was hit
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Killed: 10, Descendants: 9, Capped: true}) {
		t.Errorf("result %+v, want 10 killed, 9 descendants, capped", res)
	}
	if !tr.wait() {
		t.Error("the tool did not die of SIGKILL")
	}
}

func TestKillGuardPrivileged(t *testing.T) {
	testenv.RequireRoot(t)
	k := New("/proc")
	// WHEN the collector (this test), its parent or pid 1 is to be killed
	// THEN the guard refuses, whatever the start time
	for _, pid := range []uint32{uint32(os.Getpid()), uint32(os.Getppid()), 1} {
		if _, err := k.Kill(pid, killTestStartNs(t, pid)); !errors.Is(err, ErrProtected) {
			t.Errorf("pid %d: %v, want ErrProtected", pid, err)
		}
	}
	if s := killTestState(uint32(os.Getppid())); s == 'T' {
		t.Error("the parent was stopped")
	}
}

func TestKillSparesAnotherStartPrivileged(t *testing.T) {
	testenv.RequireRoot(t)
	// GIVEN a sleep
	tr := startKillTestTree(t, `exec sleep 60`, false)
	k := New("/proc")
	// WHEN it is killed with a start time a second off
	_, err := k.Kill(tr.pid, tr.startNs+1e9)
	// THEN it is neither killed nor stopped
	if err == nil || !strings.Contains(err.Error(), "now belongs to another process") {
		t.Fatalf("%v, want the start time mismatch", err)
	}
	time.Sleep(50 * time.Millisecond)
	if s := killTestState(tr.pid); s != 'S' {
		t.Errorf("state %q, want S", s)
	}
	// and with the right start time it dies, and after that it is gone
	if res, err := k.Kill(tr.pid, tr.startNs); err != nil || res != (Result{Killed: 1}) {
		t.Errorf("%+v, %v; want 1 killed", res, err)
	}
	tr.requireGone()
	if _, err := k.Kill(tr.pid, tr.startNs); !errors.Is(err, syscall.ESRCH) && (err == nil || !strings.Contains(err.Error(), "another process")) {
		t.Errorf("killing it again: %v, want ESRCH (or, were the pid reused already, the start time mismatch)", err)
	}
}
