// SPDX-License-Identifier: Apache-2.0

//go:build linux

package safeopen

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"golang.org/x/sys/unix"
)

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRegularReadsARegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "script.py")
	write(t, p, "print('hi')\n")
	f, st, err := OpenRegular(p)
	if err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(p, &want); err != nil {
		t.Fatal(err)
	}
	if st.Ino != want.Ino || st.Dev != want.Dev || st.Size != 12 {
		t.Errorf("stat %+v, want inode %d", st, want.Ino)
	}
	if got := readAll(t, f); got != "print('hi')\n" {
		t.Errorf("read %q", got)
	}
}

func TestOpenRegularRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	target := filepath.Join(dir, "target")
	write(t, target, "x")
	link := filepath.Join(dir, "link")
	symlink(t, target, link)

	cases := []struct {
		path, kind string
		open       func(string) (*os.File, unix.Stat_t, error)
	}{
		{"/dev/null", "character device", OpenRegular},
		{"/dev/zero", "character device", OpenRegular},
		{"/dev/ptmx", "character device", OpenRegular},
		{fifo, "fifo", OpenRegular},
		{sock, "socket", OpenRegular},
		{dir, "directory", OpenRegular},
		{link, "symlink", OpenRegularNoFollow},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() {
			f, _, err := c.open(c.path)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			// THEN it is refused, by type, naming the path and the type
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), strconv.Quote(c.path)) || !strings.Contains(err.Error(), c.kind) {
				t.Errorf("%s: err %v, want %q refused as a %s", c.path, err, c.path, c.kind)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: opening blocked", c.path)
		}
	}
	// the symlink followed is the regular file it points at
	if f, _, err := OpenRegular(link); err != nil {
		t.Errorf("followed symlink: %v", err)
	} else {
		f.Close()
	}
}

func TestOpenRegularRefusesKernelInterfaceFiles(t *testing.T) {
	// /proc/kmsg and tracefs's trace_pipe are regular files whose reads
	// consume the kernel's messages; procfs and sysfs files are refused.
	for _, p := range []string{"/proc/version", "/proc/self/status", "/sys/kernel/uevent_seqnum"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		f, _, err := OpenRegular(p)
		if f != nil {
			f.Close()
		}
		if !errors.Is(err, ErrKernelFile) {
			t.Errorf("%s: err %v, want it refused as a kernel interface file", p, err)
		}
	}
}

func TestOpenRegularThroughMagicLinks(t *testing.T) {
	// GIVEN a file this process holds open, then deleted from its directory
	p := filepath.Join(t.TempDir(), "held")
	write(t, p, "held content")
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	// WHEN it is opened through /proc/PID/fd/N THEN the magic link gives
	// the descriptor's file, deleted or not
	f, _, err := OpenRegular("/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(held.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "held content" {
		t.Errorf("read %q", got)
	}
	// and /proc/PID/exe is the program, a regular file on disk
	exe, _, err := OpenRegular("/proc/" + strconv.Itoa(os.Getpid()) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(exe, head); err != nil || string(head) != "\x7fELF" {
		t.Errorf("exe head %q %v", head, err)
	}
	exe.Close()
}

// fakeProc lays out procRoot/PID with root and cwd links to directories.
func fakeProc(t *testing.T, procRoot string, pid int, root, cwd string) {
	t.Helper()
	d := filepath.Join(procRoot, strconv.Itoa(pid))
	symlink(t, root, filepath.Join(d, "root"))
	symlink(t, cwd, filepath.Join(d, "cwd"))
}

func TestOpenInProcessResolvesInTheProcessRoot(t *testing.T) {
	// GIVEN a process whose root is a directory with its own /etc/hostname
	// and symlinks that point at absolute paths and climb above the root
	base := t.TempDir()
	root := filepath.Join(base, "root")
	write(t, filepath.Join(root, "etc", "hostname"), "fake-root\n")
	write(t, filepath.Join(root, "srv", "app", "run.py"), "import mitm\n")
	symlink(t, "/etc/hostname", filepath.Join(root, "link"))
	symlink(t, "../../../../../../etc/hostname", filepath.Join(root, "srv", "climb"))
	procRoot := filepath.Join(base, "proc")
	fakeProc(t, procRoot, 42, root, filepath.Join(root, "srv", "app"))

	for _, p := range []string{"/link", "/etc/hostname", "/../../../../etc/hostname", "/srv/climb", "../../link", "../climb"} {
		f, _, err := OpenInProcess(procRoot, 42, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		// THEN every one of them stays in the process's root
		if got := readAll(t, f); got != "fake-root\n" {
			t.Errorf("%s read %q, want the process root's hostname", p, got)
		}
	}
	f, _, err := OpenInProcess(procRoot, 42, "run.py")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "import mitm\n" {
		t.Errorf("run.py read %q", got)
	}
	if _, _, err := OpenInProcess(procRoot, 43, "/link"); err == nil {
		t.Error("a process without a /proc entry was resolved")
	}
}

func TestOpenInProcessCwdWithoutANameInItsRoot(t *testing.T) {
	// GIVEN a working directory outside the process's root as the
	// collector sees it, so /proc/PID/cwd's text cannot be used
	base := t.TempDir()
	root := filepath.Join(base, "root")
	cwd := filepath.Join(base, "elsewhere", "dir")
	write(t, filepath.Join(root, "x"), "root x")
	write(t, filepath.Join(cwd, "s.py"), "beneath\n")
	write(t, filepath.Join(base, "elsewhere", "up.py"), "above\n")
	symlink(t, "/x", filepath.Join(cwd, "abs"))
	procRoot := filepath.Join(base, "proc")
	fakeProc(t, procRoot, 7, root, cwd)

	// THEN a plain relative name is still found beneath the directory
	f, _, err := OpenInProcess(procRoot, 7, "./s.py")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "beneath\n" {
		t.Errorf("read %q", got)
	}
	// and what would need the directory's name is refused, never guessed
	if _, _, err := OpenInProcess(procRoot, 7, "../up.py"); err == nil || !strings.Contains(err.Error(), `".."`) {
		t.Errorf("../up.py: %v", err)
	}
	if _, _, err := OpenInProcess(procRoot, 7, "abs"); err == nil {
		t.Error("an absolute symlink was followed out of the working directory")
	}
}

func TestOpenInProcessOwnDescriptors(t *testing.T) {
	// GIVEN process 77 with a script on fd 3 and a directory on fd 4, its
	// root the host's (where /dev/fd is the usual link into /proc/self)
	if target, err := os.Readlink("/dev/fd"); err != nil || filepath.Clean(target) != "/proc/self/fd" {
		t.Skipf("/dev/fd here is %q (%v), not the usual link", target, err)
	}
	base := t.TempDir()
	script := filepath.Join(base, "payload")
	write(t, script, "from mitmproxy.tools.main import mitmdump\n")
	write(t, filepath.Join(base, "tools", "x.py"), "in dir\n")
	procRoot := filepath.Join(base, "proc")
	fakeProc(t, procRoot, 77, "/", base)
	symlink(t, script, filepath.Join(procRoot, "77", "fd", "3"))
	symlink(t, filepath.Join(base, "tools"), filepath.Join(procRoot, "77", "fd", "4"))
	symlink(t, script, filepath.Join(procRoot, "77", "fd", "0"))

	for _, p := range []string{"/dev/fd/3", "/proc/self/fd/3", "/proc/thread-self/fd/3", "/dev//fd/./3", "/dev/stdin", "/proc/self/fd/0"} {
		f, _, err := OpenInProcess(procRoot, 77, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		// THEN the process's descriptor is read, not the collector's
		if got := readAll(t, f); got != "from mitmproxy.tools.main import mitmdump\n" {
			t.Errorf("%s read %q", p, got)
		}
	}
	f, _, err := OpenInProcess(procRoot, 77, "/dev/fd/4/x.py")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "in dir\n" {
		t.Errorf("read %q", got)
	}
	for _, p := range []string{"/proc/self/fd/4/../payload", "/proc/self/environ", "/dev/fd/x"} {
		if f, _, err := OpenInProcess(procRoot, 77, p); err == nil {
			f.Close()
			t.Errorf("%s was opened", p)
		}
	}
}

func TestOpenInProcessOwnDescriptorNamesInAnotherProc(t *testing.T) {
	// GIVEN a process whose root has no procfs at /proc: a plain directory
	// holds proc/self/fd/3 (what a user mounting a tmpfs on /proc gets)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	write(t, filepath.Join(root, "proc", "self", "fd", "3"), "decoy the interpreter reads\n")
	write(t, filepath.Join(base, "real"), "the process's real fd 3\n")
	procRoot := filepath.Join(base, "proc")
	fakeProc(t, procRoot, 5, root, root)
	symlink(t, filepath.Join(base, "real"), filepath.Join(procRoot, "5", "fd", "3"))
	// THEN the name is resolved as the process resolves it
	f, _, err := OpenInProcess(procRoot, 5, "/proc/self/fd/3")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "decoy the interpreter reads\n" {
		t.Errorf("read %q, want the file the process's own lookup finds", got)
	}
}

// deepTree makes levels nested directories named name under dir, through
// directory descriptors (the full path may exceed PATH_MAX), and writes
// files into the deepest one and its parent. It returns the relative path.
func deepTree(t *testing.T, dir string, levels int, name string, files map[string]string, parentFiles map[string]string) string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for i := 0; i < levels; i++ {
		if i == levels-1 {
			for n, body := range parentFiles {
				writeAt(t, fd, n, body)
			}
		}
		n := name + strconv.Itoa(i)
		if err := unix.Mkdirat(fd, n, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, n, unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
		rel = append(rel, n)
	}
	for n, body := range files {
		writeAt(t, fd, n, body)
	}
	unix.Close(fd)
	return strings.Join(rel, "/")
}

func writeAt(t *testing.T, dirfd int, name, body string) {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInProcessDeepCwd(t *testing.T) {
	// GIVEN a process 40 directories deep (the kernel's cwd string stops
	// at 32 components)
	dir := t.TempDir()
	rel := deepTree(t, dir, 40, "level", map[string]string{"w.py": "deep script\n"}, map[string]string{"p.py": "parent script\n"})
	pid := startHelper(t, "cwd:"+dir+":"+rel, nil)
	// THEN relative scripts are found from its real working directory
	for p, want := range map[string]string{"w.py": "deep script\n", "../p.py": "parent script\n", "../level39/w.py": "deep script\n"} {
		f, _, err := OpenInProcess("/proc", pid, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := readAll(t, f); got != want {
			t.Errorf("%s read %q", p, got)
		}
	}
}

func TestOpenInProcessCwdBeyondPathMax(t *testing.T) {
	// GIVEN a process whose working directory's path is longer than a page,
	// so that readlink of /proc/PID/cwd fails with ENAMETOOLONG
	dir := t.TempDir()
	rel := deepTree(t, dir, 40, strings.Repeat("d", 120), map[string]string{"w.py": "very deep\n"}, map[string]string{"p.py": "parent\n"})
	pid := startHelper(t, "cwd:"+dir+":"+rel, nil)
	if _, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/cwd"); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("readlink of the cwd: %v, want ENAMETOOLONG", err)
	}
	// THEN a plain name is found beneath the directory itself
	f, _, err := OpenInProcess("/proc", pid, "w.py")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "very deep\n" {
		t.Errorf("read %q", got)
	}
	// and ".." is refused with the reason, not resolved against a guess
	if _, _, err := OpenInProcess("/proc", pid, "../p.py"); err == nil || !strings.Contains(err.Error(), `".."`) {
		t.Errorf("../p.py: %v", err)
	}
}

func TestPrivilegedOpenInProcessFakeRoot(t *testing.T) {
	requireRoot(t)
	// GIVEN a process chrooted into a directory with its own /etc/hostname,
	// a symlink to "/etc/hostname", a procfs of its own at /proc and a
	// symlink through that procfs's magic links to the host's root
	root := t.TempDir()
	write(t, filepath.Join(root, "etc", "hostname"), "fake-root\n")
	symlink(t, "/etc/hostname", filepath.Join(root, "link"))
	symlink(t, "/proc/1/root/etc/hostname", filepath.Join(root, "escape"))
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := startHelper(t, "chroot:"+root, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS})
	host, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	// (the trap: the naive /proc/PID/root/link follows the absolute link
	// from the collector's root and reads the host's file)
	if naive, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/root/link"); err != nil || string(naive) != string(host) {
		t.Fatalf("precondition: the naive read gave %q %v, want the host's %q", naive, err, host)
	}
	// THEN the link resolves inside the process's root, absolute or relative
	for _, p := range []string{"/link", "link", "/../link"} {
		f, _, err := OpenInProcess("/proc", pid, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := readAll(t, f); got != "fake-root\n" {
			t.Errorf("%s read %q, want the fake root's, not the host's %q", p, got, host)
		}
	}
	// and a magic link inside it is not followed out of it
	if f, _, err := OpenInProcess("/proc", pid, "/escape"); err == nil {
		t.Errorf("/escape was opened: %q", readAll(t, f))
	}
}

// watchOpen watches p for opens; the returned function reports whether
// any happened since the last call.
func watchOpen(t *testing.T, p string) func() bool {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, p, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	return func() bool {
		buf := make([]byte, 4096)
		n, err := unix.Read(fd, buf)
		return err == nil && n > 0
	}
}

func TestPrivilegedDevicesAreNeverOpened(t *testing.T) {
	requireRoot(t)
	// GIVEN private nodes of /dev/null, /dev/zero and, in a devpts of our
	// own, ptmx; a FIFO and a directory: nobody else opens them, so an
	// inotify IN_OPEN on them is ours alone (O_PATH raises none)
	dir := t.TempDir()
	null, zero := filepath.Join(dir, "null"), filepath.Join(dir, "zero")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(zero, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	pts := filepath.Join(dir, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("devpts", pts, "devpts", 0, "newinstance,ptmxmode=0666"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(pts, unix.MNT_DETACH) })
	ptmx := filepath.Join(pts, "ptmx")
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	procRoot := filepath.Join(dir, "proc")
	fakeProc(t, procRoot, 9, "/", dir)
	terminals := func() int {
		ents, err := os.ReadDir(pts)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents) // ptmx and one entry per terminal
	}

	for _, p := range []string{null, zero, ptmx, fifo, sub} {
		opened := watchOpen(t, p)
		before := terminals()
		// WHEN the collector is asked to read it, by path and as a
		// process's script
		for _, open := range []func() (*os.File, unix.Stat_t, error){
			func() (*os.File, unix.Stat_t, error) { return OpenRegular(p) },
			func() (*os.File, unix.Stat_t, error) {
				return OpenInProcess(procRoot, 9, strings.TrimPrefix(p, dir+"/"))
			},
		} {
			f, _, err := open()
			if f != nil {
				f.Close()
			}
			// THEN it is refused and was never opened
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: err %v", p, err)
			}
		}
		if opened() {
			t.Errorf("%s was opened", p)
		}
		if after := terminals(); after != before {
			t.Errorf("%s: %d devpts entries, were %d: a terminal was allocated", p, after, before)
		}
		// (control: a real open is seen by the watch, and ptmx allocates
		// a terminal; ptmx_open marks its file FMODE_NONOTIFY, so for ptmx
		// the watch sees nothing either way and TestPtmxOpenedOnlyWithOPath
		// shows the system calls instead)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("control open %s: %v", p, err)
		}
		if p == ptmx && terminals() != before+1 {
			t.Errorf("control: opening ptmx did not allocate a terminal")
		}
		unix.Close(fd)
		if !opened() && p != ptmx {
			t.Errorf("control: the watch on %s missed a real open", p)
		}
	}
	// a socket is refused too (open(2) on one fails, so no watch is needed)
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := OpenRegular(sock); !errors.Is(err, ErrNotRegular) {
		t.Errorf("socket: %v", err)
	}
}

func TestPtmxOpenedOnlyWithOPath(t *testing.T) {
	// The kernel raises no fsnotify event for /dev/ptmx, so the system
	// calls themselves are watched: a child asked to open /dev/ptmx,
	// /dev/zero and a FIFO runs under strace.
	strace, err := exec.LookPath("strace")
	if err != nil {
		testenv.SkipOrFail(t, "strace is not installed")
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "trace")
	targets := []string{"/dev/ptmx", "/dev/zero", fifo}
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", log, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=open:"+strings.Join(targets, ":"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here: %v: %s", err, out)
	}
	trace, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range targets {
		seen := 0
		for _, line := range strings.Split(string(trace), "\n") {
			if !strings.Contains(line, strconv.Quote(p)) {
				continue
			}
			seen++
			// THEN the only open of each is O_PATH, which runs no driver
			if !strings.Contains(line, "O_PATH") {
				t.Errorf("%s was opened without O_PATH: %s", p, line)
			}
		}
		if seen == 0 {
			t.Errorf("%s: no open in the trace (strace output format?)", p)
		}
	}
	// and nothing was reopened for reading: the refusal came first
	if strings.Contains(string(trace), `"/proc/self/fd/`) {
		t.Errorf("a refused file was reopened:\n%s", trace)
	}
}
