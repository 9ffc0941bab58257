// SPDX-License-Identifier: Apache-2.0

//go:build linux

package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http/httptest"
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
	"github.com/mitmexec/mitmexec/test/harness"
)

const leastPrivilegeFile = "kubernetes/helm-values-least-privilege.yaml"

// capBits are the capability numbers of linux/capability.h the variant may
// name.
var capBits = map[string]uint{
	"KILL": 5, "DAC_READ_SEARCH": 2, "SYS_PTRACE": 19, "SYS_RESOURCE": 24,
	"SYS_ADMIN": 21, "PERFMON": 38, "BPF": 39,
}

// leastPrivilegeCaps reads the capability set of the least-privilege
// variant and checks the rest of its security context.
func leastPrivilegeCaps(t *testing.T) []string {
	t.Helper()
	v := readYAML(t, leastPrivilegeFile)
	sc := v["securityContext"]
	if dig(sc, "privileged") != false {
		t.Errorf("%s: privileged is %v, want false", leastPrivilegeFile, dig(sc, "privileged"))
	}
	if drop := list(dig(sc, "capabilities", "drop")); !slices.Contains(drop, any("ALL")) {
		t.Errorf("%s: capabilities.drop %v lacks ALL", leastPrivilegeFile, drop)
	}
	for _, k := range []string{"seccompProfile", "appArmorProfile"} {
		if dig(sc, k, "type") == nil {
			t.Errorf("%s: no %s: the runtime's default refuses bpf() or ptrace reads", leastPrivilegeFile, k)
		}
	}
	var caps []string
	for _, c := range list(dig(sc, "capabilities", "add")) {
		caps = append(caps, strings.TrimPrefix(str(c), "CAP_"))
	}
	return caps
}

// ownBoundingSet is this process's capability bounding set.
func ownBoundingSet(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return 0
}

func TestLeastPrivilegeValues(t *testing.T) {
	caps := leastPrivilegeCaps(t)
	want := []string{"BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "DAC_READ_SEARCH", "KILL"}
	if !slices.Equal(slices.Sorted(slices.Values(caps)), slices.Sorted(slices.Values(want))) {
		t.Errorf("%s adds %v, want exactly %v", leastPrivilegeFile, caps, want)
	}
	checkPrivileges(t, leastPrivilegeFile, readYAML(t, leastPrivilegeFile)["securityContext"])
}

// TestLeastPrivilegeRun runs the collector as nobody with exactly the
// variant's capabilities (ambient, so they survive the exec) and shows that
// it detects a tool and kills, in block mode, a process of another user.
func TestLeastPrivilegeRun(t *testing.T) {
	testenv.RequireRoot(t)
	bin := collector(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testenv.SkipOrFail(t, "setpriv (util-linux) not installed: %v", err)
	}
	caps := leastPrivilegeCaps(t)
	bounding := ownBoundingSet(t)
	var mask uint64
	var capList, ran []string
	for _, c := range caps {
		bit, ok := capBits[c]
		if !ok {
			t.Fatalf("capability %s: unknown to this test", c)
		}
		if bounding&(1<<bit) == 0 {
			// A sandboxed test runner may lack one itself. SYS_RESOURCE
			// only raises RLIMIT_MEMLOCK, which kernels since 5.11 no
			// longer charge BPF maps to: the run without it is the same.
			if c == "SYS_RESOURCE" {
				t.Logf("this test runs without CAP_SYS_RESOURCE: it is not in the test process's bounding set (unused on kernels since 5.11)")
				continue
			}
			testenv.SkipOrFail(t, "capability %s is not in the test process's bounding set", c)
		}
		mask |= 1 << bit
		capList = append(capList, "+"+strings.ToLower(c))
		ran = append(ran, c)
	}
	caps = ran
	capArg := "-all," + strings.Join(capList, ",")

	// The tools: copies of sleep, in a directory every user can search
	// (t.TempDir's parents are root's alone).
	dir, err := os.MkdirTemp("", "mitmexec-leastpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	watched, blocked := filepath.Join(dir, "lpwatch-tool"), filepath.Join(dir, "lpblock-tool")
	for _, p := range []string{watched, blocked} {
		if err := os.WriteFile(p, body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A renamed copy known only by its hash: the kernel cannot name it, so
	// user space judges it and kills it late, with a pidfd signal to a
	// process of another user, which is what CAP_KILL is for.
	late := filepath.Join(dir, "innocent-name")
	lateBody := append(slices.Clone(body), []byte("mitmexec least privilege")...)
	if err := os.WriteFile(late, lateBody, 0o755); err != nil {
		t.Fatal(err)
	}
	lateSum := sha256.Sum256(lateBody)

	snk := harness.NewSink()
	srv := httptest.NewServer(snk)
	defer srv.Close()
	cfg := fmt.Sprintf(`receivers:
  mitmexec:
    tools:
      - {name: lp-watch, technique: T1557, executables: [lpwatch-tool], action: alert}
      - {name: lp-block, technique: T1557, executables: [lpblock-tool], action: kill}
      - {name: lp-late, technique: T1557, sha256: [%s], action: kill}
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    encoding: proto
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, hex.EncodeToString(lateSum[:]), srv.URL)
	confDir := t.TempDir()
	confPath, err := harness.WriteConfig(confDir, cfg)
	if err != nil {
		t.Fatal(err)
	}

	// nobody, no groups, the variant's capabilities and no others: the
	// bounding set too, so nothing can be regained.
	p, err := harness.StartProcess(harness.ProcessSpec{
		Name: "collector (least privilege)", Bin: setpriv, Dir: confDir, LogPath: filepath.Join(confDir, "collector.log"),
		Args: []string{
			"--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=" + capArg, "--ambient-caps=" + capArg, "--bounding-set=" + capArg,
			"--", bin, "--config", confPath,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	if err := p.WaitForLog(harness.ReadyLine, 60*time.Second); err != nil {
		t.Fatalf("the collector did not start with %v: %v", caps, err)
	}

	// It runs as nobody with exactly those capabilities.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if uids := strings.Fields(fields["Uid"]); len(uids) == 0 || uids[1] != "65534" {
		t.Errorf("collector runs as uid %v, want 65534", uids)
	}
	if eff, _ := strconv.ParseUint(fields["CapEff"], 16, 64); eff != mask {
		t.Errorf("collector's effective capabilities %#x, want %#x (%v)", eff, mask, caps)
	}
	// fanotify needs CAP_SYS_ADMIN: the module-load watch is off, and said.
	if !slices.Contains(caps, "SYS_ADMIN") && !p.LogContains("module loads are not watched") {
		t.Errorf("no log that module loads are not watched without CAP_SYS_ADMIN:\n%s", p.LogTail())
	}

	// Another user's processes: uid 4242.
	other := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}

	// A detection.
	w := exec.Command(watched, "0.3")
	w.SysProcAttr, w.Stdout, w.Stderr = other, io.Discard, io.Discard
	if err := w.Run(); err != nil {
		t.Fatalf("%s: %v", watched, err)
	}
	// Block-mode kills: each tool would sleep a minute.
	for _, tool := range []string{blocked, late} {
		b := exec.Command(tool, "60")
		b.SysProcAttr, b.Stdout, b.Stderr = other, io.Discard, io.Discard
		start := time.Now()
		if err := b.Start(); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		done := make(chan error, 1)
		go func() { done <- b.Wait() }()
		select {
		case err := <-done:
			ws, _ := b.ProcessState.Sys().(syscall.WaitStatus)
			if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("%s ended with %v, want SIGKILL", tool, err)
			}
			t.Logf("%s killed after %v", filepath.Base(tool), time.Since(start))
		case <-time.After(20 * time.Second):
			_ = b.Process.Kill()
			<-done
			t.Fatalf("%s of uid 4242 still ran after 20s:\n%s", tool, p.LogTail())
		}
	}

	// lp-block may be killed by the kernel (it knows the name) or late;
	// lp-late only from user space.
	want := map[string][]string{"lp-watch": {"alerted"}, "lp-block": {"killed", "killed_late"}, "lp-late": {"killed_late"}}
	got := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		recs, errs := snk.Records()
		if len(errs) > 0 {
			t.Fatalf("sink refused requests: %v", errs)
		}
		for _, r := range recs {
			tool, _ := r.Record.Attributes().Get("mitmexec.tool.name")
			action, _ := r.Record.Attributes().Get("mitmexec.action")
			if _, ok := want[tool.AsString()]; ok {
				got[tool.AsString()] = action.AsString()
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("actions: %v", got)
	for tool, actions := range want {
		if !slices.Contains(actions, got[tool]) {
			t.Errorf("tool %s: action %q, want one of %v\n%s", tool, got[tool], actions, p.LogTail())
		}
	}
}
