// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// patchedCopy copies an ELF file and changes one byte of its header's
// padding (e_ident[9], which the kernel and the loader never read): the
// copy runs as the original, but neither its hash nor the fingerprint of
// its first 256 bytes is the original's any more.
func patchedCopy(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 16 || string(b[:4]) != "\x7fELF" {
		t.Fatalf("%s is no ELF file", src)
	}
	b[9] ^= 0x5a
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// noSectionHeadersCopy is patchedCopy that also drops the section header
// table (e_shoff, e_shnum, e_shstrndx zeroed, as sstrip leaves a file):
// the program still runs, but has no section to hash.
func noSectionHeadersCopy(t *testing.T, src, dst string) {
	t.Helper()
	patchedCopy(t, src, dst)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if b[4] != 2 || b[5] != 1 {
		t.Fatalf("%s is not a little-endian ELF64 file", src)
	}
	clear(b[0x28:0x30])
	clear(b[0x3c:0x40])
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPrivilegedIdentityBeforeName: what a file is decides, not what it is
// called. A copy of a tool named like a shell or perl is the tool (every
// time: it is never cached as a shell); a copy of the host's python or
// loader with a header byte changed is still python or the loader; the
// loader's program is judged as if exec'd, as python when it is python.
func TestPrivilegedIdentityBeforeName(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	arpspoof, ettercap, mitmdump := lookPath(t, "arpspoof"), lookPath(t, "ettercap"), lookPath(t, "mitmdump")
	python := realPath(t, "/usr/bin/python3")
	loader := realPath(t, "/lib64/ld-linux-x86-64.so.2")
	for _, d := range []string{"a", "b", "c", "d"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, arpspoof, filepath.Join(dir, "a", "sh"))
	copyFile(t, ettercap, filepath.Join(dir, "a", "perl"))
	patchedCopy(t, arpspoof, filepath.Join(dir, "b", "bash"))
	noSectionHeadersCopy(t, arpspoof, filepath.Join(dir, "b", "dash"))
	noSectionHeadersCopy(t, ettercap, filepath.Join(dir, "b", "netmon"))
	patchedCopy(t, python, filepath.Join(dir, "c", "sh"))
	patchedCopy(t, python, filepath.Join(dir, "c", "svc-helper"))
	patchedCopy(t, loader, filepath.Join(dir, "d", "svc-loader"))
	patchedCopy(t, loader, filepath.Join(dir, "d", "ld-linux-x86-64.so.2"))
	runpy := `import runpy,sys; sys.argv=["mitmdump","--version"]; runpy.run_path("` + mitmdump + `", run_name="__main__")`

	scenarios := []scenario{
		{name: "arpspoof named sh", tool: "arpspoof", argv: []string{filepath.Join(dir, "a", "sh"), "-h"}},
		{name: "arpspoof named sh again", tool: "arpspoof", argv: []string{filepath.Join(dir, "a", "sh"), "-h"}},
		{name: "arpspoof named sh -c", tool: "arpspoof", argv: []string{filepath.Join(dir, "a", "sh"), "-c", "true"}},
		{name: "ettercap named perl", tool: "ettercap", argv: []string{filepath.Join(dir, "a", "perl"), "--version"}},
		{name: "patched arpspoof named bash", tool: "arpspoof", match: "elf_structure", argv: []string{filepath.Join(dir, "b", "bash"), "-h"}},
		{name: "patched arpspoof without section headers named dash", tool: "arpspoof", match: "elf_structure", argv: []string{filepath.Join(dir, "b", "dash"), "-h"}},
		{name: "patched ettercap without section headers", tool: "ettercap", match: "elf_structure", argv: []string{filepath.Join(dir, "b", "netmon"), "--version"}},
		{name: "patched python named sh", tool: "mitmdump", match: "interpreter_args", argv: []string{filepath.Join(dir, "c", "sh"), "-c", runpy}},
		{name: "patched python", tool: "mitmdump", match: "script", argv: []string{filepath.Join(dir, "c", "svc-helper"), mitmdump, "--version"}},
		{name: "patched loader", tool: "ettercap", argv: []string{filepath.Join(dir, "d", "svc-loader"), ettercap, "--version"}},
		{name: "patched loader named like the loader", tool: "ettercap", argv: []string{filepath.Join(dir, "d", "ld-linux-x86-64.so.2"), ettercap, "--version"}},
		{name: "loader runs python", tool: "mitmdump", match: "script", argv: []string{loader, python, mitmdump, "--version"}},
		{name: "loader runs patched python -c", tool: "mitmdump", match: "interpreter_args", argv: []string{loader, "--argv0", "python3", filepath.Join(dir, "c", "svc-helper"), "-c", runpy}},
		{name: "loader option with an empty value", tool: "ettercap", argv: []string{loader, "--inhibit-rpath", "", ettercap, "--version"}},
		{name: "loader options", tool: "ettercap", argv: []string{loader, "--inhibit-cache", "--glibc-hwcaps-mask", "x86-64-v2", "--audit", "", "--preload", "", ettercap, "--version"}},
		// the patched python is still python: what it runs is judged, and
		// a plain run of it is silent
		{name: "patched python plain", argv: []string{filepath.Join(dir, "c", "sh"), "-c", "print(1)"}},
		{name: "loader runs python plain", argv: []string{loader, python, "-c", "print(1)"}},
	}
	runScenarios(t, l, scenarios)
}

// TestPrivilegedLoaderPythonModuleLoad: python run by the dynamic loader
// imports a tool's entry module under a name no argv shows; the module
// load is reported, with the loader's exec record, not dropped because the
// exec was the loader's.
func TestPrivilegedLoaderPythonModuleLoad(t *testing.T) {
	l := startLive(t, nil)
	if l.rcv.modules == nil {
		t.Fatal("module watch did not start")
	}
	python := realPath(t, "/usr/bin/python3")
	loader := realPath(t, "/lib64/ld-linux-x86-64.so.2")
	marker := newMarker("loader_python_module")
	code := `import sys; m = "mitm" + "proxy.tools." + "main"; __import__(m)`
	out, err := exec.Command(loader, python, "-c", code, marker).CombinedOutput()
	if err != nil {
		t.Fatalf("python by the loader: %v\n%s", err, out)
	}
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	if got[0].attrs["mitmexec.match"] != "module_load" || got[0].attrs["mitmexec.tool.name"] != "mitmproxy" {
		t.Errorf("record: match %v tool %v, want module_load of mitmproxy (the first tool of mitmproxy.tools.main)", got[0].attrs["mitmexec.match"], got[0].attrs["mitmexec.tool.name"])
	}
}

// TestPrivilegedKillToolNamedShell: under action kill a copy of a tool
// named sh is killed, with a record, at its first run and at the next.
func TestPrivilegedKillToolNamedShell(t *testing.T) {
	l := startLive(t, func(c *Config) { c.Action = "kill" })
	lsmErr := l.rcv.source.Deny()
	dir := t.TempDir()
	arpspoof := lookPath(t, "arpspoof")
	sh := filepath.Join(dir, "sh")
	copyFile(t, arpspoof, sh)
	var markers []string
	for i := range 2 {
		m := newMarker(fmt.Sprintf("kill_sh_%d", i))
		// through a link named by the marker: a refused exec's record has
		// the path, not the argv
		link := filepath.Join(dir, m)
		if err := os.Symlink(sh, link); err != nil {
			t.Fatal(err)
		}
		out, killed := runKilled(t, link, "-h", m)
		if strings.Contains(out, "Usage") {
			t.Errorf("run %d: arpspoof named sh printed its usage: %q", i, out)
		}
		_ = killed // refused by the LSM or killed by the exec hook: either way it printed nothing
		markers = append(markers, m)
		l.waitFor(t, []string{m})
	}
	for i, m := range markers {
		got := l.withMarker(m)
		if len(got) != 1 {
			t.Errorf("run %d: %d records, want 1", i, len(got))
			continue
		}
		a := got[0].attrs["mitmexec.action"]
		if a != "killed" && a != "denied" && a != "killed_late" {
			t.Errorf("run %d: mitmexec.action %v, want killed or denied (BPF LSM: %v)", i, a, lsmErr)
		}
		if got[0].attrs["mitmexec.tool.name"] != "arpspoof" {
			t.Errorf("run %d: tool %v, want arpspoof", i, got[0].attrs["mitmexec.tool.name"])
		}
	}
}

// TestPrivilegedUnreadFirstSightRetried: a tool copy the collector could
// not read at its first sight (it ran under a path only its own mount
// namespace had, and was gone before the judge read it) is not cached
// benign: the next exec of the same file, from a path the collector can
// read, is reported.
func TestPrivilegedUnreadFirstSightRetried(t *testing.T) {
	l := startLive(t, nil)
	arpspoof := lookPath(t, "arpspoof")
	base := t.TempDir()
	real, hidden := filepath.Join(base, "real"), filepath.Join(base, "hidden")
	for _, d := range []string{real, hidden} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The race is the collector's read against the process's death and its
	// namespace's: a read that wins sees the tool, and the test tries again
	// with a new copy until a first sight went unread.
	for attempt := 0; attempt < 20; attempt++ {
		name := fmt.Sprintf("netcheck%d", attempt)
		patchedCopy(t, arpspoof, filepath.Join(real, name))
		before := l.rcv.rule.Unread()
		// the bind mount exists in the child's namespace only, and a 1 MB
		// address space ends the program in its loader at once
		script := fmt.Sprintf("mount --bind %s %s && ulimit -v 1000 && exec %s -h", real, hidden, filepath.Join(hidden, name))
		_ = exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).Run()
		deadline := time.Now().Add(3 * time.Second)
		for l.rcv.rule.Unread() == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if l.rcv.rule.Unread() == before {
			continue // read while it lived: judged a tool, nothing to show
		}
		marker := newMarker("unread_retried")
		_ = exec.Command(filepath.Join(real, name), "-h", marker).Run()
		l.waitFor(t, []string{marker})
		got := l.withMarker(marker)
		if len(got) != 1 || got[0].attrs["mitmexec.tool.name"] != "arpspoof" {
			t.Fatalf("second exec of a first sight that went unread: %d records, want 1 of arpspoof", len(got))
		}
		t.Logf("attempt %d: unread first sight, then reported at the next exec", attempt)
		return
	}
	t.Fatal("no first sight went unread in 20 attempts")
}

// TestPrivilegedRedactCodeLiteral: mitmdump started from python -c with a
// credential in its argument list is reported without the credential.
func TestPrivilegedRedactCodeLiteral(t *testing.T) {
	l := startLive(t, nil)
	marker := newMarker("code_literal_secret")
	code := `from mitmproxy.tools.main import mitmdump; mitmdump(["--set", "upstream_auth=alice:S3cretPw", "--version"])`
	if out, err := exec.Command("/usr/bin/python3", "-c", code, marker).CombinedOutput(); err != nil {
		t.Logf("python3 -c: %v\n%s", err, out)
	}
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	line, _ := got[0].attrs["process.command_line"].(string)
	if strings.Contains(line, "S3cretPw") || !strings.Contains(line, "upstream_auth=REDACTED") {
		t.Errorf("process.command_line %q: want the credential redacted", line)
	}
	if args := fmt.Sprint(got[0].attrs["process.command_args"]); strings.Contains(args, "S3cretPw") {
		t.Errorf("process.command_args %s carries the credential", args)
	}
}

// TestPrivilegedForkedPythonChild: a python child that forked without
// exec'ing, made itself not dumpable (its /proc entries then belong to
// root) and imports a tool's entry module is reported with its own
// credentials, its cgroup and its ancestry, all from /proc checked against
// its start time.
func TestPrivilegedForkedPythonChild(t *testing.T) {
	l := startLive(t, nil)
	marker := newMarker("forked_child")
	code := `import os, ctypes, time
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    m = "mitm" + "proxy.tools." + "main"
    __import__(m)
    time.sleep(1)
    os._exit(0)
os.waitpid(pid, 0)
`
	cmd := exec.Command("/usr/bin/python3", "-c", code, marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1 (the child's module load)", len(got))
	}
	a := got[0].attrs
	if a["process.pid"] == int64(cmd.Process.Pid) || a["process.parent_pid"] != int64(cmd.Process.Pid) {
		t.Errorf("pid %v parent %v, want the child of %d", a["process.pid"], a["process.parent_pid"], cmd.Process.Pid)
	}
	if a["process.user.id"] != int64(65534) || a["process.real_user.id"] != int64(65534) {
		t.Errorf("user %v real user %v, want 65534 (not the owner of /proc/PID)", a["process.user.id"], a["process.real_user.id"])
	}
	if cg, _ := a["process.linux.cgroup"].(string); !strings.HasPrefix(cg, "/") {
		t.Errorf("process.linux.cgroup %q, want the child's cgroup", cg)
	}
	anc, _ := a["mitmexec.ancestors"].([]any)
	if len(anc) == 0 || !strings.HasPrefix(fmt.Sprint(anc[0]), fmt.Sprintf("%d:", cmd.Process.Pid)) {
		t.Errorf("mitmexec.ancestors %v, want the python parent %d first", anc, cmd.Process.Pid)
	}
}

// TestPrivilegedContainerExitedFirstSight: a tool copy run under a path
// only its own mount namespace has, gone before the judge reads it, is read
// through its parent (alive, same namespace) and reported.
func TestPrivilegedContainerExitedFirstSight(t *testing.T) {
	l := startLive(t, nil)
	arpspoof := lookPath(t, "arpspoof")
	base := t.TempDir()
	real, hidden := filepath.Join(base, "real"), filepath.Join(base, "hidden")
	for _, d := range []string{real, hidden} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	patchedCopy(t, arpspoof, filepath.Join(real, "netcheck"))
	marker := newMarker("exited_in_namespace")
	// the tool dies in its loader at once (1 MB of address space); its
	// parent shell stays a second
	script := fmt.Sprintf("mount --bind %s %s && (ulimit -v 1000; %s -h %s); sleep 1", real, hidden, filepath.Join(hidden, "netcheck"), marker)
	_ = exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).Run()
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 || got[0].attrs["mitmexec.tool.name"] != "arpspoof" {
		t.Fatalf("%d records, want 1 of arpspoof", len(got))
	}
}
