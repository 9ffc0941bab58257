// SPDX-License-Identifier: Apache-2.0

package filehash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// fakeProc lays out procRoot/PID with its root and cwd links.
func fakeProc(t *testing.T, procRoot string, pid uint32, root, cwd string) {
	t.Helper()
	d := filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(filepath.Join(d, "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"root": root, "cwd": cwd} {
		if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, p string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file that stat says is size bytes long and that costs
// nothing on disk.
func sparse(t *testing.T, p string, head []byte, size int64) {
	t.Helper()
	writeFile(t, p, head)
	if err := os.Truncate(p, size); err != nil {
		t.Skipf("the temp file system cannot hold a sparse file of %d bytes: %v", size, err)
	}
}

func TestExecSHA256ThroughProcExe(t *testing.T) {
	// GIVEN a live process 9 whose /proc/9/exe leads to its file, and no path
	dir := t.TempDir()
	p := filepath.Join(dir, "deleted-tool")
	content := []byte("\x7fELF running")
	writeFile(t, p, content)
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 9, "/", dir)
	if err := os.Symlink(p, filepath.Join(procRoot, "9", "exe")); err != nil {
		t.Fatal(err)
	}
	h := New(procRoot, 1<<20)
	e := &event.Exec{PID: 9, Nlink: 0, File: idOf(t, p)}
	got, err := h.ExecSHA256(e)
	if err != nil || got != sumOf(content) || h.Stats().FromProcExe != 1 {
		t.Fatalf("got %q %v stats %+v", got, err, h.Stats())
	}
	// and OpenExec hands the same verified file to a reader of its structure
	f, st, err := h.OpenExec(e)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := f.Read(head); err != nil || string(head) != "\x7fELF" || st.Ino != e.File.Ino {
		t.Errorf("head %q ino %d %v", head, st.Ino, err)
	}
}

func TestExecSHA256RefusesADevice(t *testing.T) {
	// GIVEN an exec whose path now names a device of the same inode number
	h := New(filepath.Join(t.TempDir(), "proc"), 1<<40)
	_, err := h.ExecSHA256(&event.Exec{PID: 1, ExePath: "/dev/zero", Nlink: 1, File: idOf(t, "/dev/zero")})
	// THEN it is refused unread
	if err == nil || h.Stats().NotRegular != 1 || h.Stats().Lost != 1 {
		t.Errorf("err %v stats %+v", err, h.Stats())
	}
}

func TestExecSHA256TimeBound(t *testing.T) {
	// GIVEN a 64 GiB sparse executable under a byte bound that allows it
	dir := t.TempDir()
	p := filepath.Join(dir, "huge")
	sparse(t, p, []byte("\x7fELF"), 64<<30)
	h := New(filepath.Join(dir, "proc"), 1<<40, WithExecTime(50*time.Millisecond))
	start := time.Now()
	_, err := h.ExecSHA256(&event.Exec{PID: 1, ExePath: p, Nlink: 1, File: idOf(t, p)})
	// THEN the time bound ends the hash and is counted
	if err == nil || !strings.Contains(err.Error(), "time bound") || h.Stats().TimeCut != 1 {
		t.Errorf("err %v stats %+v", err, h.Stats())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 50 ms bound took %s", d)
	}
}

func TestScriptRelativeToCwd(t *testing.T) {
	dir := t.TempDir()
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	writeFile(t, filepath.Join(dir, "w.py"), body)
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	// the kernel's cwd string is not used: it is cut at 32 components
	s, head, err := h.Script(&event.Exec{PID: 1, Cwd: "/somewhere/else"}, "w.py")
	if err != nil || s != sumOf(body) || string(head) != string(body) {
		t.Errorf("got %q %q %v", s, head, err)
	}
	if _, _, err := h.Script(&event.Exec{PID: 2, Cwd: dir}, "w.py"); err == nil {
		t.Error("a script of a process without a /proc entry was resolved")
	}
}

func TestScriptInTheProcessRoot(t *testing.T) {
	// GIVEN a containerised process whose /usr/bin/tool is not the host's
	dir := t.TempDir()
	root := filepath.Join(dir, "container")
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	writeFile(t, filepath.Join(root, "usr", "bin", "tool"), body)
	if err := os.Symlink("/usr/bin/tool", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 5, root, root)
	h := New(procRoot, 1<<20)
	// THEN the container's file is read, also through an absolute symlink
	for _, p := range []string{"/usr/bin/tool", "/link", "link"} {
		if s, _, err := h.Script(&event.Exec{PID: 5}, p); err != nil || s != sumOf(body) {
			t.Errorf("%s: %q %v", p, s, err)
		}
	}
}

func TestScriptCachedUntilWritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sh")
	writeFile(t, p, []byte("echo one\n"))
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	h.settle = 0
	e := &event.Exec{PID: 1}
	first, _, err := h.Script(e, p)
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _ := h.Script(e, p); again != first || h.Stats().Cached != 1 {
		t.Skipf("second read not cached (%+v): the temp file system is not one whose ctime the kernel keeps", h.Stats())
	}
	writeFile(t, p, []byte("echo two, longer\n"))
	if changed, _, _ := h.Script(e, p); changed == first {
		t.Error("a rewritten script kept its old hash")
	}
}

func TestScriptRewrittenInPlaceWithTheOldSizeAndMtime(t *testing.T) {
	// GIVEN a harmless script, read and cached
	dir := t.TempDir()
	p := filepath.Join(dir, "s.py")
	harmless := []byte("print('hello, world')\n")
	writeFile(t, p, harmless)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	h.settle = 0
	e := &event.Exec{PID: 1}
	if s, _, err := h.Script(e, p); err != nil || s != sumOf(harmless) {
		t.Fatalf("got %q %v", s, err)
	}
	if _, _, _ = h.Script(e, p); h.Stats().Cached != 1 {
		t.Skipf("not cached (%+v): the temp file system is not one whose ctime the kernel keeps", h.Stats())
	}
	// WHEN it is rewritten in place, same inode and length, and touch -d
	// puts its modification time back
	evil := []byte("import mitmproxy  ###\n")
	if len(evil) != len(harmless) {
		t.Fatal("test bodies differ in length")
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(evil, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil || st.Size != int64(len(harmless)) || !time.Unix(st.Mtim.Unix()).Equal(old) {
		t.Fatalf("precondition: size %d mtime %v %v", st.Size, time.Unix(st.Mtim.Unix()), err)
	}
	// THEN the new content is hashed, not the cached verdict returned
	s, head, err := h.Script(e, p)
	if err != nil || s != sumOf(evil) || string(head) != string(evil) {
		t.Errorf("got %q %q %v, want the rewritten script's hash", s, head, err)
	}
}

func TestScriptNotCachedWhileItsCtimeIsFresh(t *testing.T) {
	// A script changed within the last clock tick could change again
	// within the same tick without moving ctime: it is read every time.
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sh")
	writeFile(t, p, []byte("echo fresh\n"))
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	for i := 0; i < 2; i++ {
		if _, _, err := h.Script(&event.Exec{PID: 1}, p); err != nil {
			t.Fatal(err)
		}
	}
	if h.Stats().Cached != 0 {
		t.Errorf("a script changed just now was cached: %+v", h.Stats())
	}
}

func TestScriptFIFONeverBlocks(t *testing.T) {
	// GIVEN a FIFO without a writer where a script is expected
	dir := t.TempDir()
	p := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	done := make(chan error, 1)
	go func() {
		_, _, err := h.Script(&event.Exec{PID: 1}, p)
		done <- err
	}()
	// THEN it is refused at once
	select {
	case err := <-done:
		if err == nil || h.Stats().NotRegular != 1 {
			t.Errorf("a FIFO was read as a script: %v %+v", err, h.Stats())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("opening a FIFO blocked the hasher")
	}
}

func TestScriptDevicesAreRefused(t *testing.T) {
	// sh /dev/zero, python3 /dev/ptmx: the collector must not open them
	dir := t.TempDir()
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<20)
	for _, p := range []string{"/dev/zero", "/dev/ptmx", "/dev/null", "/proc/version", dir} {
		if _, _, err := h.Script(&event.Exec{PID: 1}, p); err == nil {
			t.Errorf("%s was read as a script", p)
		}
	}
	if h.Stats().NotRegular != 5 {
		t.Errorf("stats %+v, want 5 refused", h.Stats())
	}
}

func TestScriptOverTheByteBoundKeepsItsHead(t *testing.T) {
	// GIVEN a 2 MiB script that starts with the tool's import
	dir := t.TempDir()
	p := filepath.Join(dir, "big.py")
	body := append([]byte("from mitmproxy.tools.main import mitmdump\n"), bytes.Repeat([]byte("#"), 2<<20)...)
	writeFile(t, p, body)
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	h := New(procRoot, 1<<30)
	// THEN it is not hashed, but its first 64 KiB come back to be judged
	s, head, err := h.Script(&event.Exec{PID: 1}, p)
	if err != nil || s != "" || len(head) != 64<<10 || !bytes.HasPrefix(head, []byte("from mitmproxy")) || h.Stats().TooLarge != 1 {
		t.Errorf("sum %q head %d bytes err %v stats %+v", s, len(head), err, h.Stats())
	}
}

func TestScriptSparsePebibyteIsBounded(t *testing.T) {
	// GIVEN sh given a script stat says is 1 TiB (grown after the exec)
	dir := t.TempDir()
	p := filepath.Join(dir, "grown.sh")
	sparse(t, p, []byte("#!/bin/sh\n"), 1<<40)
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 1, "/", dir)
	start := time.Now()
	// WHEN the byte bound would allow all of it, the time bound ends it
	h := New(procRoot, 1<<50, WithScriptBytes(1<<50), WithScriptTime(50*time.Millisecond))
	s, head, err := h.Script(&event.Exec{PID: 1}, p)
	if err != nil || s != "" || !bytes.HasPrefix(head, []byte("#!/bin/sh")) || h.Stats().TimeCut != 1 {
		t.Errorf("sum %q head %d err %v stats %+v", s, len(head), err, h.Stats())
	}
	// and with the default bounds the byte bound ends it at once
	h = New(procRoot, 1<<50)
	if s, head, err := h.Script(&event.Exec{PID: 1}, p); err != nil || s != "" || len(head) != 64<<10 || h.Stats().TooLarge != 1 {
		t.Errorf("default bounds: sum %q head %d err %v stats %+v", s, len(head), err, h.Stats())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("reading took %s", d)
	}
}

func TestScriptOfTheProcessOwnDescriptors(t *testing.T) {
	if target, err := os.Readlink("/dev/fd"); err != nil || filepath.Clean(target) != "/proc/self/fd" {
		t.Skipf("/dev/fd here is %q (%v), not the usual link", target, err)
	}
	// GIVEN a process 77 whose fd 3 holds a script
	dir := t.TempDir()
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 77, "/", dir)
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	script := filepath.Join(dir, "payload")
	writeFile(t, script, body)
	if err := os.Symlink(script, filepath.Join(procRoot, "77", "fd", "3")); err != nil {
		t.Fatal(err)
	}
	h := New(procRoot, 1<<20)
	// WHEN the exec names it as /dev/fd/3 or /proc/self/fd/3
	for _, p := range []string{"/dev/fd/3", "/proc/self/fd/3"} {
		sum, _, err := h.Script(&event.Exec{PID: 77}, p)
		// THEN it is the process's descriptor that is read, not the collector's
		if err != nil || sum != sumOf(body) {
			t.Errorf("%s: got %q, %v", p, sum, err)
		}
	}
}

func TestStdin(t *testing.T) {
	dir := t.TempDir()
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 3, "/", dir)
	fakeProc(t, procRoot, 4, "/", dir)
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	writeFile(t, filepath.Join(dir, "tool.py"), body)
	if err := os.Symlink(filepath.Join(dir, "tool.py"), filepath.Join(procRoot, "3", "fd", "0")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(procRoot, "4", "fd", "0")); err != nil {
		t.Fatal(err)
	}
	h := New(procRoot, 1<<20)
	if s, head, err := h.Stdin(&event.Exec{PID: 3}); err != nil || s != sumOf(body) || string(head) != string(body) {
		t.Errorf("file on stdin: %q %q %v", s, head, err)
	}
	if _, _, err := h.Stdin(&event.Exec{PID: 4}); err == nil || h.Stats().NotRegular != 1 {
		t.Errorf("a device on stdin was read: %v %+v", err, h.Stats())
	}
}

func TestScriptOfAReusedPid(t *testing.T) {
	// GIVEN pid 6 now belongs to a process that started long after the exec
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s.py"), []byte("print(1)\n"))
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 6, "/", dir)
	writeFile(t, filepath.Join(procRoot, "6", "stat"), []byte("6 (python3) S 1 6 6 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9000 0 0\n"))
	h := New(procRoot, 1<<20)
	// THEN its root and cwd are not taken for the exec's
	if _, _, err := h.Script(&event.Exec{PID: 6, StartBootTimeNs: 500 * 1e7}, "s.py"); !errors.Is(err, ErrGone) {
		t.Errorf("err %v, want ErrGone", err)
	}
	if s, _, err := h.Script(&event.Exec{PID: 6, StartBootTimeNs: 9000 * 1e7}, "s.py"); err != nil || s == "" {
		t.Errorf("the same process: %q %v", s, err)
	}
}

// TestScriptOfAnExitedProcessOnTheHost: a process of the collector's mount
// namespace that has exited has no root to resolve in; its script is read
// from the collector's own root, with the checks every read has.
func TestScriptOfAnExitedProcessOnTheHost(t *testing.T) {
	dir := t.TempDir()
	body := []byte("from mitmproxy.tools.main import mitmdump\n")
	writeFile(t, filepath.Join(dir, "w.py"), body)
	link, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatalf("mount namespace: %v", err)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "mnt:["), "]"), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("/bin/true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	h := New("/proc", 1<<20, WithHostMountNamespace(uint32(n)))
	e := &event.Exec{PID: uint32(gone.Process.Pid), MntNS: uint32(n)}
	if s, _, err := h.Script(e, filepath.Join(dir, "w.py")); err != nil || s != sumOf(body) {
		t.Errorf("script of an exited process: %q %v, want the file's sum", s, err)
	}
}
