// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordsOf returns the records of pid and of its descendants (by the
// record's ancestry).
func (l *liveReceiver) recordsOf(pid int) []liveRecord {
	var out []liveRecord
	for _, r := range l.records() {
		if r.attrs["process.pid"] == int64(pid) || r.attrs["process.parent_pid"] == int64(pid) {
			out = append(out, r)
			continue
		}
		anc, _ := r.attrs["mitmexec.ancestors"].([]any)
		for _, a := range anc {
			if strings.HasPrefix(fmt.Sprint(a), fmt.Sprintf("%d:", pid)) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// mitmproxyTools is the installed package directory of mitmproxy's tools.
func mitmproxyTools(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import mitmproxy.tools, os; print(os.path.dirname(mitmproxy.tools.__file__))").Output()
	if err != nil {
		t.Fatalf("mitmproxy is not installed for /usr/bin/python3: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestPrivilegedCompileIsNoRun: byte-compiling a tool's package (what
// py_compile, compileall, py3compile and pip do at every install) opens the
// tool's entry module and is not a run of the tool, while a run of the tool
// under those names still is.
func TestPrivilegedCompileIsNoRun(t *testing.T) {
	// every run has this test for its parent: folding off, so that each
	// run that is reported has a record of its own
	l := startLive(t, func(c *Config) { c.Fold.Enabled = false; c.MaxRecordsPerSecond = 0 })
	tools := mitmproxyTools(t)
	main := filepath.Join(tools, "main.py")
	dir := t.TempDir()

	// a local package that depends on mitmproxy and imports its entry
	// point, installed by a real pip into a virtual environment that
	// sees the system's packages (mitmproxy among them)
	pkg := filepath.Join(dir, "pkg")
	if err := os.MkdirAll(filepath.Join(pkg, "mitmhelper"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pkg, "pyproject.toml"), "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"mitmhelper\"\nversion = \"0.1\"\ndependencies = [\"mitmproxy\"]\n")
	writeFile(t, filepath.Join(pkg, "mitmhelper", "__init__.py"), "from mitmproxy.tools.main import mitmdump\n\n\ndef main():\n    mitmdump()\n")
	venv := filepath.Join(dir, "venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", venv).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}

	type run struct {
		name string
		argv []string
		dir  string
		env  []string
		tool bool // a run of the tool: one record
	}
	shadow := filepath.Join(dir, "shadow")
	if err := os.Mkdir(shadow, 0o755); err != nil {
		t.Fatal(err)
	}
	// a py_compile of one's own that runs the tool: -m finds it first in
	// the working directory
	writeFile(t, filepath.Join(shadow, "py_compile.py"), "from mitmproxy.tools.main import mitmdump\nmitmdump(['--version'])\n")
	writeFile(t, filepath.Join(dir, "py3compile"), "#!/usr/bin/python3\nfrom mitmproxy.tools.main import mitmdump\nmitmdump(['--version'])\n")
	// code that runs at python's start before any compiler: a warnings
	// category's module, the user's usercustomize, a sitecustomize on
	// PYTHONPATH; each imports the tool's entry module under a name no
	// argv shows
	hidden := "m = 'mitm' + 'proxy.tools.main'; __import__(m)\n"
	warn := filepath.Join(dir, "warn")
	home := filepath.Join(dir, "home")
	site := filepath.Join(home, ".local", "lib", "python3.11", "site-packages")
	pypath := filepath.Join(dir, "pypath")
	for _, d := range []string{warn, site, pypath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(warn, "evil.py"), hidden+"class W(Warning): pass\n")
	writeFile(t, filepath.Join(site, "usercustomize.py"), hidden)
	writeFile(t, filepath.Join(pypath, "sitecustomize.py"), hidden)
	runs := []run{
		{name: "py_compile", argv: []string{"/usr/bin/python3", "-m", "py_compile", main}},
		{name: "compileall", argv: []string{"/usr/bin/python3", "-m", "compileall", "-q", "-f", tools}},
		{name: "py3compile", argv: []string{"py3compile", "-f", tools}},
		{name: "pip install", argv: []string{filepath.Join(venv, "bin", "python"), "-m", "pip", "install", "--no-index", "--no-build-isolation", pkg}},
		{name: "py_compile of one's own", argv: []string{"/usr/bin/python3", "-m", "py_compile", main}, dir: shadow, tool: true},
		{name: "py_compile after a warnings module", argv: []string{"/usr/bin/python3", "-W", "ignore::evil.W", "-m", "py_compile", main}, dir: warn, tool: true},
		{name: "py_compile after usercustomize", argv: []string{"/usr/bin/python3", "-m", "py_compile", main}, env: []string{"HOME=" + home}, tool: true},
		{name: "compileall after a sitecustomize on PYTHONPATH", argv: []string{"/usr/bin/python3", "-m", "compileall", "-q", filepath.Join(dir, "pkg")}, env: []string{"PYTHONPATH=" + pypath}, tool: true},
		{name: "a script named py3compile", argv: []string{"/usr/bin/python3", filepath.Join(dir, "py3compile")}, tool: true},
		{name: "the installed package's entry point", argv: []string{filepath.Join(venv, "bin", "python"), "-c", "import mitmhelper, sys; sys.argv = ['x', '--version']; mitmhelper.main()"}, tool: true},
	}
	pids := make([]int, len(runs))
	for i, r := range runs {
		cmd := exec.Command(r.argv[0], r.argv[1:]...)
		// Bytecode goes under the test's directory, never into the
		// package, which would replace the watched files. Each run has a
		// directory of its own: with bytecode there from an earlier run,
		// python would open none of the package's files.
		cmd.Dir = r.dir
		cmd.Env = append(append(os.Environ(), r.env...), fmt.Sprintf("PYTHONPYCACHEPREFIX=%s/pycache-%d", dir, i))
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("%s: %v", r.name, err)
		}
		if err != nil && !r.tool {
			t.Fatalf("%s failed: %v\n%s", r.name, err, out)
		}
		pids[i] = cmd.Process.Pid
	}
	time.Sleep(2 * time.Second)
	for i, r := range runs {
		got := l.recordsOf(pids[i])
		switch {
		case r.tool && len(got) == 0:
			t.Errorf("%s: no record, want the run of the tool reported", r.name)
		case !r.tool && len(got) != 0:
			t.Errorf("%s: %d records, want none: %v %v", r.name, len(got), got[0].attrs["mitmexec.match"], got[0].attrs["process.command_line"])
		}
	}
}
