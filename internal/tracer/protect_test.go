// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// TestProtectedIsAProcess: the exec hook spares a protected process only
// while its pid is the process that started at the protected start: a pid
// whose protected start is another process's (a reused pid) is killed.
func TestProtectedIsAProcess(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := New(Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tool := copyExecutable(t, "/bin/true", t.TempDir())
	id, err := fileid.Path(tool)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.PutVerdict(id, event.Verdict{Kind: event.VerdictTool, ToolID: 1, Action: event.ActionKill}); err != nil {
		t.Fatal(err)
	}
	// run starts a shell that execs the tool once told to, protected with
	// its start shifted by skew ticks, and reports whether SIGKILL ended it
	run := func(skew uint64) (killed bool, rec event.Exec) {
		cmd := exec.Command("/bin/sh", "-c", "read x; exec "+tool)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.Process.Pid)
		st, err := procfs.ReadStat("/proc", pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Protect(pid, st.StartTicks+skew); err != nil {
			t.Fatal(err)
		}
		if _, err := stdin.Write([]byte("go\n")); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		for {
			// the shell's own exec may go up first
			if rec = recordOf(t, tr, int(pid)); rec.File.Ino == id.Ino {
				return ws.Signaled() && ws.Signal() == syscall.SIGKILL, rec
			}
		}
	}
	if killed, rec := run(0); killed || rec.Flags&event.FlagKilled != 0 {
		t.Errorf("protected process: killed %v, record flags %#x; want it spared", killed, rec.Flags)
	}
	if killed, rec := run(7); !killed || rec.Flags&event.FlagKilled == 0 {
		t.Errorf("pid protected for another start: killed %v, record flags %#x; want it killed", killed, rec.Flags)
	}
}
