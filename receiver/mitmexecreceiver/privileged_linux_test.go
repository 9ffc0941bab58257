// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrivilegedKnownTools execs each real tool by its own name and a set of
// benign programs: exactly one record per tool exec, none for the rest.
func TestPrivilegedKnownTools(t *testing.T) {
	l := startLive(t, nil)
	scenarios := []scenario{
		{name: "ettercap", tool: "ettercap", match: "executable_name", argv: []string{lookPath(t, "ettercap"), "--version"}},
		{name: "bettercap", tool: "bettercap", match: "executable_name", argv: []string{lookPath(t, "bettercap"), "-version"}},
		{name: "mitmdump", tool: "mitmdump", match: "script", argv: []string{lookPath(t, "mitmdump"), "--version"}},
		{name: "mitmproxy", tool: "mitmproxy", match: "script", argv: []string{lookPath(t, "mitmproxy"), "--version"}},
		{name: "arpspoof", tool: "arpspoof", match: "executable_name", argv: []string{lookPath(t, "arpspoof"), "-h"}},
		{name: "dnsspoof", tool: "dnsspoof", argv: []string{lookPath(t, "dnsspoof"), "-h"}},
		{name: "macof", tool: "macof", argv: []string{lookPath(t, "macof"), "-h"}},
		{name: "sshmitm", tool: "sshmitm", argv: []string{lookPath(t, "sshmitm"), "-h"}},
		{name: "webmitm", tool: "webmitm", argv: []string{lookPath(t, "webmitm"), "-h"}},
		{name: "sslsplit", tool: "sslsplit", argv: []string{lookPath(t, "sslsplit"), "-V"}},
		{name: "yersinia", tool: "yersinia", argv: []string{lookPath(t, "yersinia"), "-V"}, dir: t.TempDir()},
		{name: "parasite6", tool: "parasite6", argv: []string{lookPath(t, "atk6-parasite6")}},
		{name: "fake_router6", tool: "fake_router6", argv: []string{lookPath(t, "atk6-fake_router6")}},
		{name: "true", argv: []string{"/bin/true"}},
		{name: "ls", argv: []string{"/bin/ls", "/"}},
		{name: "grep tool name", argv: []string{"grep", "-q", "bettercap", "/dev/null"}},
		{name: "cat tool binary", argv: []string{"cat", lookPath(t, "bettercap")}},
		{name: "python print", argv: []string{"/usr/bin/python3", "-c", "print('mitmdump')"}},
		{name: "sh true", argv: []string{"/bin/sh", "-c", "true"}},
	}
	runScenarios(t, l, scenarios)
}

// buildFdexec builds the fileless-exec helper of testdata/fdexec.
// TestPrivilegedEvasions reaches the real tools every other way: copies,
// links, file descriptors, memfd, argv[0] spoofing, pid namespaces, and
// each interpreter form; and checks the look-alikes stay silent.
func TestPrivilegedEvasions(t *testing.T) {
	l := startLive(t, nil)
	fdexec := buildFdexec(t)
	dir := t.TempDir()
	bettercap, ettercap, arpspoof := lookPath(t, "bettercap"), lookPath(t, "ettercap"), lookPath(t, "arpspoof")
	mitmdump, mitmweb := lookPath(t, "mitmdump"), lookPath(t, "mitmweb")

	copyFile(t, bettercap, filepath.Join(dir, "backup-agent"))
	copyFile(t, ettercap, filepath.Join(dir, "netmon"))
	copyFile(t, mitmdump, filepath.Join(dir, "proxyhelper"))
	python, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, python, filepath.Join(dir, "svc-helper"))
	if err := os.Symlink(bettercap, filepath.Join(dir, "bc-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(arpspoof, filepath.Join(dir, "netcheck")); err != nil {
		t.Fatal(err)
	}
	// A hard link is the installed file itself, except on overlayfs (a
	// container's root, the kernel-matrix VMs): linking a lower file copies
	// it up first, so the link is a new inode with the tool's bytes.
	linkMatch := "inode"
	if !sameFile(t, arpspoof, filepath.Join(dir, "netcheck")) {
		linkMatch = "content_fingerprint"
	}
	loader, err := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, loader, filepath.Join(dir, "svc-loader"))
	copyFile(t, "/bin/true", filepath.Join(dir, "mitmdumpx"))
	copyFile(t, "/bin/true", filepath.Join(dir, "ettercap.conf"))
	if err := os.Symlink("/bin/true", filepath.Join(dir, "my-bettercap-notes")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "mitmproxy2swagger"), "#!/usr/bin/python3\nimport sys\nprint('mitmproxy2swagger', sys.argv)\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "ettercap bettercap mitmdump\n")
	writeFile(t, filepath.Join(dir, "wrapper.py"), "from mitmproxy.tools.main import mitmdump\nimport sys\nsys.exit(mitmdump())\n")
	writeFile(t, filepath.Join(dir, "sslstrip"), "print('pretend')\n")
	writeFile(t, filepath.Join(dir, "responder"), "#!/bin/sh\necho pretend\n")
	modDir := filepath.Join(dir, "py")
	if err := os.MkdirAll(filepath.Join(modDir, "mitm6"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(modDir, "mitm6", "__init__.py"), "")
	writeFile(t, filepath.Join(modDir, "mitm6", "__main__.py"), "print('pretend mitm6')\n")

	scenarios := []scenario{
		// copies and links
		{name: "renamed copy", tool: "bettercap", match: "elf_structure", argv: []string{filepath.Join(dir, "backup-agent"), "-version"}},
		{name: "renamed copy elf", tool: "ettercap", match: "elf_structure", argv: []string{filepath.Join(dir, "netmon"), "--version"}},
		{name: "symlink", tool: "bettercap", match: "executable_name", argv: []string{filepath.Join(dir, "bc-link"), "-version"}},
		{name: "hard link", tool: "arpspoof", match: linkMatch, argv: []string{filepath.Join(dir, "netcheck"), "-h"}},
		// fileless and fd
		{name: "fd exec", tool: "arpspoof", match: "executable_name", argv: []string{fdexec, "fd", arpspoof, "-h"}},
		{name: "memfd exec", tool: "ettercap", argv: []string{fdexec, "memfd", ettercap, "--version"}},
		// the dynamic loader runs the tool without an exec of it
		{name: "ld.so", tool: "ettercap", match: "interpreter_args", argv: []string{"/lib64/ld-linux-x86-64.so.2", ettercap, "--version"}},
		{name: "ld.so copy", tool: "bettercap", match: "elf_structure", argv: []string{"/lib64/ld-linux-x86-64.so.2", filepath.Join(dir, "backup-agent"), "-version"}},
		// argv[0] and comm spoofing
		{name: "exec -a", tool: "bettercap", match: "executable_name", argv: []string{"bash", "-c", "exec -a systemd-helper " + bettercap + " -version MARKER"}},
		// pid namespace
		{name: "pid namespace", tool: "ettercap", match: "executable_name", argv: []string{"unshare", "--fork", "--pid", ettercap, "--version"}},
		// scripts and interpreters
		{name: "shebang", tool: "mitmdump", match: "script", argv: []string{mitmdump, "--version"}},
		{name: "python script path", tool: "mitmweb", match: "script", argv: []string{"/usr/bin/python3", mitmweb, "--version"}},
		{name: "python -I script", tool: "mitmweb", match: "script", argv: []string{"/usr/bin/python3", "-I", "-W", "ignore", mitmweb, "--version"}},
		{name: "renamed script copy", tool: "mitmdump", match: "content_hash", argv: []string{filepath.Join(dir, "proxyhelper"), "--version"}},
		{name: "python renamed script", tool: "mitmdump", match: "content_hash", argv: []string{"/usr/bin/python3", filepath.Join(dir, "proxyhelper"), "--version"}},
		{name: "renamed python", tool: "mitmweb", match: "script", argv: []string{filepath.Join(dir, "svc-helper"), mitmweb, "--version"}},
		{name: "python -c import", tool: "mitmdump", match: "interpreter_args", argv: []string{"/usr/bin/python3", "-c", "from mitmproxy.tools.main import mitmdump; import sys; sys.argv=['x','--version']; mitmdump()"}},
		{name: "python own wrapper", tool: "mitmdump", match: "script", argv: []string{"/usr/bin/python3", filepath.Join(dir, "wrapper.py"), "--version"}},
		{name: "python -m", tool: "mitm6", match: "interpreter_args", argv: []string{"/usr/bin/python3", "-m", "mitm6"}, dir: modDir},
		{name: "python script from an fd", tool: "mitmdump", match: "content_hash", argv: []string{"/bin/sh", "-c", "exec /usr/bin/python3 /dev/fd/3 --version MARKER 3< " + mitmdump}},
		{name: "python stdin file", tool: "mitmdump", match: "content_hash", argv: []string{"/bin/sh", "-c", "exec /usr/bin/python3 - --version MARKER < " + mitmdump}},
		{name: "python script by name", tool: "sslstrip", match: "script", argv: []string{"/usr/bin/python3", filepath.Join(dir, "sslstrip")}},
		{name: "sh script", tool: "responder", match: "script", argv: []string{"sh", filepath.Join(dir, "responder")}},
		{name: "perl script", tool: "sslstrip", match: "script", argv: []string{"perl", "-w", filepath.Join(dir, "sslstrip")}},
		// look-alikes stay silent
		{name: "lookalike copy", argv: []string{filepath.Join(dir, "mitmdumpx")}},
		{name: "dotted lookalike", argv: []string{filepath.Join(dir, "ettercap.conf")}},
		{name: "lookalike symlink", argv: []string{filepath.Join(dir, "my-bettercap-notes")}},
		{name: "lookalike python tool", argv: []string{filepath.Join(dir, "mitmproxy2swagger")}},
		{name: "file naming tools", argv: []string{"cat", filepath.Join(dir, "notes.txt")}},
		{name: "grep", argv: []string{"grep", "-q", "ettercap", filepath.Join(dir, "notes.txt")}},
		{name: "python naming tool", argv: []string{"/usr/bin/python3", "-c", "print('mitmproxy.tools.main mitmdump')"}},
		// inspecting a tool is not running it: ldd runs ld.so on it with
		// LD_TRACE_LOADED_OBJECTS=1 (the marker is a second file for ldd)
		{name: "ldd", argv: []string{"ldd", ettercap}},
		{name: "ld.so --verify", argv: []string{"/lib64/ld-linux-x86-64.so.2", "--verify", ettercap}},
		{name: "ld.so traced", argv: []string{"/usr/bin/env", "LD_TRACE_LOADED_OBJECTS=1", "/lib64/ld-linux-x86-64.so.2", ettercap}},
		// a copy of the loader nobody has judged yet: its first exec lists
		{name: "ld.so copy traced", argv: []string{"/usr/bin/env", "LD_TRACE_LOADED_OBJECTS=1", filepath.Join(dir, "svc-loader"), ettercap}},
		{name: "renamed ld.so", tool: "ettercap", match: "interpreter_args", argv: []string{filepath.Join(dir, "svc-loader"), ettercap, "--version"}},
	}
	runScenarios(t, l, scenarios)

	// The pid namespace record carries both pids.
	found := 0
	for _, r := range l.records() {
		args, _ := r.attrs["process.command_args"].([]any)
		if len(args) > 0 && strings.HasSuffix(fmt.Sprint(args[len(args)-1]), "pid_namespace") {
			found++
			if r.attrs["process.vpid"] != int64(1) {
				t.Errorf("pid namespace: process.vpid = %v, want 1", r.attrs["process.vpid"])
			}
			if r.attrs["process.pid"] == int64(1) {
				t.Errorf("pid namespace: process.pid is the namespace's pid, want the host's")
			}
		}
	}
	if found != 1 {
		t.Errorf("pid namespace: %d records, want 1", found)
	}
}

// TestPrivilegedAncestryExitedParent: the parent exits before the child
// execs the tool, so the live chain shows a reaper; the kernel's fork table
// still names the real parent.
func TestPrivilegedAncestryExitedParent(t *testing.T) {
	l := startLive(t, nil)
	marker := newMarker("exited_parent")
	ettercap := lookPath(t, "ettercap")
	// sh starts a subshell in the background and exits at once; the
	// subshell waits until sh is gone, then becomes ettercap.
	cmd := exec.Command("/bin/sh", "-c", "(sleep 0.3; exec "+ettercap+" --version "+marker+") >/dev/null 2>&1 & exit 0")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	shPID := cmd.Process.Pid
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("want one detection, got %d", len(got))
	}
	// the subshell's parent was sh, which had exited: the record still says so
	if ppid := got[0].attrs["process.parent_pid"]; ppid != int64(shPID) {
		t.Errorf("process.parent_pid = %v, want the exited sh %d", ppid, shPID)
	}
	anc, _ := got[0].attrs["mitmexec.ancestors"].([]any)
	if len(anc) < 2 || !strings.HasPrefix(fmt.Sprint(anc[0]), fmt.Sprintf("%d:", shPID)) ||
		!strings.HasPrefix(fmt.Sprint(anc[1]), fmt.Sprintf("%d:", os.Getpid())) {
		t.Errorf("mitmexec.ancestors = %v, want sh %d then this test %d", anc, shPID, os.Getpid())
	}
}

// runKilled runs argv and reports its output and whether SIGKILL ended it.
func runKilled(t *testing.T, argv ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(err, syscall.EPERM) && cmd.ProcessState == nil {
			// the BPF LSM refused the exec: nothing ran, nothing was killed
			return "", false
		}
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run %v: %v", argv, err)
		}
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return string(out), ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestPrivilegedBlockMode: with action kill the kernel stops known tools
// before their first instruction, user space stops what only it can judge,
// and benign programs run untouched.
func TestPrivilegedBlockMode(t *testing.T) {
	l := startLive(t, func(c *Config) { c.Action = "kill" })
	dir := t.TempDir()
	ettercap, mitmdump := lookPath(t, "ettercap"), lookPath(t, "mitmdump")
	copyFile(t, ettercap, filepath.Join(dir, "sysmon"))

	type want struct {
		marker, action string
	}
	var wants []want

	// Where BPF LSM loads, a tool known by name or identity is refused
	// before it runs (execve fails); elsewhere the exec hook kills it
	// before its first instruction. Either way it prints nothing.
	lsmErr := l.rcv.source.Deny()
	t.Logf("BPF LSM: %v", lsmErr)
	// Each exec goes through a symlink named by its marker: the BPF LSM
	// judges the file the link resolves to, and its record names the link.
	via := func(marker, target string) string {
		link := filepath.Join(dir, marker)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		return link
	}
	kernelStop := func(name string, denied bool, target string, args ...string) string {
		m := newMarker(name)
		out, killed := runKilled(t, append([]string{via(m, target)}, append(args, m)...)...)
		switch {
		case denied && killed:
			t.Errorf("%s: killed, want the exec refused", name)
		case !denied && (!killed || out != ""):
			t.Errorf("%s: killed %v, output %q; want SIGKILL and no output", name, killed, out)
		}
		action := "killed"
		if denied {
			action = "denied"
		}
		wants = append(wants, want{m, action})
		return m
	}

	// a known tool
	kernelStop("kill_ettercap", lsmErr == nil, ettercap, "--version")

	// a renamed copy: its content is known from the installed build. The
	// first sight is decided by its fingerprint in the exec hook (the LSM
	// hook checks identities and names only); once user space has judged it,
	// by its identity, which the LSM hook checks too.
	first := kernelStop("kill_copy_0", false, filepath.Join(dir, "sysmon"), "--version")
	l.waitFor(t, []string{first})
	kernelStop("kill_copy_1", lsmErr == nil, filepath.Join(dir, "sysmon"), "--version")

	// user space reads a script to know it, so it stops it late, before
	// the tool printed anything
	killedLate := func(name string, argv ...string) {
		m := newMarker(name)
		out, killed := runKilled(t, append(argv, m)...)
		if !killed || strings.Contains(out, "Mitmproxy") {
			t.Errorf("%s: killed %v, output %q; want SIGKILL before it printed its version", name, killed, out)
		}
		wants = append(wants, want{m, "killed_late"})
	}
	// a Python tool's script: the LSM hook sees the script's own name
	// first (binfmt_script asks the LSM about the script, then about its
	// interpreter) and refuses it; the exec hook sees only the interpreter.
	if lsmErr == nil {
		kernelStop("kill_mitmdump", true, mitmdump, "--version")
	} else {
		killedLate("kill_mitmdump", mitmdump, "--version")
	}
	// run by the interpreter, the script is an argument: user space alone
	// knows it, with or without the LSM
	killedLate("kill_python_mitmdump", "/usr/bin/python3", mitmdump, "--version")

	// a benign program is untouched
	out, killed := runKilled(t, "/bin/echo", "still-here")
	if killed || strings.TrimSpace(out) != "still-here" {
		t.Errorf("echo: killed %v, output %q", killed, out)
	}

	markers := make([]string, len(wants))
	for i, w := range wants {
		markers[i] = w.marker
	}
	l.waitFor(t, markers)
	for _, w := range wants {
		got := l.withMarker(w.marker)
		if len(got) != 1 {
			t.Errorf("%s: %d records, want 1", w.marker, len(got))
			continue
		}
		if a := got[0].attrs["mitmexec.action"]; a != w.action {
			t.Errorf("%s: mitmexec.action %v, want %s", w.marker, a, w.action)
		}
		if w.action == "killed_late" {
			if d, ok := got[0].attrs["mitmexec.action.delay_ms"].(float64); !ok || d <= 0 {
				t.Errorf("%s: mitmexec.action.delay_ms %v, want how late the kill came", w.marker, got[0].attrs["mitmexec.action.delay_ms"])
			}
		}
	}
}

// TestPrivilegedHostileInput: argv beyond the capture bound, file names that
// are not UTF-8 or hold a newline, and a copy deleted right after it ran:
// each is a record with what is known, never a crash or a silent loss.
func TestPrivilegedHostileInput(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	ettercap, bettercap := lookPath(t, "ettercap"), lookPath(t, "bettercap")
	weird := filepath.Join(dir, "net\xffmon")
	copyFile(t, ettercap, weird)
	newline := filepath.Join(dir, "line\nbreak")
	copyFile(t, bettercap, newline)
	gone := filepath.Join(dir, "gone")
	copyFile(t, ettercap, gone)

	long := newMarker("long_argv")
	big := strings.Repeat("A", 9000)
	_, _ = exec.Command(ettercap, "--version", big, long).CombinedOutput()
	m1 := newMarker("non_utf8")
	_, _ = exec.Command(weird, "--version", m1).CombinedOutput()
	m2 := newMarker("newline")
	_, _ = exec.Command(newline, "-version", m2).CombinedOutput()
	m3 := newMarker("deleted")
	cmd := exec.Command(gone, "--version", m3)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(gone)
	_ = cmd.Wait()

	// the long argv was cut by the kernel, which kept its start and its
	// end: the marker after the big argument is in the record
	l.waitFor(t, []string{long, m1, m2, m3})
	if got := l.withMarker(long); len(got) != 1 {
		t.Errorf("long argv: %d records carry the marker at its end, want 1", len(got))
	}
	var longRec []liveRecord
	deadline := time.Now().Add(10 * time.Second)
	for len(longRec) == 0 && time.Now().Before(deadline) {
		for _, r := range l.records() {
			if cl, _ := r.attrs["process.command_line"].(string); strings.Contains(cl, "AAAA") {
				longRec = append(longRec, r)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(longRec) != 1 {
		t.Fatalf("long argv: %d records, want 1", len(longRec))
	}
	if longRec[0].attrs["mitmexec.args_truncated"] != true {
		t.Errorf("long argv: args_truncated %v", longRec[0].attrs["mitmexec.args_truncated"])
	}
	if cl, _ := longRec[0].attrs["process.command_line"].(string); len(cl) > 4096 {
		t.Errorf("long argv: command line of %d bytes exceeds the bound", len(cl))
	}
	for _, c := range []struct{ marker, tool, exe string }{
		{m1, "ettercap", filepath.Join(dir, `net\xffmon`)},
		{m2, "bettercap", newline},
		{m3, "ettercap", ""},
	} {
		got := l.withMarker(c.marker)
		if len(got) != 1 {
			t.Errorf("%s: %d records, want 1", c.marker, len(got))
			continue
		}
		if got[0].attrs["mitmexec.tool.name"] != c.tool {
			t.Errorf("%s: tool %v", c.marker, got[0].attrs["mitmexec.tool.name"])
		}
		if c.exe != "" && got[0].attrs["process.executable.path"] != c.exe {
			t.Errorf("%s: executable path %q, want %q", c.marker, got[0].attrs["process.executable.path"], c.exe)
		}
	}
	if n := l.rcv.decodeErrors.Load(); n != 0 {
		t.Errorf("decode errors: %d", n)
	}
}

// TestPrivilegedContainerCgroup runs a tool inside a cgroup laid out the way
// docker lays out a container's (system.slice/docker-ID.scope) and in its
// own pid namespace: the record carries the cgroup path, the container id
// and both pids. A real container runtime is not needed for what the kernel
// reports.
func TestPrivilegedContainerCgroup(t *testing.T) {
	l := startLive(t, nil)
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "cgroup2", "none", root).CombinedOutput(); err != nil {
		t.Fatalf("mount cgroup2: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", root).Run() })
	id := "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
	scope := filepath.Join(root, "system.slice", "docker-"+id+".scope")
	if err := os.MkdirAll(scope, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(scope)
		_ = os.Remove(filepath.Dir(scope))
	})
	marker := newMarker("container")
	ettercap := lookPath(t, "ettercap")
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs && exec unshare --fork --pid %s --version %s", scope, ettercap, marker)
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run in cgroup: %v: %s", err, out)
		}
	}
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	a := got[0].attrs
	if a["container.id"] != id {
		t.Errorf("container.id = %v, want %s", a["container.id"], id)
	}
	if a["process.linux.cgroup"] != "/system.slice/docker-"+id+".scope" {
		t.Errorf("process.linux.cgroup = %v", a["process.linux.cgroup"])
	}
	if a["process.vpid"] != int64(1) {
		t.Errorf("process.vpid = %v, want 1", a["process.vpid"])
	}
}
