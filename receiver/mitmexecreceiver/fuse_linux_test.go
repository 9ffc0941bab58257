// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fuseServer is a FUSE file system (fusepy) that serves a copy of a
// program and a Python script to everyone, answers every request of the
// process hold (its stat and lookup too) except its opens, which it never
// answers, and writes a line to log for each open it holds.
const fuseServer = `import errno, os, stat, sys, time
from fusepy import FUSE, Operations, FuseOSError, fuse_get_context
mnt, prog, hold, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = {'/prog': (open(prog, 'rb').read(), 0o755), '/script.py': (b"print('hello')\n", 0o644)}
def tgid(tid):
    try:
        for line in open('/proc/%d/status' % tid):
            if line.startswith('Tgid:'):
                return int(line.split()[1])
    except OSError:
        pass
    return tid
class FS(Operations):
    def getattr(self, path, fh=None):
        if path == '/':
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path in files:
            data, mode = files[path]
            return dict(st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=len(data))
        raise FuseOSError(errno.ENOENT)
    def readdir(self, path, fh):
        return ['.', '..'] + [p[1:] for p in files]
    def open(self, path, flags):
        if tgid(fuse_get_context()[2]) == hold:
            with open(log, 'a') as f:
                f.write(path + '\n')
            while True:
                time.sleep(3600)
        return 0
    def read(self, path, size, offset, fh):
        return files[path][0][offset:offset + size]
FUSE(FS(), mnt, foreground=True, allow_other=True)
`

// TestPrivilegedFUSENeverWedges: a FUSE server that never answers the
// collector's opens. The collector judges the program it serves and a
// script on it without asking the server for anything it could withhold,
// reports a real tool started meanwhile, shuts down within its deadline,
// and a new collector starts and works.
func TestPrivilegedFUSENeverWedges(t *testing.T) {
	requirePrivileges(t)
	dir := t.TempDir()
	mnt, server, held := filepath.Join(dir, "mnt"), filepath.Join(dir, "server.py"), filepath.Join(dir, "held")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, server, fuseServer)
	srv := exec.Command("/usr/bin/python3", server, mnt, "/bin/true", fmt.Sprint(os.Getpid()), held)
	out := &strings.Builder{}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// aborting the connection frees whatever still waits on it
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	prog := filepath.Join(mnt, "prog")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(prog); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the FUSE server did not come up (apt-get install python3-fusepy): %s", out)
		}
	}

	l := startLive(t, nil)
	marker := newMarker("fuse_program")
	if err := exec.Command(prog, marker).Run(); err != nil {
		t.Fatalf("the program served by FUSE: %v", err)
	}
	if err := exec.Command("/usr/bin/python3", filepath.Join(mnt, "script.py"), marker).Run(); err != nil {
		t.Fatalf("the script served by FUSE: %v", err)
	}
	// a symbolic link elsewhere that leads onto the FUSE mount
	link := filepath.Join(dir, "link.py")
	if err := os.Symlink(filepath.Join(mnt, "script.py"), link); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("/usr/bin/python3", link, marker).Run(); err != nil {
		t.Fatalf("the script served by FUSE through a link: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the judges have had both
	tool := newMarker("tool_beside_fuse")
	_ = exec.Command(lookPath(t, "ettercap"), "--version", tool).Run()
	l.waitFor(t, []string{tool})
	if n := len(l.withMarker(tool)); n != 1 {
		t.Errorf("ettercap beside the FUSE server: %d records, want 1", n)
	}
	if b, _ := os.ReadFile(held); len(b) != 0 {
		t.Errorf("the collector asked the FUSE server to open %q", strings.Fields(string(b)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	if err := l.rcv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	// a new collector starts while the server still hangs, and works
	l2 := startLive(t, nil)
	again := newMarker("tool_after_restart")
	_ = exec.Command(lookPath(t, "ettercap"), "--version", again).Run()
	l2.waitFor(t, []string{again})
	if n := len(l2.withMarker(again)); n != 1 {
		t.Errorf("after the restart: %d records, want 1", n)
	}
	if b, _ := os.ReadFile(held); len(b) != 0 {
		t.Errorf("the collector asked the FUSE server to open %q", strings.Fields(string(b)))
	}
}
