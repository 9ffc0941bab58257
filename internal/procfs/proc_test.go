// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadStat(t *testing.T) {
	// GIVEN a stat line whose comm holds spaces and parentheses
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := "42 (a (weird) name) S 7 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n"
	if err := os.WriteFile(filepath.Join(root, "42", "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStat(root, 42)
	if err != nil || st.PPID != 7 || st.StartTicks != 500 {
		t.Fatalf("got %+v, %v", st, err)
	}
	if !st.SameStart(500*1e7) || !st.SameStart(501*1e7) || st.SameStart(600*1e7) {
		t.Error("start time comparison")
	}
	if _, err := ReadStat(root, 43); err == nil {
		t.Error("a missing process was read")
	}
}

// fakeProcess writes procRoot/PID/stat (started at tick start) and cmdline.
func fakeProcess(t *testing.T, root string, pid int, start int, cmdline string) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	writeStat(t, root, pid, start)
	if err := os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeStat(t *testing.T, root string, pid, start int) {
	t.Helper()
	line := fmt.Sprintf("%d (python3) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, start)
	if err := os.WriteFile(filepath.Join(root, strconv.Itoa(pid), "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCmdline(t *testing.T) {
	// GIVEN process 42, started at tick 500, run as python3 /tmp/x.py --flag
	root := t.TempDir()
	fakeProcess(t, root, 42, 500, "python3\x00/tmp/x.py\x00--flag\x00")
	args, truncated, err := Cmdline(root, 42, 500*1e7, 64<<10)
	if err != nil || truncated || !reflect.DeepEqual(args, []string{"python3", "/tmp/x.py", "--flag"}) {
		t.Errorf("got %q %v %v", args, truncated, err)
	}
	// a bound in bytes keeps the last argument as far as it was read
	args, truncated, err = Cmdline(root, 42, 500*1e7, 11)
	if err != nil || !truncated || !reflect.DeepEqual(args, []string{"python3", "/tm"}) {
		t.Errorf("bounded: got %q %v %v", args, truncated, err)
	}
	// exactly the bound is not a cut
	if _, truncated, err := Cmdline(root, 42, 500*1e7, len("python3\x00/tmp/x.py\x00--flag\x00")); err != nil || truncated {
		t.Errorf("exact bound: truncated %v %v", truncated, err)
	}
	// a later process with the pid is not the exec's
	if _, _, err := Cmdline(root, 42, 900*1e7, 64<<10); err == nil || !strings.Contains(err.Error(), "reused") {
		t.Errorf("another start time: %v", err)
	}
	if _, _, err := Cmdline(root, 43, 500*1e7, 64<<10); err == nil {
		t.Error("a missing process was read")
	}
	if _, _, err := Cmdline(root, 42, 500*1e7, 0); err == nil || !strings.Contains(err.Error(), "maxBytes is 0") {
		t.Errorf("no bound: %v", err)
	}
}

func TestCmdlinePidReusedDuringTheRead(t *testing.T) {
	// GIVEN the process exits and its pid is reused while cmdline is read
	root := t.TempDir()
	fakeProcess(t, root, 42, 500, "sleep\x0030\x00")
	_, _, err := readList(root, 42, 500*1e7, 64<<10, "cmdline", func() { writeStat(t, root, 42, 9000) })
	// THEN what was read is not returned as the exec's process's
	if err == nil || !strings.Contains(err.Error(), "reused") {
		t.Errorf("err %v, want the reuse found after the read", err)
	}
}

func TestReadBoundsTheStatLine(t *testing.T) {
	root := t.TempDir()
	fakeProcess(t, root, 42, 500, "")
	if err := os.WriteFile(filepath.Join(root, "42", "stat"), []byte(strings.Repeat("9 ", 4<<10)+") S 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStat(root, 42); err == nil || !strings.Contains(err.Error(), "over 4096 bytes") {
		t.Errorf("err %v", err)
	}
}

func TestCmdlineOfALiveProcess(t *testing.T) {
	// GIVEN a real child process
	cmd := exec.Command("sleep", "30", "0.001") // sleep adds its arguments up
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	pid := uint32(cmd.Process.Pid)
	var args []string
	var err error
	// (until the child has exec'd sleep, cmdline is the test binary's)
	for i := 0; i < 100; i++ {
		var st Stat
		if st, err = ReadStat("/proc", pid); err != nil {
			t.Fatal(err)
		}
		if args, _, err = Cmdline("/proc", pid, st.StartTicks*1e7, 64<<10); err == nil && len(args) == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || !reflect.DeepEqual(args, []string{"sleep", "30", "0.001"}) {
		t.Errorf("got %q %v", args, err)
	}
}

func TestStatusOfALiveProcess(t *testing.T) {
	st, err := ReadStat("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Status("/proc", uint32(os.Getpid()), st.StartTicks*1e7)
	if err != nil {
		t.Fatal(err)
	}
	if c.UID != uint32(os.Getuid()) || c.EUID != uint32(os.Geteuid()) || c.GID != uint32(os.Getgid()) || c.EGID != uint32(os.Getegid()) {
		t.Errorf("creds %+v, want this process's", c)
	}
	if !strings.HasPrefix(c.Cgroup, "/") {
		t.Errorf("cgroup %q, want a cgroup v2 path", c.Cgroup)
	}
	// another start time is another process
	if _, err := Status("/proc", uint32(os.Getpid()), (st.StartTicks+50)*1e7); err == nil {
		t.Errorf("status of the pid with another start time: no error")
	}
}
