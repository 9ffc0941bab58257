// SPDX-License-Identifier: Apache-2.0

package origin

import (
	"path"
	"regexp"
	"strings"

	"github.com/mitmexec/mitmexec/internal/argv"
)

// allowedNames is every variable the walk reads, each between spaces. Any
// other variable is dropped while the environment is parsed.
const allowedNames = " " +
	// npm, yarn and pnpm set these for a lifecycle or run script
	"npm_package_name npm_package_version npm_lifecycle_event npm_package_json npm_config_user_agent INIT_CWD " +
	// pytest sets it for the test running
	"PYTEST_CURRENT_TEST " +
	// Cargo sets these for a build script and for what cargo run/test run
	"CARGO_PKG_NAME CARGO_PKG_VERSION CARGO_MANIFEST_DIR "

// Allowed reports whether name is on the allow-list.
func Allowed(name string) bool {
	return name != "" && !strings.ContainsAny(name, " ") && strings.Contains(allowedNames, " "+name+" ")
}

// families are the environments that name an origin, innermost first: a
// test runner is run by a package script, not the other way round. key
// tells one origin from another of the same family.
var families = []struct {
	kind Kind
	key  func(env map[string]string) string
}{
	{KindPytest, func(env map[string]string) string { return env["PYTEST_CURRENT_TEST"] }},
	{KindCargo, func(env map[string]string) string {
		if env["CARGO_PKG_NAME"] == "" {
			return ""
		}
		return env["CARGO_PKG_NAME"] + "\x00" + env["CARGO_MANIFEST_DIR"]
	}},
	{KindPackageJS, func(env map[string]string) string {
		if env["npm_lifecycle_event"] == "" {
			return ""
		}
		return env["npm_lifecycle_event"] + "\x00" + env["npm_package_name"] + "\x00" + env["npm_package_json"]
	}},
}

// classify tells whether e is an origin. A family's variables are
// inherited by every process below the one they were set for, so a family
// is e's own only when e's parent (the next living process up) does not
// show the same: an npm script's shell has npm_lifecycle_event, npm itself
// has none (or another event's, for a nested npm run). A family that also
// shows further up belongs to an outer origin and is passed over here.
func classify(r Reader, e, next *entry) (Origin, bool) {
	for _, f := range families {
		k := f.key(e.env)
		if k == "" || (next != nil && f.key(next.env) == k) {
			continue
		}
		switch f.kind {
		case KindPytest:
			return pytestOrigin(e), true
		case KindCargo:
			return cargoOrigin(e), true
		case KindPackageJS:
			return packageOrigin(r, e), true
		}
	}
	return commandOrigin(r, e)
}

func base(e *entry) string { return path.Base(e.args[0]) }

func newOrigin(k Kind, e *entry) Origin { return Origin{Kind: k, PID: e.pid, Depth: e.depth} }

// pytestOrigin: PYTEST_CURRENT_TEST is "tests/test_net.py::test_proxy
// (call)", the node id and the phase; the file is relative to pytest's
// root directory.
func pytestOrigin(e *entry) Origin {
	o := newOrigin(KindPytest, e)
	id := e.env["PYTEST_CURRENT_TEST"]
	if i := strings.LastIndex(id, " ("); i > 0 && strings.HasSuffix(id, ")") {
		id = id[:i]
	}
	o.Test = clean(id)
	if i := strings.Index(id, "::"); i > 0 {
		o.File = clean(id[:i])
	}
	return o
}

func cargoOrigin(e *entry) Origin {
	o := newOrigin(KindCargo, e)
	if strings.HasPrefix(base(e), "build-script-") {
		o.Kind = KindCargoBuild
	}
	o.Manager = "cargo"
	o.PackageName = clean(e.env["CARGO_PKG_NAME"])
	o.PackageVersion = clean(e.env["CARGO_PKG_VERSION"])
	if d := e.env["CARGO_MANIFEST_DIR"]; d != "" {
		o.File = clean(path.Join(d, "Cargo.toml"))
	}
	return o
}

// packageOrigin reads an npm, yarn or pnpm script's variables. The package
// is a dependency when its directory (npm_package_json's, else the
// script's working directory, where every one of them runs a script) lies
// under a node_modules directory, or yarn's unplugged store.
func packageOrigin(r Reader, e *entry) Origin {
	o := newOrigin(KindPackageJS, e)
	ua := e.env["npm_config_user_agent"] // "npm/10.2.0 node/v20.9.0 linux x64"
	if i := strings.IndexByte(ua, '/'); i > 0 {
		o.Manager = clean(ua[:i])
	}
	o.PackageName = clean(e.env["npm_package_name"])
	o.PackageVersion = clean(e.env["npm_package_version"])
	o.LifecycleEvent = clean(e.env["npm_lifecycle_event"])
	o.ProjectDir = clean(e.env["INIT_CWD"])
	dir := ""
	if j := e.env["npm_package_json"]; j != "" {
		o.File = clean(j)
		dir = path.Dir(j)
	} else if cwd, err := r.Cwd(e.pid, e.start); err == nil {
		dir = cwd
		o.File = clean(path.Join(cwd, "package.json"))
	}
	if dir != "" {
		dep := strings.Contains(dir+"/", "/node_modules/") || strings.Contains(dir+"/", "/.yarn/unplugged/")
		o.Dependency = &dep
	}
	return o
}

// commandOrigin classifies e by its command line: a Go test binary, a
// Python build, a pytest run, a make.
func commandOrigin(r Reader, e *entry) (Origin, bool) {
	b := base(e)
	switch {
	case strings.HasSuffix(b, ".test") && hasPrefixArg(e.args[1:], "-test."):
		// go test runs the binary it built, pkg.test, in the package's
		// directory, always with -test.* flags.
		o := newOrigin(KindGoTest, e)
		o.Manager = "go"
		o.Test = clean(strings.TrimSuffix(b, ".test"))
		if cwd, err := r.Cwd(e.pid, e.start); err == nil {
			o.File = clean(cwd)
		}
		return o, true
	case b == "make" || b == "gmake":
		o := newOrigin(KindMake, e)
		target, file := makeArgs(e.args[1:])
		if file != "" && !path.IsAbs(file) {
			// -f names the makefile from make's working directory (a -C
			// before it has moved there already).
			if cwd, err := r.Cwd(e.pid, e.start); err == nil {
				file = path.Join(cwd, file)
			}
		}
		o.MakeTarget, o.File = clean(target), clean(file)
		return o, true
	}
	if build, manager := pythonBuild(e.args); build != "" {
		o := newOrigin(KindPythonBuild, e)
		o.Manager = manager
		var manifest string
		o.PackageName, o.PackageVersion, manifest = distribution(r, e)
		// The file a reviewer reads: the source tree's manifest, else the
		// setup.py the build runs; a hook runner's path says nothing.
		if manifest == "" && path.Base(build) == "setup.py" {
			manifest = build
		}
		if manifest != "" && !path.IsAbs(manifest) {
			if cwd, err := r.Cwd(e.pid, e.start); err == nil {
				manifest = path.Join(cwd, manifest)
			}
		}
		o.File = clean(manifest)
		return o, true
	}
	if isPytest(e.args) {
		o := newOrigin(KindPytest, e)
		return o, true
	}
	return Origin{}, false
}

func hasPrefixArg(args []string, p string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return false
}

// makeArgs reads GNU make's options that take a separate value, so that
// neither a value nor a variable assignment (VAR=x) is taken for the
// target; the first remaining argument is the target make runs first.
func makeArgs(args []string) (target, file string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--file" || a == "--makefile":
			if i+1 < len(args) {
				file = args[i+1]
			}
			i++
		case a == "-C" || a == "--directory" || a == "-I" || a == "--include-dir" || a == "-o" ||
			a == "--old-file" || a == "-W" || a == "--what-if" || a == "--new-file" || a == "--assume-new" ||
			a == "--assume-old" || a == "-E" || a == "--eval":
			i++
		case (a == "-j" || a == "-l") && i+1 < len(args) && isNumber(args[i+1]):
			i++ // make takes the next argument as the count when it is a number
		case strings.HasPrefix(a, "--file=") || strings.HasPrefix(a, "--makefile="):
			file = a[strings.IndexByte(a, '=')+1:]
		case strings.HasPrefix(a, "-f") && len(a) > 2:
			file = a[2:]
		case strings.HasPrefix(a, "-"):
		case strings.Contains(a, "="):
		default:
			if target == "" {
				target = a
			}
		}
	}
	return target, file
}

// setupFile finds setup.py in pip's setuptools shim: older pips set
// __file__='/src/setup.py' in the code, newer ones (21 on) format the
// path in after the code string with %, as % ('/src/setup.py',).
var setupFile = regexp.MustCompile(`(?:__file__\s*=\s*|%\s*\(\s*)['"]([^'"]*setup\.py)['"]`)

// pythonBuild tells whether argv is a Python build of a distribution: a
// PEP 517 backend hook run by pip or build (pyproject_hooks'
// _in_process.py), setup.py run directly, or pip's setuptools shim (python
// -c "...__file__='/src/setup.py'..."). It returns the file the build runs
// and, when the path shows it, the tool that runs the build.
func pythonBuild(args []string) (file, manager string) {
	if !strings.HasPrefix(path.Base(args[0]), "python") && !strings.HasPrefix(path.Base(args[0]), "pypy") {
		return "", ""
	}
	inv := argv.Parse(argv.Python, args)
	switch {
	case strings.HasSuffix(inv.Script, "/_in_process.py") || inv.Script == "_in_process.py":
		if strings.Contains(inv.Script, "/pip/") {
			manager = "pip"
		}
		return inv.Script, manager
	case path.Base(inv.Script) == "setup.py":
		return inv.Script, ""
	case inv.Code != "":
		if m := setupFile.FindStringSubmatch(inv.Code); m != nil {
			return m[1], "pip"
		}
	}
	return "", ""
}

// isPytest: pytest, py.test, or python -m pytest.
func isPytest(args []string) bool {
	b := path.Base(args[0])
	if pytestName(b) {
		return true
	}
	if !strings.HasPrefix(b, "python") {
		return false
	}
	inv := argv.Parse(argv.Python, args)
	if inv.Module != "" {
		return inv.Module == "pytest" || inv.Module == "py.test"
	}
	return inv.Script != "" && pytestName(path.Base(inv.Script))
}

// pytestName: pytest, pytest-3 (Debian's), py.test.
func pytestName(b string) bool {
	return b == "pytest" || b == "py.test" || strings.HasPrefix(b, "pytest-")
}

// scriptOrigin: the script file an interpreter runs. A shell's -c string
// is no file; a script named relative to the working directory is made
// absolute with it.
func scriptOrigin(r Reader, interp InterpreterFunc, e *entry) (Origin, bool) {
	script, ok := nodeScript(e.args)
	if !ok {
		script, ok = interp(e.args)
	}
	if !ok || script == "" {
		return Origin{}, false
	}
	if !path.IsAbs(script) {
		if cwd, err := r.Cwd(e.pid, e.start); err == nil {
			script = path.Join(cwd, script)
		}
	}
	o := newOrigin(KindScript, e)
	o.File = clean(script)
	return o, true
}

// nodeScript is the script node runs, read with internal/argv's grammar
// (the catalog knows no JavaScript: node is not an interpreter the rule
// judges); "" when it runs code (-e, -p) or standard input.
func nodeScript(args []string) (string, bool) {
	if b := path.Base(args[0]); b != "node" && b != "nodejs" {
		return "", false
	}
	return argv.Parse(argv.Node, args).Script, true
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}
