//go:build linux

package receiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPrivilegedNotBlinded: while a judge reads a huge script that keeps
// growing, a real tool started a second later is still reported within a
// second, and shutdown finishes within five.
func TestPrivilegedNotBlinded(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	script := filepath.Join(dir, "big.sh")
	f, err := os.Create(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(500 << 20); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	sh := exec.Command("/bin/sh", script)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Process.Kill(); _ = sh.Wait() }()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the script grows while it is read
		for size := int64(500 << 20); ; size *= 2 {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = os.Truncate(script, min(size, 1<<50))
		}
	}()
	time.Sleep(time.Second)
	marker := newMarker("after_the_stall")
	start := time.Now()
	if err := exec.Command(lookPath(t, "ettercap"), "--version", marker).Run(); err != nil {
		t.Logf("ettercap: %v", err)
	}
	for len(l.withMarker(marker)) == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	if len(l.withMarker(marker)) != 1 || took > time.Second {
		t.Fatalf("ettercap during a stall: %d records after %v, want 1 within 1s", len(l.withMarker(marker)), took)
	}
	t.Logf("ettercap reported %v after its exec while a growing script was judged", took)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	if err := l.rcv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("shutdown took %v, limit 5s", d)
	}
}

// TestPrivilegedFloodFolds runs a copy of /bin/true named arpspoof 2000
// times with other arguments each time: the records are few, and their
// counts add up to every exec.
func TestPrivilegedFloodFolds(t *testing.T) {
	l := startLive(t, func(c *Config) { c.Fold.Window = time.Minute })
	dir := t.TempDir()
	fake := filepath.Join(dir, "arpspoof")
	copyFile(t, "/bin/true", fake)
	marker := newMarker("flood")
	const runs = 2000
	// one parent for every run, as a flooding script would be
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s -t $i %s; i=$((i+1)); done", runs, fake, marker)
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("flood: %v\n%s", err, out)
	}
	// shutdown sends what is held, with its counts
	if err := l.rcv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := l.withMarker(marker)
	total := 0
	for _, r := range recs {
		n := 1
		if c, ok := r.attrs["mitmexec.repeat_count"].(int64); ok {
			n = int(c)
		}
		if c, ok := r.attrs["mitmexec.summarized_count"].(int64); ok {
			n += int(c)
		}
		total += n
	}
	if len(recs) > 20 || total != runs {
		t.Fatalf("flood of %d: %d records standing for %d execs; want at most 20 records for all %d", runs, len(recs), total, runs)
	}
	t.Logf("flood of %d execs: %d records, counts add up to %d", runs, len(recs), total)
}

// TestPrivilegedNoDeviceOpened names devices as scripts and as stdin: the
// collector never opens one (fanotify reports every open of the device
// node, with the opener's pid).
func TestPrivilegedNoDeviceOpened(t *testing.T) {
	l := startLive(t, nil)
	devices := []string{"/dev/ptmx", "/dev/zero", "/dev/null"}
	fan, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		t.Fatalf("fanotify_init: %v", err)
	}
	defer unix.Close(fan)
	for _, d := range devices {
		if err := unix.FanotifyMark(fan, unix.FAN_MARK_ADD, unix.FAN_OPEN, unix.AT_FDCWD, d); err != nil {
			t.Fatalf("fanotify_mark %s: %v", d, err)
		}
	}
	marker := newMarker("devices")
	for _, argv := range [][]string{
		{"/usr/bin/python3", "/dev/ptmx", marker}, {"/bin/sh", "/dev/zero", marker}, {"/usr/bin/perl", "/dev/null", marker},
		{"/lib64/ld-linux-x86-64.so.2", "/dev/zero", marker},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		_ = cmd.Start()
		time.AfterFunc(2*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
	}
	devnull, _ := os.Open("/dev/null")
	py := exec.Command("/usr/bin/python3", "-", marker) // python reading its program from a device on stdin
	py.Stdin = devnull
	_ = py.Run()
	devnull.Close()
	time.Sleep(time.Second) // the judges had their look
	self := int32(os.Getpid())
	buf := make([]byte, 64<<10)
	opens := 0
	for {
		n, err := unix.Read(fan, buf)
		if n <= 0 || err != nil {
			break
		}
		for off := 0; off+24 <= n; {
			evLen := int(binary.LittleEndian.Uint32(buf[off:]))
			fd := int32(binary.LittleEndian.Uint32(buf[off+16:]))
			pid := int32(binary.LittleEndian.Uint32(buf[off+20:]))
			if fd >= 0 {
				unix.Close(int(fd))
			}
			if pid == self {
				opens++
			}
			if evLen <= 0 {
				break
			}
			off += evLen
		}
	}
	if opens != 0 {
		t.Fatalf("the collector opened a device %d times", opens)
	}
	_ = l
}

// TestPrivilegedSecretsRedacted runs tools whose argv carries credentials
// in the forms their users write them: none reaches a record.
func TestPrivilegedSecretsRedacted(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	secrets := []string{"Hunter2pass", "s3cr3tT0ken", "eyJhbGciOiJIUzI1NiJ9", "N0tAPassw0rd"}
	named := func(name string) string {
		p := filepath.Join(dir, name)
		copyFile(t, "/bin/true", p)
		return p
	}
	runScenarios(t, l, []scenario{
		{name: "impacket target", tool: "ntlmrelayx", argv: []string{named("ntlmrelayx"), "-t", "corp/alice:Hunter2pass@10.0.0.5"}},
		{name: "bettercap eval", tool: "bettercap", argv: []string{named("bettercap"), "-eval", "set api.rest.password s3cr3tT0ken; api.rest on"}},
		{name: "authorization header", tool: "mitmdump", argv: []string{named("mitmdump"), "-H", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9"}},
		{name: "password option", tool: "sslsplit", argv: []string{named("sslsplit"), "--password=N0tAPassw0rd"}},
	})
	for _, r := range l.records() {
		all := fmt.Sprint(r.attrs, r.lr.Body().AsString())
		for _, s := range secrets {
			if strings.Contains(all, s) {
				t.Errorf("secret %q reached a record: %v", s, r.attrs["process.command_line"])
			}
		}
	}
}
