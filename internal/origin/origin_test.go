// SPDX-License-Identifier: Apache-2.0

package origin

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
)

// fakeProc is one process of a fake table.
type fakeProc struct {
	start uint64
	ppid  uint32
	args  []string
	env   map[string]string
	cwd   string
	files map[string]string
}

type fakeReader map[uint32]fakeProc

var errGone = errors.New("gone")

func (f fakeReader) get(pid uint32, start uint64) (fakeProc, error) {
	p, ok := f[pid]
	if !ok || p.start != start {
		return fakeProc{}, errGone
	}
	return p, nil
}

func (f fakeReader) Environ(pid uint32, start uint64) (map[string]string, error) {
	p, err := f.get(pid, start)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range p.env {
		if Allowed(k) {
			env[k] = v
		}
	}
	return env, nil
}

func (f fakeReader) Cmdline(pid uint32, start uint64) ([]string, error) {
	p, err := f.get(pid, start)
	return p.args, err
}

func (f fakeReader) Cwd(pid uint32, start uint64) (string, error) {
	p, err := f.get(pid, start)
	return p.cwd, err
}

func (f fakeReader) ReadFile(pid uint32, start uint64, name string) ([]byte, error) {
	p, err := f.get(pid, start)
	if err != nil {
		return nil, err
	}
	s, ok := p.files[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(s), nil
}

func (f fakeReader) Parents(pid uint32, start uint64) []event.Ancestor {
	var out []event.Ancestor
	for p, err := f.get(pid, start); err == nil && p.ppid > 1; p, err = f.get(pid, f[pid].start) {
		pid = p.ppid
		out = append(out, event.Ancestor{PID: pid, StartBootTime: f[pid].start})
	}
	return out
}

func catalogScript(t *testing.T) InterpreterFunc {
	t.Helper()
	cat, err := detect.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cat.ScriptOf
}

// chain builds a process table: pids 100, 101, ... from the tool up, and
// the ancestors the kernel would report.
func chain(procs ...fakeProc) (fakeReader, []event.Ancestor) {
	r := fakeReader{}
	var anc []event.Ancestor
	for i, p := range procs {
		pid := uint32(100 + i)
		p.start = uint64(1000 + i)
		r[pid] = p
		if i > 0 {
			anc = append(anc, event.Ancestor{PID: pid, StartBootTime: p.start})
		}
	}
	return r, anc
}

func lookup(t *testing.T, r fakeReader, anc []event.Ancestor) Result {
	t.Helper()
	return Lookup(r, catalogScript(t), 100, 1000, anc)
}

func npmEnv(name, version, event, pkgJSON string) map[string]string {
	return map[string]string{
		"npm_package_name": name, "npm_package_version": version, "npm_lifecycle_event": event,
		"npm_package_json": pkgJSON, "npm_config_user_agent": "npm/9.2.0 node/v18.19.0 linux x64",
		"INIT_CWD": "/src/app", "npm_config__authToken": "secret", "NPM_TOKEN": "secret",
	}
}

func TestDependencyPostinstall(t *testing.T) {
	env := npmEnv("left-pad", "1.3.0", "postinstall", "/src/app/node_modules/left-pad/package.json")
	r, anc := chain(
		fakeProc{args: []string{"ettercap", "--version"}, env: env},
		fakeProc{args: []string{"node", "install.js"}, env: env, cwd: "/src/app/node_modules/left-pad"},
		fakeProc{args: []string{"node", "/usr/bin/npm", "install", "--offline"}, env: map[string]string{"INIT_CWD": "/src/app"}},
		fakeProc{args: []string{"bash", "-e", "/runner/_temp/step.sh"}},
	)
	o := lookup(t, r, anc).Origin
	if o.Kind != KindPackageJS || o.Manager != "npm" || o.PackageName != "left-pad" || o.PackageVersion != "1.3.0" ||
		o.LifecycleEvent != "postinstall" || o.Dependency == nil || !*o.Dependency || o.ProjectDir != "/src/app" {
		t.Fatalf("origin %+v", o)
	}
	if o.Depth != 1 || o.PID != 101 {
		t.Errorf("origin at depth %d pid %d, want the script's process (depth 1, pid 101): the tool inherits the same variables", o.Depth, o.PID)
	}
	for _, kv := range o.Attributes() {
		if s, ok := kv.Value.(string); ok && strings.Contains(s, "secret") {
			t.Errorf("%s carries a token", kv.Key)
		}
	}
}

func TestProjectScriptAndNestedRun(t *testing.T) {
	outer := npmEnv("app", "0.1.0", "build", "/src/app/package.json")
	inner := npmEnv("app", "0.1.0", "gen", "/src/app/package.json")
	r, anc := chain(
		fakeProc{args: []string{"arpspoof", "-h"}, env: inner},
		fakeProc{args: []string{"sh", "-c", "arpspoof -h"}, env: inner},
		fakeProc{args: []string{"node", "/usr/bin/npm", "run", "gen"}, env: outer},
		fakeProc{args: []string{"sh", "-c", "npm run gen"}, env: outer},
		fakeProc{args: []string{"node", "/usr/bin/npm", "run", "build"}},
	)
	o := lookup(t, r, anc).Origin
	if o.LifecycleEvent != "gen" || o.Dependency == nil || *o.Dependency || o.Depth != 1 {
		t.Fatalf("nested npm run: origin %+v, want the inner script gen of the project itself at depth 1", o)
	}
}

func TestYarnPnpmWithoutPackageJSONUseCwd(t *testing.T) {
	for _, c := range []struct{ ua, cwd, manager string }{
		{"yarn/1.22.19 npm/? node/v18.19.0 linux x64", "/src/app/node_modules/evil", "yarn"},
		{"pnpm/8.15.0 npm/? node/v18.19.0 linux x64", "/src/app/node_modules/.pnpm/evil@1.0.0/node_modules/evil", "pnpm"},
		{"yarn/4.0.2 npm/? node/v18.19.0 linux x64", "/src/app/.yarn/unplugged/evil-npm-1.0.0-abc/node_modules/evil", "yarn"},
	} {
		env := map[string]string{"npm_package_name": "evil", "npm_package_version": "1.0.0", "npm_lifecycle_event": "install", "npm_config_user_agent": c.ua}
		r, anc := chain(
			fakeProc{args: []string{"bettercap"}, env: env, cwd: c.cwd},
			fakeProc{args: []string{"node", "yarn.js"}},
		)
		o := lookup(t, r, anc).Origin
		if o.Manager != c.manager || o.Dependency == nil || !*o.Dependency || o.File != c.cwd+"/package.json" {
			t.Errorf("%s: origin %+v", c.ua, o)
		}
	}
}

func TestPytestInsideNpmTest(t *testing.T) {
	npm := npmEnv("app", "0.1.0", "test", "/src/app/package.json")
	withTest := map[string]string{"PYTEST_CURRENT_TEST": "tests/test_net.py::test_proxy[ipv4] (call)"}
	for k, v := range npm {
		withTest[k] = v
	}
	r, anc := chain(
		fakeProc{args: []string{"mitmdump", "-p", "0"}, env: withTest},
		fakeProc{args: []string{"/usr/bin/python3", "/usr/bin/pytest-3", "-q"}, env: npm},
		fakeProc{args: []string{"sh", "-c", "pytest-3 -q"}, env: npm},
		fakeProc{args: []string{"node", "/usr/bin/npm", "test"}},
	)
	o := lookup(t, r, anc).Origin
	if o.Kind != KindPytest || o.Test != "tests/test_net.py::test_proxy[ipv4]" || o.File != "tests/test_net.py" || o.Depth != 0 {
		t.Fatalf("origin %+v, want the pytest test, the innermost origin", o)
	}
}

func TestPytestProcessWithoutTheTestsEnvironment(t *testing.T) {
	// The tool and the pytest child are gone: pytest itself shows no
	// PYTEST_CURRENT_TEST in /proc (it sets it in its own os.environ, not
	// in the block the kernel shows), but its command line names it.
	r, anc := chain(
		fakeProc{args: []string{"x"}},
		fakeProc{args: []string{"/usr/bin/python3", "-m", "pytest", "tests"}},
	)
	delete(r, 100)
	res := lookup(t, r, anc)
	if res.Origin.Kind != KindPytest || res.Origin.Test != "" || res.Gone != 1 {
		t.Fatalf("result %+v, want a pytest origin without a test id and one process gone", res)
	}
}

func TestGoTest(t *testing.T) {
	r, anc := chain(
		fakeProc{args: []string{"/usr/sbin/arpspoof", "-h"}},
		fakeProc{args: []string{"/tmp/go-build1/b001/netprobe.test", "-test.paniconexit0", "-test.timeout=10m0s"}, cwd: "/src/app/internal/netprobe"},
		fakeProc{args: []string{"go", "test", "./..."}},
	)
	o := lookup(t, r, anc).Origin
	if o.Kind != KindGoTest || o.Test != "netprobe" || o.File != "/src/app/internal/netprobe" {
		t.Fatalf("origin %+v", o)
	}
}

func TestPythonBuilds(t *testing.T) {
	files := map[string]string{"pyproject.toml": "[build-system]\nrequires = [\"setuptools\"]\nname = \"not-this\"\n[project]\nname = \"netutil\"\nversion = \"2.0.1\"\n"}
	for _, c := range []struct {
		args          []string
		files         map[string]string
		file, manager string
		name, version string
	}{
		{[]string{"/usr/bin/python3", "/usr/lib/python3/dist-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", "build_wheel", "/tmp/x"},
			files, "/src/pyproject.toml", "pip", "netutil", "2.0.1"},
		{[]string{"python3", "-u", "-c", "import sys, setuptools, tokenize; sys.argv[0] = '/tmp/pip-install-x/evil_1/setup.py'; __file__='/tmp/pip-install-x/evil_1/setup.py';exec(...)", "bdist_wheel"},
			map[string]string{"PKG-INFO": "Metadata-Version: 2.1\nName: evil\nVersion: 0.0.1\n\nName: not-this\n"}, "/src/PKG-INFO", "pip", "evil", "0.0.1"},
		{[]string{"/usr/bin/python3", "-u", "-c", "\nexec(compile('''\n# This is <pip-setuptools-caller>\n__file__ = %r\n''' % ('/tmp/pip-req-build-x/setup.py',), \"<pip-setuptools-caller>\", \"exec\"))", "egg_info"},
			nil, "/tmp/pip-req-build-x/setup.py", "pip", "", ""},
		{[]string{"python3", "setup.py", "install"},
			map[string]string{"setup.cfg": "[metadata]\nname = legacy\nversion = attr: legacy.__version__\n"}, "/src/setup.cfg", "", "legacy", ""},
		{[]string{"python3", "setup.py", "build"}, nil, "/src/setup.py", "", "", ""},
		{[]string{"python3", "/abs/setup.py", "build"}, map[string]string{"pyproject.toml": "[tool.black]\n"}, "/src/pyproject.toml", "", "", ""},
	} {
		r, anc := chain(
			fakeProc{args: []string{"arpspoof"}},
			fakeProc{args: c.args, files: c.files, cwd: "/src"},
			fakeProc{args: []string{"/usr/bin/python3", "-m", "pip", "install", "."}},
		)
		o := lookup(t, r, anc).Origin
		if o.Kind != KindPythonBuild || o.File != c.file || o.Manager != c.manager || o.PackageName != c.name || o.PackageVersion != c.version {
			t.Errorf("%q: origin %+v", c.args, o)
		}
	}
}

func TestCargoBuildScript(t *testing.T) {
	env := map[string]string{"CARGO_PKG_NAME": "netsys", "CARGO_PKG_VERSION": "0.3.0", "CARGO_MANIFEST_DIR": "/home/u/.cargo/registry/src/netsys-0.3.0"}
	r, anc := chain(
		fakeProc{args: []string{"ettercap", "-T"}, env: env},
		fakeProc{args: []string{"/src/target/debug/build/netsys-1/build-script-build"}, env: env},
		fakeProc{args: []string{"cargo", "build"}},
	)
	o := lookup(t, r, anc).Origin
	if o.Kind != KindCargoBuild || o.PackageName != "netsys" || o.File != "/home/u/.cargo/registry/src/netsys-0.3.0/Cargo.toml" {
		t.Fatalf("origin %+v", o)
	}
}

func TestMakeTarget(t *testing.T) {
	for _, c := range []struct {
		args         []string
		target, file string
	}{
		{[]string{"make", "-C", "sub", "-j", "4", "V=1", "check"}, "check", ""},
		{[]string{"/usr/bin/make", "-f", "ci.mk", "--jobs=2", "lint", "test"}, "lint", "/src/ci.mk"},
		{[]string{"make", "--file=/abs/ci.mk", "all"}, "all", "/abs/ci.mk"},
		{[]string{"make"}, "", ""},
	} {
		r, anc := chain(
			fakeProc{args: []string{"arpspoof"}},
			fakeProc{args: []string{"/bin/sh", "-c", "arpspoof -i lo"}},
			fakeProc{args: c.args, cwd: "/src"},
		)
		o := lookup(t, r, anc).Origin
		if o.Kind != KindMake || o.MakeTarget != c.target || o.File != c.file || o.Depth != 2 {
			t.Errorf("%q: origin %+v", c.args, o)
		}
	}
}

func TestScriptFallbackAndNone(t *testing.T) {
	r, anc := chain(
		fakeProc{args: []string{"/usr/bin/python3", "/usr/bin/mitmdump"}},
		fakeProc{args: []string{"/bin/sh", "-c", "mitmdump"}},
		fakeProc{args: []string{"bash", "-e", "ci/run.sh"}, cwd: "/src/app"},
		fakeProc{args: []string{"bash", "-e", "/runner/_temp/step.sh"}},
	)
	if o := lookup(t, r, anc).Origin; o.Kind != KindScript || o.File != "/src/app/ci/run.sh" || o.Depth != 2 {
		t.Fatalf("origin %+v, want the nearest script, not the tool's own (depth 0) nor a -c string", o)
	}
	r, anc = chain(fakeProc{args: []string{"arpspoof"}}, fakeProc{args: []string{"/bin/sh", "-c", "arpspoof"}}, fakeProc{args: []string{"sshd"}})
	res := lookup(t, r, anc)
	if res.Origin.Kind != KindNone || res.Origin.Attributes() != nil || res.Gone != 0 {
		t.Fatalf("result %+v, want no origin and nothing gone", res)
	}
}

func TestOriginGoneIsCounted(t *testing.T) {
	r, anc := chain(
		fakeProc{args: []string{"arpspoof"}},
		fakeProc{args: []string{"sh", "-c", "arpspoof"}, env: npmEnv("x", "1", "postinstall", "/a/node_modules/x/package.json")},
		fakeProc{args: []string{"node", "npm"}},
	)
	delete(r, 100)
	delete(r, 101)
	r[102] = fakeProc{start: 9999, args: []string{"other"}} // pid reused
	res := lookup(t, r, anc)
	if res.Origin.Kind != KindNone || res.Gone != 3 {
		t.Fatalf("result %+v, want no origin and 3 processes gone", res)
	}
	// Exited ancestors and pid 1 are not read at all.
	res = Lookup(r, catalogScript(t), 100, 1000, []event.Ancestor{{PID: 1, StartBootTime: 1}, {PID: 7, Exited: true}})
	if res.Gone != 1 {
		t.Fatalf("gone %d, want 1 (the tool only)", res.Gone)
	}
}

func TestCleanBoundsAndEscapes(t *testing.T) {
	got := clean("left\x1b[31mpad\n\x00\xff\u0085ok")
	if got != `left\x1b[31mpad\x0a\x00\xff\xc2\x85ok` {
		t.Errorf("clean = %q", got)
	}
	long := clean(strings.Repeat("a", 10<<10))
	if len(long) > maxField+len("…") || !strings.HasSuffix(long, "…") {
		t.Errorf("10 kB value cleaned to %d bytes, want at most %d and a mark", len(long), maxField+3)
	}
}

// writeProc makes procRoot/PID with a stat, cmdline and environ.
func writeProc(t *testing.T, root string, pid, ticks int, cmdline, environ []byte) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := strconv.Itoa(pid) + " (sh) S 1 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " + strconv.Itoa(ticks) + " 0 0\n"
	for name, b := range map[string][]byte{"stat": []byte(stat), "cmdline": cmdline, "environ": environ} {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHostileEnvironmentThroughTheRealReader: a 10 kB package name is
// dropped by the bounded read (never cut into a false name), a name with
// control characters is escaped, variables off the list never show, a
// padded environment past the bound loses what lies beyond it.
func TestHostileEnvironmentThroughTheRealReader(t *testing.T) {
	root := t.TempDir()
	env := "npm_lifecycle_event=postinstall\x00npm_package_name=" + strings.Repeat("x", 10<<10) + "\x00" +
		"npm_package_name=second\x00npm_package_version=1.0\x1b]0;pwned\x07\x00NPM_TOKEN=secret\x00npm_package_json=/p/node_modules/q/package.json\x00"
	writeProc(t, root, 100, 10, []byte("arpspoof\x00-h\x00"), []byte(env))
	writeProc(t, root, 101, 9, []byte("node\x00npm\x00"), []byte("PATH=/bin\x00"))
	res := Lookup(ProcReader{ProcRoot: root}, catalogScript(t), 100, 10*1e7, []event.Ancestor{{PID: 101, StartBootTime: 9 * 1e7}})
	o := res.Origin
	if o.Kind != KindPackageJS || o.PackageName != "" || o.PackageVersion != `1.0\x1b]0;pwned\x07` {
		t.Fatalf("origin %+v: want the oversized name dropped (the first definition wins, as in getenv) and the version escaped", o)
	}
	// An environment padded past the bound: the variables after it are
	// never read.
	pad := "A=" + strings.Repeat("p", 300<<10) + "\x00npm_lifecycle_event=postinstall\x00"
	writeProc(t, root, 100, 10, []byte("arpspoof\x00"), []byte(pad))
	if res := Lookup(ProcReader{ProcRoot: root}, catalogScript(t), 100, 10*1e7, nil); res.Origin.Kind != KindNone {
		t.Fatalf("origin %+v from past the environment bound", res.Origin)
	}
	// A pid whose start time differs is another process.
	if res := Lookup(ProcReader{ProcRoot: root}, catalogScript(t), 100, 11*1e7, nil); res.Gone != 1 {
		t.Fatalf("reused pid: gone %d, want 1", res.Gone)
	}
}

// TestHostileCommandLines: a target cut by the command line's bound is no
// target (never a shortened, false one); one with control characters or
// 10 kB long is escaped and bounded.
func TestHostileCommandLines(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 100, 10, []byte("arpspoof\x00"), nil)
	for _, c := range []struct {
		cmdline, target string
	}{
		{"make\x00-f\x00ci.mk\x00" + strings.Repeat("t", 20<<10) + "\x00", ""},
		{"make\x00check\x1b[2J\n\x00", `check\x1b[2J\x0a`},
		{"make\x00" + strings.Repeat("t", 10<<10) + "\x00", strings.Repeat("t", maxField) + "…"},
	} {
		writeProc(t, root, 101, 9, []byte(c.cmdline), []byte("PATH=/bin\x00"))
		o := Lookup(ProcReader{ProcRoot: root}, catalogScript(t), 100, 10*1e7, []event.Ancestor{{PID: 101, StartBootTime: 9 * 1e7}}).Origin
		if o.Kind != KindMake || o.MakeTarget != c.target {
			t.Errorf("%.40q: origin kind %q target %.60q, want make target %.60q", c.cmdline, o.Kind, o.MakeTarget, c.target)
		}
	}
}

// TestProcessTableWhenTheKernelGaveNoChain: a process that started before
// the collector has no kernel chain; its parents come from the process
// table.
func TestProcessTableWhenTheKernelGaveNoChain(t *testing.T) {
	r, _ := chain(
		fakeProc{args: []string{"/usr/bin/python3", "/usr/bin/mitmdump"}, ppid: 101},
		fakeProc{args: []string{"/tmp/go-build1/b001/netprobe.test", "-test.v=true"}, cwd: "/src/netprobe", ppid: 102},
		fakeProc{args: []string{"go", "test"}, ppid: 1},
	)
	o := lookup(t, r, nil).Origin
	if o.Kind != KindGoTest || o.Depth != 1 || o.PID != 101 {
		t.Fatalf("origin %+v, want the go test binary, the parent in the process table", o)
	}
	root := t.TempDir()
	writeProc(t, root, 100, 10, []byte("x\x00"), []byte("A=1\x00"))
	if got := (ProcReader{ProcRoot: root}).Parents(100, 10*1e7); len(got) != 0 {
		t.Errorf("parents of a process whose parent is pid 1: %v", got)
	}
}
