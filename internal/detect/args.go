// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"path"
	"regexp"
	"strings"
)

// invocation is what an interpreter's argv says it will run.
type invocation struct {
	script string // the script path, when one is named
	module string // python -m
	code   string // python -c, perl/ruby -e
	stdin  bool   // the program comes on standard input (python - , python < file)
}

// undecided reports an invocation whose program argv does not show: it
// may sit in the part the kernel did not capture.
func (inv invocation) undecided() bool {
	return inv.script == elided || inv.module == elided || inv.code == elided ||
		(inv.script == "" && inv.module == "" && inv.code == "")
}

// parseInterpreterArgs reads argv the way the interpreter itself would, so
// that options and their values are never mistaken for the script. argv[0]
// is ignored: it is whatever the caller chose (exec -a).
func parseInterpreterArgs(kind InterpreterKind, argv []string) invocation {
	if len(argv) < 2 {
		if kind == Python && len(argv) == 1 {
			return invocation{stdin: true} // python < file
		}
		return invocation{}
	}
	args := argv[1:]
	switch kind {
	case Python:
		return parsePython(args)
	case Shell:
		return parseShell(args)
	case Perl, Ruby:
		return parsePerlRuby(args)
	case Loader, MuslLoader:
		return parseLoader(args)
	}
	return invocation{}
}

func parsePython(args []string) invocation {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return invocation{script: args[i+1]}
			}
			return invocation{stdin: true}
		}
		if a == "-" {
			return invocation{stdin: true}
		}
		if !strings.HasPrefix(a, "-") {
			return invocation{script: a}
		}
		if strings.HasPrefix(a, "--") {
			if a == "--check-hash-based-pycs" {
				i++
			}
			continue
		}
		// Short options cluster (-Bc code, -Im mod); c and m end the
		// interpreter's options, W and X take a value.
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'c', 'm', 'W', 'X':
				val := a[j+1:]
				if val == "" && i+1 < len(args) {
					i++
					val = args[i]
				}
				switch a[j] {
				case 'c':
					return invocation{code: val}
				case 'm':
					return invocation{module: val}
				}
				j = len(a)
			}
		}
	}
	// No script, no -c, no -m: python reads its program from stdin.
	return invocation{stdin: true}
}

func parseShell(args []string) invocation {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || a == "-":
			if i+1 < len(args) {
				return invocation{script: args[i+1]}
			}
			return invocation{}
		case a == "-o" || a == "+o" || a == "-O" || a == "+O" || a == "--rcfile" || a == "--init-file":
			i++
		case strings.HasPrefix(a, "--"):
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
			// -c: the command string runs its programs through exec,
			// and each of those execs is judged on its own.
			if strings.ContainsRune(a[1:], 'c') {
				return invocation{}
			}
		default:
			return invocation{script: a}
		}
	}
	return invocation{}
}

func parsePerlRuby(args []string) invocation {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return invocation{script: args[i+1]}
			}
			return invocation{}
		case a == "-e" || a == "-E":
			if i+1 < len(args) {
				return invocation{code: args[i+1]}
			}
			return invocation{}
		case a == "-I" || a == "-r" || a == "-C" || a == "-x":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return invocation{script: a}
		}
	}
	return invocation{}
}

// parseLoader reads ld.so's own options (glibc's rtld: --library-path DIR,
// --preload LIST, --audit LIST, --argv0 NAME take a value; musl's take the
// first three of those and --list).
func parseLoader(args []string) invocation {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--library-path" || a == "--preload" || a == "--audit" || a == "--argv0" || a == "--glibc-hwcaps-prepend" || a == "--glibc-hwcaps-mask":
			i++
		case a == "--list" || a == "--verify" || a == "--help" || a == "--version" || a == "--list-tunables" || a == "--list-diagnostics":
			return invocation{} // the loader inspects, it does not run the program
		case a == "--":
			if i+1 < len(args) {
				return invocation{script: args[i+1]}
			}
			return invocation{}
		case strings.HasPrefix(a, "--"):
		default:
			return invocation{script: a}
		}
	}
	return invocation{}
}

var (
	fromImport    = regexp.MustCompile(`(?m)(?:^|[;:])\s*from\s+([A-Za-z_][\w.]*)\s+import\s+\(?\s*([\w\s,*]+)`)
	plainImport   = regexp.MustCompile(`(?m)(?:^|[;:])\s*import\s+([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)`)
	quotedName    = regexp.MustCompile(`(?:run_module|import_module|__import__)\(\s*['"]([A-Za-z_][\w.]*)['"]`)
	scriptPath    = regexp.MustCompile(`(?:run_path|exec\(\s*open|execfile)\(\s*['"]([^'"]+)['"]`)
	consoleScript = regexp.MustCompile(`['"]console_scripts['"]\s*,\s*['"]([\w.-]+)['"]`)
)

// pythonCodeTool finds the tool that Python code starts: an import of a
// tool's entry module (from mitmproxy.tools.main import mitmdump), a module
// named in a string (runpy, importlib, __import__), or a setuptools console
// script entry point. Importing a tool's package for its library parts
// (import mitmproxy.io) is not running the tool.
func (c *Catalog) pythonCodeTool(code string) (*Tool, string) {
	var modules []string
	var names []string
	for _, m := range fromImport.FindAllStringSubmatch(code, -1) {
		modules = append(modules, m[1])
		for _, n := range strings.FieldsFunc(m[2], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			names = append(names, n)
		}
	}
	for _, m := range plainImport.FindAllStringSubmatch(code, -1) {
		for _, mod := range strings.Split(m[1], ",") {
			modules = append(modules, strings.TrimSpace(mod))
		}
	}
	for _, m := range quotedName.FindAllStringSubmatch(code, -1) {
		modules = append(modules, m[1])
	}
	for _, m := range scriptPath.FindAllStringSubmatch(code, -1) {
		if t := c.byName[path.Base(m[1])]; t != nil {
			return t, "runs " + m[1]
		}
	}
	for _, m := range consoleScript.FindAllStringSubmatch(code, -1) {
		if t := c.byName[m[1]]; t != nil && len(t.Modules) > 0 {
			return t, "console_scripts " + m[1]
		}
	}
	seen := map[string]bool{}
	for _, mod := range modules {
		if seen[mod] {
			continue
		}
		seen[mod] = true
		if t := c.moduleTool(mod, code, names); t != nil {
			return t, mod
		}
	}
	return nil, ""
}

// moduleTool returns the tool a module runs: the module itself or one of
// its submodules is in the catalog. Where tools share a module, the entry
// function named in the code decides, else the first tool listed.
func (c *Catalog) moduleTool(module, code string, names []string) *Tool {
	for m := module; m != ""; {
		if tools := c.byModule[m]; len(tools) > 0 {
			if len(tools) == 1 {
				return tools[0]
			}
			for _, t := range tools {
				for _, n := range names {
					if n == t.Entry {
						return t
					}
				}
			}
			for _, t := range tools {
				if re := c.entryCalls[t]; re != nil && re.MatchString(code) {
					return t
				}
			}
			return tools[0]
		}
		i := strings.LastIndexByte(m, '.')
		if i < 0 {
			break
		}
		m = m[:i]
	}
	return nil
}
