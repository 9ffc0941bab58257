// SPDX-License-Identifier: Apache-2.0

//go:build linux

package modwatch

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// privileged skips without root, except under CI=true, where a missing
// privilege must fail the run rather than hide the kernel tests.
func privileged(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
}

func newWatcher(t testing.TB, queue int) *Watcher {
	t.Helper()
	w, err := New(queue)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// run runs a child to completion and returns its pid.
func run(t testing.TB, name string, args ...string) uint32 {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + cmd.Dir}
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return uint32(cmd.Process.Pid)
}

// sentinelTag names the file that flushes the queue: fanotify queues a
// group's events in order, so once a child's open of the sentinel arrives,
// every open before it has arrived too, and "no event" can be asserted
// without sleeping.
const sentinelTag = "sentinel"

func sentinel(t testing.TB) Mark {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sentinel")
	if err := os.WriteFile(p, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Mark{Path: p, Tag: sentinelTag}
}

// flush opens the sentinel from a child and returns the events that came
// before its event.
func flush(t testing.TB, w *Watcher, s Mark) []Event {
	t.Helper()
	pid := run(t, "/bin/cat", s.Path)
	var got []Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if ev.Tag == sentinelTag && ev.PID == pid {
				return got
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("no event for the sentinel opened by pid %d; before it %+v; stats %+v", pid, got, w.Stats())
		}
	}
}

func devIno(t testing.TB, path string) (uint64, uint64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), st.Ino
}

func TestWatcher(t *testing.T) {
	privileged(t)
	dir := t.TempDir()
	tool := filepath.Join(dir, "tool.py")
	other := filepath.Join(dir, "other.py")
	for _, p := range []string{tool, other} {
		if err := os.WriteFile(p, []byte("x = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := sentinel(t)
	w := newWatcher(t, 64)
	if n, err := w.Set([]Mark{{Path: tool, Tag: "tool"}, s}); n != 2 || err != nil {
		t.Fatalf("Set = %d, %v", n, err)
	}

	t.Run("child open reported, sibling not", func(t *testing.T) {
		// WHEN a child opens the unmarked sibling, then the marked file
		run(t, "/bin/cat", other)
		pid := run(t, "/bin/cat", tool)

		// THEN exactly one event arrives: the marked file, by that child
		got := flush(t, w, s)
		dev, ino := devIno(t, tool)
		want := []Event{{PID: pid, Path: tool, Tag: "tool", Dev: dev, Ino: ino}}
		if !slices.Equal(got, want) {
			t.Errorf("events %+v, want %+v", got, want)
		}
	})

	t.Run("own opens ignored", func(t *testing.T) {
		before := w.Stats().Self
		f, err := os.Open(tool)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got := flush(t, w, s); len(got) != 0 {
			t.Errorf("events %+v for the collector's own open", got)
		}
		if st := w.Stats(); st.Self <= before {
			t.Errorf("own open was not seen at all: %+v", st)
		}
	})

	t.Run("smaller set removes the mark", func(t *testing.T) {
		if n, err := w.Set([]Mark{s}); n != 1 || err != nil {
			t.Fatalf("Set = %d, %v", n, err)
		}
		run(t, "/bin/cat", tool)
		if got := flush(t, w, s); len(got) != 0 {
			t.Errorf("events %+v after the mark was removed", got)
		}
	})

	t.Run("bad paths reported, others marked", func(t *testing.T) {
		before := w.Stats().MarkErrors
		n, err := w.Set([]Mark{{Path: filepath.Join(dir, "absent.py"), Tag: "x"}, {Path: dir, Tag: "dir"}, {Path: tool, Tag: "tool"}, s})
		if n != 2 || err == nil || !strings.Contains(err.Error(), "absent.py") || !strings.Contains(err.Error(), "want a regular file") {
			t.Fatalf("Set = %d, %v", n, err)
		}
		if got := w.Stats().MarkErrors - before; got != 2 {
			t.Errorf("MarkErrors grew by %d, want 2", got)
		}
		pid := run(t, "/bin/cat", tool)
		if got := flush(t, w, s); len(got) != 1 || got[0].PID != pid {
			t.Errorf("events %+v, want one by pid %d", got, pid)
		}
	})

	t.Run("replaced file moves the mark", func(t *testing.T) {
		// GIVEN the marked file replaced the way dpkg upgrades it (a new
		// file renamed over the old), with the old inode still reachable
		old := filepath.Join(dir, "old-inode.py")
		if err := os.Link(tool, old); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tool+".new", []byte("x = 2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tool+".new", tool); err != nil {
			t.Fatal(err)
		}
		// WHEN the same marks are set again
		if n, err := w.Set([]Mark{{Path: tool, Tag: "tool"}, s}); n != 2 || err != nil {
			t.Fatalf("Set = %d, %v", n, err)
		}
		// THEN the new file is watched and the old inode no longer
		run(t, "/bin/cat", old)
		pid := run(t, "/bin/cat", tool)
		got := flush(t, w, s)
		dev, ino := devIno(t, tool)
		if want := []Event{{PID: pid, Path: tool, Tag: "tool", Dev: dev, Ino: ino}}; !slices.Equal(got, want) {
			t.Errorf("events %+v, want %+v", got, want)
		}
	})

	t.Run("exec of a marked binary", func(t *testing.T) {
		// An execve opens the binary too (FAN_OPEN with FAN_OPEN_EXEC), so
		// exe: marks need no other event type.
		exe := filepath.Join(t.TempDir(), "true")
		b, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Set([]Mark{{Path: exe, Tag: "exe:true"}, s}); err != nil {
			t.Fatal(err)
		}
		pid := run(t, exe)
		// Only the child's event is required: an exec tracer running on
		// the host (this project's own, in another package's test) may
		// open an executed binary to hash it.
		got := flush(t, w, s)
		if !slices.ContainsFunc(got, func(ev Event) bool { return ev.PID == pid && ev.Tag == "exe:true" }) {
			t.Errorf("events %+v, want one exe:true by pid %d", got, pid)
		}
	})

	if st := w.Stats(); st.Overflows != 0 || st.Dropped != 0 || st.ReadErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTwoWatchers(t *testing.T) {
	privileged(t)
	s := sentinel(t)
	w1, w2 := newWatcher(t, 8), newWatcher(t, 8)
	for _, w := range []*Watcher{w1, w2} {
		if _, err := w.Set([]Mark{s}); err != nil {
			t.Fatal(err)
		}
	}
	// Both groups see one child's open; flush on w1 opens it once more.
	pid := run(t, "/bin/cat", s.Path)
	if got := flush(t, w1, s); len(got) != 1 || got[0].PID != pid {
		t.Errorf("first watcher: %+v, want the open by pid %d", got, pid)
	}
	select {
	case ev := <-w2.Events():
		if ev.PID != pid {
			t.Errorf("second watcher: %+v, want pid %d", ev, pid)
		}
	case <-time.After(10 * time.Second):
		t.Error("second watcher got nothing")
	}
}

func TestFullChannelDrops(t *testing.T) {
	privileged(t)
	s := sentinel(t)
	w := newWatcher(t, 1)
	if _, err := w.Set([]Mark{s}); err != nil {
		t.Fatal(err)
	}
	// Nobody receives: the first open fills the channel, the rest drop.
	for range 3 {
		run(t, "/bin/cat", s.Path)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Dropped < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := w.Stats(); st.Events != 1 || st.Dropped != 2 {
		t.Errorf("stats %+v, want 1 delivered and 2 dropped", st)
	}
}

func TestCloseIdle(t *testing.T) {
	privileged(t)
	w, err := New(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Set([]Mark{sentinel(t)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the reader park in the poller
	done := make(chan error)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked with the reader idle")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-w.Events(); ok {
		t.Error("Events still open after Close")
	}
	if _, err := w.Set(nil); err == nil {
		t.Error("Set after Close succeeded")
	}
}

// TestMitmproxy marks the real tool's entry module and imports it the way
// an attacker would hide it from argv.
func TestMitmproxy(t *testing.T) {
	privileged(t)
	const module = "mitmproxy.tools.main"
	files := Locate(module, PythonRoots())
	if _, err := os.Stat("/usr/bin/python3"); err != nil || len(files) == 0 {
		testenv.SkipOrFail(t, "mitmproxy is not installed for /usr/bin/python3 (found %v)", files)
	}
	var src, pyc bool
	for _, f := range files {
		src = src || strings.HasSuffix(f, "/mitmproxy/tools/main.py")
		pyc = pyc || (strings.Contains(f, "/mitmproxy/tools/__pycache__/main.cpython-") && strings.HasSuffix(f, ".pyc"))
	}
	if !src || !pyc {
		t.Fatalf("Locate(%s) = %v, want main.py and its cached bytecode", module, files)
	}

	s := sentinel(t)
	marks := []Mark{s}
	for _, f := range files {
		marks = append(marks, Mark{Path: f, Tag: module})
	}
	w := newWatcher(t, 64)
	if n, err := w.Set(marks); n != len(marks) || err != nil {
		t.Fatalf("Set = %d, %v", n, err)
	}

	// WHEN mitmproxy is used as a library, then its tool is imported under
	// a name assembled at run time
	lib := run(t, "/usr/bin/python3", "-c", "import mitmproxy.io")
	tool := run(t, "/usr/bin/python3", "-c", `import importlib; importlib.import_module("mitmproxy.tools."+"main")`)

	// THEN only the tool's import is reported, with that python's pid
	got := flush(t, w, s)
	var toolSeen bool
	for _, ev := range got {
		switch {
		case ev.PID == lib:
			t.Errorf("library use opened %s", ev.Path)
		case ev.PID == tool && ev.Tag == module:
			toolSeen = true
		}
	}
	if !toolSeen {
		t.Errorf("events %+v, want one by python pid %d", got, tool)
	}
}

// TestMeasureImportCost compares the wall and CPU time of a python that
// imports the tool, with and without the marks, in alternating runs.
// It runs only with MODWATCH_MEASURE_RUNS set (a few hundred).
func TestMeasureImportCost(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("MODWATCH_MEASURE_RUNS"))
	if runs <= 0 {
		t.Skip("set MODWATCH_MEASURE_RUNS to measure")
	}
	privileged(t)
	const module = "mitmproxy.tools.main"
	var marks []Mark
	for _, f := range Locate(module, PythonRoots()) {
		marks = append(marks, Mark{Path: f, Tag: module})
	}
	if len(marks) == 0 {
		t.Skip("mitmproxy is not installed")
	}
	w := newWatcher(t, 1024)
	go func() {
		for range w.Events() {
		}
	}()
	var wall, cpu [2][]float64 // [0] unmarked, [1] marked; milliseconds
	for i := range 2 * runs {
		m := i % 2
		if m == 1 {
			if _, err := w.Set(marks); err != nil {
				t.Fatal(err)
			}
		} else if _, err := w.Set(nil); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/usr/bin/python3", "-c", "import mitmproxy.tools.main")
		cmd.Dir = t.TempDir()
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		wall[m] = append(wall[m], float64(time.Since(start).Microseconds())/1000)
		ps := cmd.ProcessState
		cpu[m] = append(cpu[m], float64((ps.UserTime()+ps.SystemTime()).Microseconds())/1000)
	}
	stat := func(x []float64) (mean, sem, median float64) {
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		var ss float64
		for _, v := range x {
			ss += (v - mean) * (v - mean)
		}
		sem = math.Sqrt(ss/float64(len(x)-1)) / math.Sqrt(float64(len(x)))
		s := slices.Clone(x)
		slices.Sort(s)
		return mean, sem, s[len(s)/2]
	}
	for _, k := range []struct {
		name string
		v    [2][]float64
	}{{"wall", wall}, {"cpu", cpu}} {
		m0, e0, d0 := stat(k.v[0])
		m1, e1, d1 := stat(k.v[1])
		t.Logf("%s ms over %d runs each: unmarked mean %.3f±%.3f median %.3f; marked mean %.3f±%.3f median %.3f; difference of means %+.3f±%.3f",
			k.name, runs, m0, e0, d0, m1, e1, d1, m1-m0, math.Hypot(e0, e1))
	}
	t.Logf("stats %+v", w.Stats())
}

// BenchmarkOpen is the opener's cost of one open+close of a file with and
// without a mark (the kernel builds the event in the opener's context).
func BenchmarkOpen(b *testing.B) {
	privileged(b)
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, marked := range []bool{false, true} {
		b.Run(fmt.Sprintf("marked=%v", marked), func(b *testing.B) {
			w := newWatcher(b, 16)
			if marked {
				if _, err := w.Set([]Mark{{Path: p, Tag: "f"}}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				syscall.Close(fd)
			}
		})
	}
}
