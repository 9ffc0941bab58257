// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// fakeProbes is a kernel with every feature; a test takes one away.
func fakeProbes() probes {
	return probes{
		ringBuf:    func() error { return nil },
		kernelBTF:  func() error { return nil },
		rawTP:      func() error { return nil },
		bpfLoop:    func() error { return nil },
		kernelName: func() string { return "5.4.0-test" },
	}
}

func missing() error { return fmt.Errorf("probe: %w", ebpf.ErrNotSupported) }

func TestProbeKernelNamesWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(*probes)
		want string
	}{
		{"ring buffer", func(p *probes) { p.ringBuf = missing }, "kernel 5.4.0-test lacks the BPF ring buffer map (Linux >= 5.8 has it)"},
		{"btf", func(p *probes) { p.kernelBTF = func() error { return fmt.Errorf("no btf: %w", os.ErrNotExist) } }, "kernel 5.4.0-test lacks BTF at /sys/kernel/btf/vmlinux"},
		{"raw tracepoint", func(p *probes) { p.rawTP = missing }, "kernel 5.4.0-test lacks raw tracepoint programs (Linux >= 4.17 has them)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a kernel without the feature
			p := fakeProbes()
			tc.lose(&p)
			// WHEN the tracer probes it
			_, err := probeKernel(p)
			// THEN the error names the feature and the release that has it
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProbeKernelPicksTheEnvironmentScan(t *testing.T) {
	for _, tc := range []struct {
		name string
		loop func() error
		want string
	}{
		{"bpf_loop present", func() error { return nil }, envScanLoop},
		{"bpf_loop missing", missing, envScanBounded},
		// an inconclusive probe keeps the verifier's word for it
		{"probe inconclusive", func() error { return errors.New("probe failed") }, envScanLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakeProbes()
			p.bpfLoop = tc.loop
			got, err := probeKernel(p)
			if err != nil || got != tc.want {
				t.Fatalf("probeKernel = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// This kernel (>= 5.17 where the tests run) has every feature.
func TestProbeKernelHere(t *testing.T) {
	testenv.RequireRoot(t)
	scan, err := probeKernel(kernelProbes)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s: environment scan %s", kernelRelease(), scan)
	if err := kernelProbes.bpfLoop(); err == nil && scan != envScanLoop {
		t.Errorf("bpf_loop is available, yet the %s scan was chosen", scan)
	}
}

// bpfFDs counts this process's open BPF objects (maps, programs, links).
func bpfFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(target, "anon_inode:bpf") {
			n++
		}
	}
	return n
}

// A New that fails after attaching must leave no program, link or map
// behind: the programs would go on running on every exec.
func TestNewReleasesOnError(t *testing.T) {
	testenv.RequireRoot(t)
	before := bpfFDs(t)
	// GIVEN a config map that is closed before the tracer writes it
	beforeConfig = func(tr *Tracer) { tr.maps.ConfigMap.Close() }
	defer func() { beforeConfig = nil }()
	// WHEN New runs
	tr, err := New(Options{})
	// THEN it fails naming the write and keeps nothing open
	if err == nil {
		tr.Close()
		t.Fatal("New succeeded with a closed config map")
	}
	if !strings.Contains(err.Error(), "write tracer config") {
		t.Errorf("error %q does not name the config write", err)
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("%d BPF objects open before New, %d after its failure", before, after)
	}
}

func TestCloseReleasesEverything(t *testing.T) {
	testenv.RequireRoot(t)
	before := bpfFDs(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("%d BPF objects open before New, %d after Close", before, after)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// loaderOf reads the dynamic loader a program names (PT_INTERP).
func loaderOf(t *testing.T, prog string) string {
	t.Helper()
	f, err := elf.Open(prog)
	if err != nil {
		t.Skipf("%s: %v", prog, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	t.Skipf("%s has no loader", prog)
	return ""
}

// Both scans of the loader's environment decide alike: ldd's listing
// (LD_TRACE_LOADED_OBJECTS set, after many other entries) stays in the
// kernel; a loader run with the variable off goes up.
func TestLoaderScans(t *testing.T) {
	testenv.RequireRoot(t)
	ldso := loaderOf(t, "/bin/true")
	for _, scan := range []string{envScanLoop, envScanBounded} {
		t.Run(scan, func(t *testing.T) {
			saved := kernelProbes.bpfLoop
			if scan == envScanBounded {
				kernelProbes.bpfLoop = missing
			}
			defer func() { kernelProbes.bpfLoop = saved }()
			tr, err := New(Options{PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if tr.envScan != scan {
				t.Fatalf("loaded the %s scan, want %s", tr.envScan, scan)
			}
			env := []string{}
			for i := 0; i < 40; i++ {
				env = append(env, fmt.Sprintf("FILLER_%02d=%s", i, strings.Repeat("x", i)))
			}
			run := func(ldso, value string) int {
				cmd := exec.Command(ldso, "/bin/true")
				cmd.Env = append(append([]string{}, env...), "LD_TRACE_LOADED_OBJECTS="+value, "LAST=1")
				cmd.Stdout, cmd.Stderr = nil, nil
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s LD_TRACE_LOADED_OBJECTS=%s: %v", ldso, value, err)
				}
				return cmd.Process.Pid
			}
			// GIVEN the loader's identity judged a loader
			id, err := fileid.Path(ldso)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.PutVerdict(id, event.Verdict{Kind: event.VerdictLoader}); err != nil {
				t.Fatal(err)
			}
			// WHEN ldd's listing runs, then a loader run with the variable off
			listing, running := run(ldso, "1"), run(ldso, "0")
			// THEN only the second goes up
			seen := map[int]bool{}
			deadline := time.After(2 * time.Second)
			for !seen[running] {
				select {
				case b := <-tr.Records():
					e, err := event.Decode(b)
					if err != nil {
						t.Fatal(err)
					}
					if pid := int(e.PID); pid == listing || pid == running {
						seen[pid] = true
						if int(e.PID) == running && e.Reasons&event.ReasonInterpreter == 0 {
							t.Errorf("the loader's record has reasons %#x, want interpreter", e.Reasons)
						}
					}
				case <-deadline:
					t.Fatalf("no record of the loader running /bin/true (pid %d)", running)
				}
			}
			if seen[listing] {
				t.Errorf("the listing loader exec (pid %d) went up", listing)
			}

			// GIVEN a copy of the loader the kernel has never seen (no verdict)
			unseen := copyExecutable(t, ldso, t.TempDir())
			// WHEN ldd's listing runs it, then a run with the variable off
			listing, running = run(unseen, "1"), run(unseen, "0")
			// THEN both go up as first sights, and only the listing says so
			if e := recordOf(t, tr, listing); e.Flags&event.FlagLoaderLists == 0 || e.Reasons&event.ReasonUnknown == 0 {
				t.Errorf("first-sight listing: flags %#x reasons %#x, want FlagLoaderLists on a first sight", e.Flags, e.Reasons)
			}
			if e := recordOf(t, tr, running); e.Flags&event.FlagLoaderLists != 0 {
				t.Errorf("first-sight run: flags %#x, want no FlagLoaderLists", e.Flags)
			}
		})
	}
}

// copyExecutable copies path into dir: a new file identity with the same
// bytes.
func copyExecutable(t *testing.T, path, dir string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// recordOf waits for the record of pid's exec.
func recordOf(t *testing.T, tr *Tracer, pid int) event.Exec {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case b := <-tr.Records():
			e, err := event.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if int(e.PID) == pid {
				return e
			}
		case <-deadline:
			t.Fatalf("no record of pid %d", pid)
		}
	}
}

// The kernel's identity of a file equals stat's, also after the file was
// stat'ed: user space keys verdicts on stat (the inventory) as well as on
// records.
func TestIdentityMatchesStat(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := New(Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, fs := range []string{"plain", "overlay"} {
		t.Run(fs, func(t *testing.T) {
			// GIVEN a fresh executable (a copy of true: a script would load
			// its interpreter) that has been stat'ed; on overlayfs with its
			// upper layer on another file system (a tmpfs over the disk),
			// whose stat(2) reports a device per layer
			var bin string
			if fs == "overlay" {
				bin = filepath.Join(overlayDir(t, "/bin/true"), "true") // in the lower layer
			} else {
				bin = copyExecutable(t, "/bin/true", t.TempDir())
			}
			want, err := fileid.Path(bin)
			if err != nil {
				t.Fatal(err)
			}
			// WHEN it is exec'd (first sight: its record goes up)
			cmd := exec.Command(bin)
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			// THEN the record's identity is the one the collector computes
			e := recordOf(t, tr, cmd.Process.Pid)
			if e.File != want {
				t.Errorf("kernel identity %+v, the collector's %+v", e.File, want)
			}
		})
	}
}

// overlayDir mounts an overlay whose lower layer is a directory of the
// test's (holding copies of executables) and whose upper layer is on a
// tmpfs of its own, and returns the merged directory.
func overlayDir(t *testing.T, executables ...string) string {
	t.Helper()
	base := t.TempDir()
	lower, upperFS, merged := filepath.Join(base, "lower"), filepath.Join(base, "upperfs"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upperFS, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range executables {
		copyExecutable(t, e, lower)
	}
	if err := unix.Mount("tmpfs", upperFS, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(upperFS, unix.MNT_DETACH) })
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(upperFS, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + filepath.Join(upperFS, "upper") + ",workdir=" + filepath.Join(upperFS, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}
