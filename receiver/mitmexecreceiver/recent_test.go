// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/mitmexec/mitmexec/internal/allowlist"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
)

// writeProcEntry writes procRoot/PID/{stat,cmdline,status} for a process that
// started at start clock ticks.
func writeProcEntry(t *testing.T, root string, pid, ppid, start int, cmdline string, uid int) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"stat":    fmt.Sprintf("%d (python3) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, ppid, start),
		"cmdline": cmdline,
		"status":  fmt.Sprintf("Name:\tpython3\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid, uid, uid, uid, uid),
		"cgroup":  "0::/user.slice/app.scope\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExecOfChecksTheStartTime(t *testing.T) {
	root := t.TempDir()
	r := &mitmexecReceiver{procRoot: root, recent: newRecentExecs(8), bootClock: func() time.Duration { return time.Hour }}
	// GIVEN the kernel's record of pid 100, which started at tick 500
	r.recent.put(&event.Exec{PID: 100, StartBootTimeNs: 500 * 1e7, Args: []string{"python3", "kernel-record"}, EUID: 1000})

	// WHEN pid 100 is still that process
	writeProcEntry(t, root, 100, 1, 500, "python3\x00now\x00", 1000)
	// THEN the kernel's record describes it
	if e := r.execOf(100); len(e.Args) < 2 || e.Args[1] != "kernel-record" {
		t.Errorf("same process: args %v, want the kernel's record", e.Args)
	}

	// WHEN pid 100 is another process now (it started at tick 900)
	writeProcEntry(t, root, 100, 50, 900, "python3\x00reused\x00", 2000)
	writeProcEntry(t, root, 50, 1, 100, "sh\x00", 0)
	e := r.execOf(100)
	// THEN the stale record is not used: /proc describes the new process,
	// its credentials from status, its cgroup and its parent chain
	if len(e.Args) < 2 || e.Args[1] != "reused" || e.EUID != 2000 || e.UID != 2000 || e.StartBootTimeNs != 900*1e7 {
		t.Errorf("reused pid: %+v, want the new process from /proc", e)
	}
	if e.Cgroup != "/user.slice/app.scope" || len(e.Ancestors) != 1 || e.Ancestors[0].PID != 50 {
		t.Errorf("reused pid: cgroup %q ancestors %+v, want its cgroup and parent chain", e.Cgroup, e.Ancestors)
	}

	// WHEN the process is gone
	if err := os.RemoveAll(filepath.Join(root, "100")); err != nil {
		t.Fatal(err)
	}
	// THEN the kernel's record is what is left of the opener
	if e := r.execOf(100); len(e.Args) < 2 || e.Args[1] != "kernel-record" {
		t.Errorf("gone process: args %v, want the kernel's record", e.Args)
	}
}

// TestTruncatedPathsAllowNothing: a cgroup or executable path the kernel cut
// at its depth bound shows only its innermost components, which would read
// as another place: it never satisfies an allow entry, and the record says
// it was cut.
func TestTruncatedPathsAllowNothing(t *testing.T) {
	r := newFakeReceiver(t, new(consumertest.LogsSink), newFakeSource())
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	r.allow = allowlist.New([]allowlist.Entry{{CgroupPrefix: "/system.slice/qa-proxy.service"}, {CgroupPrefix: "/"}})
	e := event.Exec{PID: 7, Cgroup: "/system.slice/qa-proxy.service/a/b/c/d/e/f", ExePath: "/usr/bin/x", Flags: event.FlagCgroupTruncated | event.FlagExePathTruncated | event.FlagCwdTruncated}
	rec := detectionRecord{Exec: e, Detection: detect.Detection{Tool: &detect.Tool{Name: "ettercap"}}}
	s := r.allowSubject(&rec)
	if s.Cgroup != "" || s.ContainerID != "" || len(s.ExecutablePaths) != 0 {
		t.Errorf("subject of truncated paths: %+v, want no cgroup, container or path", s)
	}
	if i := r.allow.Match(s); i >= 0 {
		t.Errorf("allow entry %d matched a cut cgroup", i)
	}
	// the whole path still matches
	rec.Exec.Flags = 0
	if r.allow.Match(r.allowSubject(&rec)) < 0 {
		t.Errorf("the whole cgroup path matched no entry")
	}
	a := pcommon.NewMap()
	putTruncatedPaths(a, &e)
	if v, ok := a.Get("mitmexec.paths_truncated"); !ok || v.Slice().Len() != 3 {
		t.Errorf("mitmexec.paths_truncated = %v, want executable, working_directory, cgroup", a.AsRaw())
	}
}

// slowReaderAt takes its time over every read of an ELF file's bytes.
type slowReaderAt struct {
	b []byte
	d time.Duration
}

func (s slowReaderAt) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(s.d)
	return bytes.NewReader(s.b).ReadAt(p, off)
}

func TestStructureReadIsBoundedInTime(t *testing.T) {
	// GIVEN an executable whose every read takes 300 ms
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	// WHEN its structure is read
	_, err = hostFiles{}.structure(slowReaderAt{b, 300 * time.Millisecond}, int64(len(b)))
	// THEN the read ends at the time bound, with an error that says so
	if !errors.Is(err, errStructureTime) {
		t.Fatalf("reading a crawling file: %v, want the time bound's error", err)
	}
	if d := time.Since(begin); d > maxStructureTime+time.Second {
		t.Errorf("structure read took %v, bound %v", d, maxStructureTime)
	}
}
