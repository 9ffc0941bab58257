// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/mitmexec/mitmexec/internal/argv"
	"github.com/mitmexec/mitmexec/internal/event"
)

// compileModules are the standard library's byte compilers: run with -m
// (py3compile runs `python3 -m py_compile -`, pip and apt compile with
// compileall), they read a tool's source and write its bytecode, and run
// none of it.
var compileModules = []string{"py_compile", "compileall"}

// pythonEnvCode are the environment variables that make python run or
// import code of the caller's before the compiler: a module path searched
// first (and a sitecustomize on it), another standard library, another
// user site, warnings filters that import their category's module, and
// the interactive prompt after the program.
var pythonEnvCode = []string{"PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS", "PYTHONINSPECT", "PYTHONSTARTUP", "PYTHONEXECUTABLE"}

// maxDirNames bounds the names read from one directory: a directory larger
// than that is taken to hold whatever the check looks for.
const maxDirNames = 4096

// AddCompiler records the SHA-256 of one of the host's byte-compiling
// scripts (py3compile, the standard library's py_compile.py and
// compileall.py as scripts).
func (r *Rule) AddCompiler(sum string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.compilers == nil {
		r.compilers = map[string]bool{}
	}
	r.compilers[sum] = true
}

func (r *Rule) isCompiler(sum string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sum != "" && r.compilers[sum]
}

// pythonFlags are the interpreter options before the program that decide
// what code other than the program python runs at start.
type pythonFlags struct {
	isolated, ignoreEnv, noUserSite, noSite, safePath, inspect bool
	importingWarning                                           bool // -W with a dotted category: python imports its module
}

// parsePythonFlags reads the flags from python's options in argv, as
// internal/argv's grammar walks them.
func parsePythonFlags(args []string) pythonFlags {
	var f pythonFlags
	for _, o := range argv.PythonOptions(args) {
		switch o.Name {
		case "-I":
			f.isolated = true
		case "-E":
			f.ignoreEnv = true
		case "-s":
			f.noUserSite = true
		case "-S":
			f.noSite = true
		case "-P":
			f.safePath = true
		case "-i":
			f.inspect = true
		case "-W":
			// action:message:category:module:lineno; the category is a
			// builtin name, or module.Name, which python imports
			if parts := strings.Split(o.Value, ":"); len(parts) > 2 && strings.Contains(parts[2], ".") {
				f.importingWarning = true
			}
		}
	}
	return f
}

// CompileOnly reports whether a Python process that opened a tool's module
// is byte-compiling it rather than running it. It is when its argv runs the
// standard library's compiler module (-m py_compile, -m compileall) or a
// script that is, by content, one of the host's compilers (AddCompiler),
// and nothing its user controls can run code in it first: no module of the
// compiler's name in the working directory (where -m looks first), none of
// pythonEnvCode set (unless -E or -I), no usercustomize or .pth file in the
// user's site directory (unless -s, -S or -I), no warnings filter that
// imports a module, no -i. Anything it cannot read (argv cut, environment,
// a directory) makes it a run.
func (r *Rule) CompileOnly(e *event.Exec) bool {
	if r.files == nil {
		return false
	}
	args, complete := argvOf(e)
	if !complete || len(args) < 2 {
		return false
	}
	inv := argv.Parse(Python, args)
	if inv.At > len(args) {
		return false
	}
	f := parsePythonFlags(args)
	if f.inspect || f.importingWarning {
		return false
	}
	ignoreEnv := f.isolated || f.ignoreEnv
	var env map[string]string
	if !ignoreEnv || !(f.isolated || f.noUserSite || f.noSite) {
		vars, err := r.files.Environ(e)
		if err != nil {
			return false
		}
		env = map[string]string{}
		for _, v := range vars {
			if k, val, ok := strings.Cut(v, "="); ok {
				if _, seen := env[k]; !seen {
					env[k] = val
				}
			}
		}
	}
	if !ignoreEnv {
		for _, k := range pythonEnvCode {
			if env[k] != "" {
				return false
			}
		}
		if env["PYTHONSAFEPATH"] != "" {
			f.safePath = true
		}
		if env["PYTHONNOUSERSITE"] != "" {
			f.noUserSite = true
		}
	}
	switch {
	case inv.Module != "" && slices.Contains(compileModules, inv.Module):
		if !f.isolated && !f.safePath && r.dirHolds(e, ".", inv.Module) {
			return false // the working directory comes first on sys.path
		}
	case inv.Script != "" && inv.Script != argv.Elided:
		sum, _, err := r.files.Script(e, inv.Script)
		if err != nil || !r.isCompiler(sum) {
			return false
		}
	default:
		return false
	}
	if f.isolated || f.noUserSite || f.noSite {
		return true
	}
	return !r.userSiteRunsCode(e, env["HOME"])
}

// dirHolds reports whether dir, as the process sees it, holds a module
// named module (module.py, module.pyc, module.*.so, a package module/),
// or cannot be read.
func (r *Rule) dirHolds(e *event.Exec, dir, module string) bool {
	names, err := r.files.ReadDir(e, dir, maxDirNames)
	if err != nil {
		return true
	}
	for _, n := range names {
		if n == module || strings.HasPrefix(n, module+".") {
			return true
		}
	}
	return false
}

// userSiteRunsCode reports whether the user's site directories
// (~/.local/lib/pythonX.Y/site-packages) may run code at python's start:
// a usercustomize module or a .pth file (whose import lines run), or
// whether that cannot be told.
func (r *Rule) userSiteRunsCode(e *event.Exec, home string) bool {
	if home == "" || !path.IsAbs(home) {
		return true
	}
	lib := path.Join(home, ".local", "lib")
	versions, err := r.files.ReadDir(e, lib, maxDirNames)
	if err != nil {
		return !errIsNotExist(err)
	}
	for _, v := range versions {
		if !strings.HasPrefix(v, "python") {
			continue
		}
		site := path.Join(lib, v, "site-packages")
		names, err := r.files.ReadDir(e, site, maxDirNames)
		if err != nil {
			if errIsNotExist(err) {
				continue
			}
			return true
		}
		for _, n := range names {
			if n == "usercustomize" || strings.HasPrefix(n, "usercustomize.") || strings.HasSuffix(n, ".pth") {
				return true
			}
		}
	}
	return false
}

func errIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
