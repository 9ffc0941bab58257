// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestPrivilegedNoDeviceOpened names devices as scripts, as a program for
// the loader and as stdin: the collector looks at them only through O_PATH
// descriptors (no driver's open runs) and never opens one. strace records
// every open of the collector's threads; fanotify cannot see device opens.
func TestPrivilegedNoDeviceOpened(t *testing.T) {
	l := startLive(t, nil)
	trace := filepath.Join(t.TempDir(), "opens")
	st := exec.Command("strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-e", "signal=none", "-o", trace, "-p", fmt.Sprint(os.Getpid()))
	if err := st.Start(); err != nil {
		t.Fatalf("strace (apt-get install strace): %v", err)
	}
	defer func() { _ = st.Process.Kill(); _ = st.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(trace); err == nil && fi.Size() >= 0 {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // attached to every thread
	marker := newMarker("devices")
	run := func(argv ...string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		// pipes, not /dev/null: the test's own opens must not count
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), io.Discard, io.Discard
		_ = cmd.Start()
		timer := time.AfterFunc(2*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
		timer.Stop()
	}
	run("/usr/bin/python3", "/dev/ptmx", marker)
	run("/bin/sh", "/dev/zero", marker)
	run("/usr/bin/perl", "/dev/null", marker)
	run("/lib64/ld-linux-x86-64.so.2", "/dev/zero", marker)
	run("/bin/sh", "-c", "exec /usr/bin/python3 - "+marker+" < /dev/null") // stdin is a device
	time.Sleep(time.Second)                                                // the judges had their look
	_ = st.Process.Signal(os.Interrupt)
	_ = st.Wait()
	tids := map[string]bool{}
	if ents, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, e := range ents {
			tids[e.Name()] = true
		}
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	looked, opened := 0, 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !tids[f[0]] {
			continue // a child's open, not the collector's
		}
		if !strings.Contains(line, `"/dev/ptmx"`) && !strings.Contains(line, `"/dev/zero"`) &&
			!strings.Contains(line, `"/dev/null"`) && !strings.Contains(line, `/fd/0"`) {
			continue
		}
		if strings.Contains(line, "O_PATH") {
			looked++
			continue
		}
		opened++
		t.Errorf("the collector opened a device: %s", line)
	}
	t.Logf("the collector looked at the devices %d times through O_PATH and opened one %d times", looked, opened)
	if looked == 0 {
		t.Fatal("the collector never looked at the devices named: the trace saw nothing, so this test proves nothing")
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
