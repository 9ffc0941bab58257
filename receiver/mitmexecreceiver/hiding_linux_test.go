// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/modwatch"
)

// TestPrivilegedModifiedBuilds runs real tools changed as an attacker would
// change them: a byte appended, a section added, the copy run from a memfd
// and through the dynamic loader. Each is still its tool, by what the
// kernel read at exec or by the code and data of the build.
func TestPrivilegedModifiedBuilds(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	sslsplit, macof, bettercap := lookPath(t, "sslsplit"), lookPath(t, "macof"), lookPath(t, "bettercap")
	appended := filepath.Join(dir, "proxy-svc")
	appendCopy(t, sslsplit, appended, "\n")
	goAppended := filepath.Join(dir, "update-agent")
	appendCopy(t, bettercap, goAppended, "trailer")
	sectioned := filepath.Join(dir, "net-probe")
	if out, err := exec.Command("objcopy", "--add-section", ".pad=/etc/hostname", "--set-section-flags", ".pad=noload,readonly", macof, sectioned).CombinedOutput(); err != nil {
		t.Fatalf("objcopy (binutils): %v\n%s", err, out)
	}
	// a memfd copy with a byte appended: no file, no name, gone in a millisecond
	memfd := `import os, sys
fd = os.memfd_create("x")
os.write(fd, open(sys.argv[1], "rb").read() + b"\n")
os.execv("/proc/self/fd/%d" % fd, ["x"] + sys.argv[2:])`
	loader := "/lib64/ld-linux-x86-64.so.2"
	runScenarios(t, l, []scenario{
		{name: "copy with a byte appended", tool: "sslsplit", argv: []string{appended, "-V"}},
		{name: "copy with a section added", tool: "macof", argv: []string{sectioned, "-h"}},
		{name: "Go build with bytes appended", tool: "bettercap", argv: []string{goAppended, "-version"}},
		{name: "memfd copy with a byte appended", tool: "macof", argv: []string{"/usr/bin/python3", "-c", memfd, macof, "-h"}},
		{name: "loader on a copy with a byte appended", tool: "sslsplit", argv: []string{loader, appended, "-V"}},
		{name: "loader on a copy with a section added", tool: "macof", argv: []string{loader, sectioned, "-h"}},
		{name: "unrelated binary with bytes appended", argv: []string{appendCopyPath(t, "/bin/true", dir, "\n")}},
	})
}

// TestPrivilegedHiddenInterpreterCode hides a Python tool from argv: the
// module name built at run time or decoded, the tool reached through a
// wrapper module, the script pushed past the kernel's argv capture. What
// the interpreter opens, or argv read whole, still names it.
func TestPrivilegedHiddenInterpreterCode(t *testing.T) {
	l := startLive(t, nil)
	dir := t.TempDir()
	arpspoof := lookPath(t, "arpspoof")
	mitmweb := lookPath(t, "mitmweb")
	wrapper := filepath.Join(dir, "netcheck.py")
	if err := os.WriteFile(wrapper, []byte("import importlib\nm = importlib.import_module('mitmproxy.tools.' + 'main')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.sh")
	if err := os.WriteFile(notes, []byte("#!/bin/sh\n# defined, never called\ndemo() { /usr/bin/python3 -c 'from mitmproxy.tools.main import mitmweb; mitmweb()'; }\necho ok\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte("mitmproxy.tools.main"))
	pad := strings.Repeat("pad", 1700)
	mitm := "mitmproxy|mitmdump|mitmweb"
	scenarios := []scenario{
		{name: "reversed module name", tool: mitm, argv: []string{"/usr/bin/python3", "-c", `__import__("niam.sloot.yxorpmtim"[::-1], fromlist=["x"])`}},
		{name: "base64 module name", tool: mitm, argv: []string{"/usr/bin/python3", "-c", `import base64, importlib; importlib.import_module(base64.b64decode("` + encoded + `").decode())`}},
		{name: "python -m wrapper", tool: mitm, argv: []string{"/usr/bin/python3", "-m", "netcheck"}, dir: dir},
		{name: "padded interpreter option", tool: "mitmweb", argv: []string{"/usr/bin/python3", "-X", pad, mitmweb, "--version"}},
		{name: "padded loader option", tool: "arpspoof", argv: []string{"/lib64/ld-linux-x86-64.so.2", "--library-path", "/" + pad, arpspoof, "-h"}},
		{name: "shell script quoting python", argv: []string{"/bin/sh", notes}},
		{name: "library import of the tool's package", argv: []string{"/usr/bin/python3", "-c", "import mitmproxy.http"}},
	}
	// reading the tool's module files is not running them
	files := modwatch.Locate("mitmproxy.tools.main", modwatch.PythonRoots())
	if len(files) == 0 {
		t.Fatal("mitmproxy's entry module is not installed (test/setup.sh installs mitmproxy)")
	}
	scenarios = append(scenarios,
		scenario{name: "cat of the tool's module files", argv: append([]string{"/bin/cat"}, files...)},
		scenario{name: "grep through the tool's package", argv: []string{"/bin/grep", "-r", "-c", "mitmweb", filepath.Dir(files[0])}})
	runScenariosAnyOf(t, l, scenarios)
}

// runScenariosAnyOf is runScenarios where a tool may be one of several
// ("a|b"): the tools that share a module are told apart by the call only.
func runScenariosAnyOf(t *testing.T, l *liveReceiver, scenarios []scenario) {
	t.Helper()
	exact := make([]scenario, 0, len(scenarios))
	var shared []scenario
	for _, s := range scenarios {
		if strings.Contains(s.tool, "|") {
			shared = append(shared, s)
		} else {
			exact = append(exact, s)
		}
	}
	runScenarios(t, l, exact)
	for _, s := range shared {
		marker := newMarker(s.name)
		cmd := exec.Command(s.argv[0], append(append([]string{}, s.argv[1:]...), marker)...)
		cmd.Dir = s.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			if _, isExit := err.(*exec.ExitError); !isExit {
				t.Fatalf("%s: %v\n%s", s.name, err, out)
			}
		}
		l.waitFor(t, []string{marker})
		got := l.withMarker(marker)
		if len(got) != 1 {
			t.Errorf("%s: want exactly one detection, got %d", s.name, len(got))
			continue
		}
		if tool, _ := got[0].attrs["mitmexec.tool.name"].(string); !strings.Contains("|"+s.tool+"|", "|"+tool+"|") {
			t.Errorf("%s: tool %q, want one of %s", s.name, tool, s.tool)
		}
		if d, _ := got[0].attrs["mitmexec.match.detail"].(string); d == "" {
			t.Errorf("%s: mitmexec.match.detail missing", s.name)
		}
		assertContract(t, s.name, got[0])
	}
}

func appendCopy(t *testing.T, src, dst, extra string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, append(b, extra...), 0o755); err != nil {
		t.Fatal(err)
	}
}

func appendCopyPath(t *testing.T, src, dir, extra string) string {
	t.Helper()
	dst := filepath.Join(dir, "plain-"+filepath.Base(src))
	appendCopy(t, src, dst, extra)
	return dst
}
