package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/event"
)

func idOf(t *testing.T, p string) event.FileID {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return event.FileID{Dev: event.KernelDev(uint64(st.Dev)), Ino: st.Ino}
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestExecSHA256ByPath(t *testing.T) {
	// GIVEN a process that already exited (no /proc entry) and its file on disk
	dir := t.TempDir()
	p := filepath.Join(dir, "backup-agent")
	content := []byte("\x7fELF pretend binary")
	if err := os.WriteFile(p, content, 0o755); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	e := &event.Exec{PID: 4242, ExePath: p, Nlink: 1, File: idOf(t, p)}
	// WHEN it is hashed THEN the path serves, identity checked, and the result is cached
	got, err := h.ExecSHA256(e)
	if err != nil || got != sumOf(content) {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := h.ExecSHA256(e); err != nil || h.Stats().Cached != 1 || h.Stats().FromPath != 1 {
		t.Errorf("stats %+v", h.Stats())
	}
}

func TestExecSHA256RefusesAnotherFile(t *testing.T) {
	// GIVEN the path now holds another file than the one the exec loaded
	dir := t.TempDir()
	p := filepath.Join(dir, "tool")
	if err := os.WriteFile(p, []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	id := idOf(t, p)
	id.Ino++
	_, err := h.ExecSHA256(&event.Exec{PID: 1, ExePath: p, Nlink: 1, File: id})
	// THEN it is not hashed and the lost race is counted
	if !errors.Is(err, ErrGone) || h.Stats().Lost != 1 {
		t.Errorf("err %v stats %+v", err, h.Stats())
	}
}

func TestExecSHA256Bounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "huge")
	if err := os.WriteFile(p, make([]byte, 2048), 0o755); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1024)
	if _, err := h.ExecSHA256(&event.Exec{PID: 1, ExePath: p, Nlink: 1, File: idOf(t, p)}); err == nil || h.Stats().TooLarge != 1 {
		t.Errorf("a file over the bound was hashed: %v %+v", err, h.Stats())
	}
}

func TestScriptRelativeToCwd(t *testing.T) {
	dir := t.TempDir()
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	if err := os.WriteFile(filepath.Join(dir, "w.py"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	s, head, err := h.Script(&event.Exec{PID: 1, Cwd: dir}, "w.py")
	if err != nil || s != sumOf(body) || string(head) != string(body) {
		t.Errorf("got %q %q %v", s, head, err)
	}
	if _, _, err := h.Script(&event.Exec{PID: 1}, "w.py"); err == nil {
		t.Error("a relative script without a cwd was resolved")
	}
}

func TestScriptCachedUntilWritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sh")
	if err := os.WriteFile(p, []byte("echo one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	e := &event.Exec{PID: 1}
	first, _, err := h.Script(e, p)
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _ := h.Script(e, p); again != first || h.Stats().Cached != 1 {
		t.Errorf("second read not cached: %+v", h.Stats())
	}
	if err := os.WriteFile(p, []byte("echo two, longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, _, _ := h.Script(e, p); changed == first {
		t.Error("a rewritten script kept its old hash")
	}
}

func TestScriptFIFONeverBlocks(t *testing.T) {
	// GIVEN a FIFO without a writer where a script is expected
	dir := t.TempDir()
	p := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	done := make(chan error, 1)
	go func() {
		_, _, err := h.Script(&event.Exec{PID: 1}, p)
		done <- err
	}()
	// THEN it is refused at once
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO was read as a script")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("opening a FIFO blocked the hasher")
	}
}

func TestScriptOfTheProcessOwnDescriptors(t *testing.T) {
	// GIVEN a process 77 whose fd 3 holds a script
	dir := t.TempDir()
	procFd := filepath.Join(dir, "proc", "77", "fd")
	if err := os.MkdirAll(procFd, 0o755); err != nil {
		t.Fatal(err)
	}
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	script := filepath.Join(dir, "payload")
	if err := os.WriteFile(script, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(script, filepath.Join(procFd, "3")); err != nil {
		t.Fatal(err)
	}
	h := New(filepath.Join(dir, "proc"), 1<<20)
	// WHEN the exec names it as /dev/fd/3 or /proc/self/fd/3
	for _, p := range []string{"/dev/fd/3", "/proc/self/fd/3"} {
		sum, _, err := h.Script(&event.Exec{PID: 77}, p)
		// THEN it is the process's descriptor that is read, not the collector's
		if err != nil || sum != sumOf(body) {
			t.Errorf("%s: got %q, %v", p, sum, err)
		}
	}
}
