// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
)

func TestCompileOnly(t *testing.T) {
	const pyCompileSum = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	files := &fakeFiles{
		environ: map[uint32][]string{
			1: {"HOME=/root", "PATH=/usr/bin"},
			2: {"HOME=/home/eve"},
			3: {"HOME=/root", "PYTHONPATH=/tmp/x"},
			4: {"HOME=/home/pth"},
			5: {"PATH=/usr/bin"},
		},
		dirs: map[string][]string{
			".":                    {"setup.py", "src"},
			"/home/eve/.local/lib": {"python3.11"},
			"/home/eve/.local/lib/python3.11/site-packages": {"usercustomize.py"},
			"/home/pth/.local/lib":                          {"python3.11"},
			"/home/pth/.local/lib/python3.11/site-packages": {"x.pth"},
		},
		scripts: map[string]fakeScript{
			"/usr/bin/py3compile": {sum: pyCompileSum},
			"/tmp/py3compile":     {sum: trueSum},
		},
	}
	r := newTestRule(t, files)
	r.AddCompiler(pyCompileSum)
	py := event.FileID{Dev: 1, Ino: 50, CtimeNs: 1}
	proc := func(pid uint32, args ...string) event.Exec {
		return withPID(elf("python3.11", "/usr/bin/python3", py, args...), pid)
	}
	cases := []struct {
		name string
		exec event.Exec
		want bool
	}{
		{"-m py_compile", proc(1, "python3", "-m", "py_compile", "/x/main.py"), true},
		{"-m compileall", proc(1, "python3", "-E", "-m", "compileall", "-q", "/x"), true},
		{"py3compile's worker", proc(1, "/usr/bin/python3.11", "-O", "-m", "py_compile", "-"), true},
		{"the host's py3compile", proc(1, "/usr/bin/python3", "/usr/bin/py3compile", "-p", "pkg"), true},
		{"a script named py3compile", proc(1, "/usr/bin/python3", "/tmp/py3compile"), false},
		{"another module", proc(1, "python3", "-m", "mitmproxy.tools.main"), false},
		{"-c", proc(1, "python3", "-c", "import py_compile"), false},
		{"usercustomize", proc(2, "python3", "-m", "py_compile", "x.py"), false},
		{"usercustomize off with -s", proc(2, "python3", "-s", "-m", "py_compile", "x.py"), true},
		{"a .pth in the user site", proc(4, "python3", "-m", "compileall", "x"), false},
		{"PYTHONPATH", proc(3, "python3", "-m", "py_compile", "x.py"), false},
		{"PYTHONPATH ignored with -I", proc(3, "python3", "-I", "-m", "py_compile", "x.py"), true},
		{"no HOME: the user site is unknown", proc(5, "python3", "-m", "py_compile", "x.py"), false},
		{"a warnings category to import", proc(1, "python3", "-W", "ignore::evil.W", "-m", "py_compile", "x.py"), false},
		{"a builtin warnings category", proc(1, "python3", "-W", "ignore::DeprecationWarning", "-m", "py_compile", "x.py"), true},
		{"interactive after", proc(1, "python3", "-i", "-m", "py_compile", "x.py"), false},
		{"process gone: environment unread", proc(9, "python3", "-m", "py_compile", "x.py"), false},
		{"argv cut", withFlags(proc(1, "python3", "-m", "py_compile"), event.FlagArgsTruncated), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.exec
			if got := r.CompileOnly(&e); got != c.want {
				t.Errorf("CompileOnly(%v) = %v, want %v", e.Args, got, c.want)
			}
		})
	}
	// a module of the compiler's name in the working directory comes first
	files.dirs["."] = []string{"py_compile.py"}
	e := proc(1, "python3", "-m", "py_compile", "x.py")
	if r.CompileOnly(&e) {
		t.Errorf("py_compile.py in the working directory: CompileOnly true")
	}
	e = proc(1, "python3", "-P", "-m", "py_compile", "x.py")
	if !r.CompileOnly(&e) {
		t.Errorf("-P keeps the working directory off sys.path: CompileOnly false")
	}
}
