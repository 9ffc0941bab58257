// SPDX-License-Identifier: Apache-2.0

// Package argv is the one grammar of interpreter and loader command lines:
// which argument is the program an interpreter (python, sh, perl, ruby) or
// the dynamic loader runs, and which options take a value. Detection reads
// it to find what runs; redaction reads it to find where the program's own
// arguments start. Both must agree: an option value taken for the script
// makes one judge another program than the other redacts.
package argv

import "strings"

// Kind classifies an interpreter by how its arguments name the program it
// runs.
type Kind int

const (
	NotInterpreter Kind = iota
	Python
	Shell
	Perl
	Ruby
	// Loader is glibc's dynamic linker run as a program: ld.so
	// /usr/bin/ettercap execs ld.so, and ettercap never passes through
	// execve.
	Loader
	// MuslLoader is musl's: it ignores LD_TRACE_LOADED_OBJECTS (its ldd is
	// `ld.so --list`), so only its argv says whether it runs the program.
	MuslLoader
	// Node is node.js. The catalog knows no JavaScript tool, so no name is
	// Node to Interpreter and detection never reads node's argv; the
	// origin of a process (a script node runs) does.
	Node
)

// Elided stands for the part of argv the kernel did not capture. It holds
// a NUL, which no real argument can.
const Elided = "\x00elided"

// Invocation is what an interpreter's argv says it will run.
type Invocation struct {
	Script string // the script path (the loader's program), when one is named
	Module string // python -m
	Code   string // python -c, perl/ruby -e
	Stdin  bool   // the program comes on standard input (python - , python < file)
	// At is the index in argv of Script, of -m's or -c's value; len(argv)
	// when argv names nothing.
	At int
}

// Undecided reports an invocation whose program argv does not show: it
// may sit in the part the kernel did not capture.
func (inv Invocation) Undecided() bool {
	return inv.Script == Elided || inv.Module == Elided || inv.Code == Elided ||
		(inv.Script == "" && inv.Module == "" && inv.Code == "")
}

// Parse reads argv the way the interpreter itself would, so that options
// and their values are never mistaken for the script. argv[0] is ignored:
// it is whatever the caller chose (exec -a).
func Parse(kind Kind, argv []string) Invocation {
	if len(argv) < 2 {
		if kind == Python && len(argv) == 1 {
			return Invocation{Stdin: true, At: len(argv)} // python < file
		}
		return Invocation{At: len(argv)}
	}
	var inv Invocation
	var at int
	switch kind {
	case Python:
		inv, at = parsePython(argv[1:])
	case Shell:
		inv, at = parseShell(argv[1:])
	case Perl, Ruby:
		inv, at = parsePerlRuby(argv[1:])
	case Loader:
		inv, at = parseGlibcLoader(argv[1:])
	case MuslLoader:
		inv, at = parseMuslLoader(argv[1:])
	case Node:
		inv, at = parseNode(argv[1:])
	default:
		return Invocation{At: len(argv)}
	}
	inv.At = at + 1
	return inv
}

// script is an invocation of the script args[i], and its index.
func script(args []string, i int) (Invocation, int) {
	return Invocation{Script: args[i]}, i
}

// pythonValueShort are CPython's short options that take a value (attached
// or as the next argument): c and m end the interpreter's options.
const pythonValueShort = "cmWX"

// pythonValueLong are CPython's long options that take a value as the next
// argument (Modules/getopt.c: --check-hash-based-pycs MODE); the others
// (--help, --version, --help-env, --help-xoptions, --help-all) take none.
var pythonValueLong = []string{"--check-hash-based-pycs"}

// Option is one of an interpreter's options before its program, as the
// interpreter reads it: a cluster is one Option per letter ("-IW x" is -I,
// then -W with the value x), and a value is attached or the next argument.
type Option struct {
	Name  string // "-W", "--check-hash-based-pycs"
	Value string // "" for an option that takes none
}

// PythonOptions returns python's own options in argv, up to the program
// (its script, -c's code, -m's module, "-" or "--"). argv[0] is ignored.
func PythonOptions(argv []string) []Option {
	if len(argv) < 2 {
		return nil
	}
	var opts []Option
	walkPython(argv[1:], func(o Option, _ int) bool {
		opts = append(opts, o)
		return o.Name != "-c" && o.Name != "-m" // what follows is the program's
	})
	return opts
}

// walkPython reads args (argv without argv[0]) as CPython's getopt does,
// handing each option to opt with the index of the argument that holds
// its value (or the option itself), until opt returns false. It returns
// the index of the first argument that is not an option: "--", "-" or
// the script; len(args) when there is none or opt stopped the walk.
func walkPython(args []string, opt func(o Option, at int) bool) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			return i
		}
		if strings.HasPrefix(a, "--") {
			o := Option{Name: a}
			if contains(pythonValueLong, a) {
				i++
				if i < len(args) {
					o.Value = args[i]
				}
			}
			if !opt(o, min(i, len(args)-1)) {
				return len(args)
			}
			continue
		}
		// Short options cluster (-Bc code, -Im mod); a letter that takes a
		// value takes the rest of the argument, or the next one.
		for j := 1; j < len(a); j++ {
			o := Option{Name: "-" + a[j:j+1]}
			at := i
			if strings.IndexByte(pythonValueShort, a[j]) >= 0 {
				o.Value = a[j+1:]
				if o.Value == "" && i+1 < len(args) {
					i++
					o.Value, at = args[i], i
				}
				j = len(a)
			}
			if !opt(o, at) {
				return len(args)
			}
		}
	}
	return len(args)
}

func parsePython(args []string) (Invocation, int) {
	var inv Invocation
	at := -1
	end := walkPython(args, func(o Option, i int) bool {
		switch o.Name {
		case "-c": // c and m end the interpreter's options
			inv, at = Invocation{Code: o.Value}, i
		case "-m":
			inv, at = Invocation{Module: o.Value}, i
		}
		return at < 0
	})
	switch {
	case at >= 0:
		return inv, at
	case end == len(args):
		// No script, no -c, no -m: python reads its program from stdin.
		return Invocation{Stdin: true}, len(args)
	case args[end] == "-":
		return Invocation{Stdin: true}, end
	case args[end] == "--":
		if end+1 < len(args) {
			return script(args, end+1)
		}
		return Invocation{Stdin: true}, len(args)
	}
	return script(args, end)
}

func parseShell(args []string) (Invocation, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || a == "-":
			if i+1 < len(args) {
				return script(args, i+1)
			}
			return Invocation{}, len(args)
		case a == "-o" || a == "+o" || a == "-O" || a == "+O" || a == "--rcfile" || a == "--init-file":
			i++
		case strings.HasPrefix(a, "--"):
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
			// -c: the command string runs its programs through exec,
			// and each of those execs is judged on its own.
			if strings.ContainsRune(a[1:], 'c') {
				return Invocation{}, len(args)
			}
		default:
			return script(args, i)
		}
	}
	return Invocation{}, len(args)
}

func parsePerlRuby(args []string) (Invocation, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return script(args, i+1)
			}
			return Invocation{}, len(args)
		case a == "-e" || a == "-E":
			if i+1 < len(args) {
				return Invocation{Code: args[i+1]}, i + 1
			}
			return Invocation{}, len(args)
		case a == "-I" || a == "-r" || a == "-C" || a == "-x":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return script(args, i)
		}
	}
	return Invocation{}, len(args)
}

// glibcValueOptions are the options of glibc's rtld (elf/rtld.c, dl_main)
// that take the next argument as their value, over the versions that have
// them: --library-path, --inhibit-rpath and --audit (all), --preload
// (2.30), --argv0 (2.33), --glibc-hwcaps-prepend and --glibc-hwcaps-mask
// (2.33). rtld takes no "--opt=value" form.
var glibcValueOptions = []string{
	"--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
	"--glibc-hwcaps-prepend", "--glibc-hwcaps-mask",
}

// glibcInspects are rtld's options that make it list, verify or print and
// run nothing.
var glibcInspects = []string{"--list", "--verify", "--help", "--version", "--list-tunables", "--list-diagnostics"}

// parseGlibcLoader reads rtld's options as dl_main does: one option per
// argument while the argument starts with "--". Since 2.33 any other
// "--" argument (even "--" itself) is a usage error and nothing runs;
// before, the first unknown one ended the options and was the program's
// path. It is taken as the program: judging a file that does not exist
// costs nothing, and on an older glibc it is what runs.
func parseGlibcLoader(args []string) (Invocation, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case contains(glibcValueOptions, a):
			if i+1 >= len(args) {
				return script(args, i) // no value: older rtld takes it for the program
			}
			i++
		case contains(glibcInspects, a):
			return Invocation{}, len(args) // the loader inspects, it does not run the program
		case a == "--inhibit-cache":
		default:
			return script(args, i)
		}
	}
	return Invocation{}, len(args)
}

// musl's ldso/dynlink.c (__dls3) reads "--" arguments: "--" ends them,
// --library-path, --preload and --argv0 take a value as "--opt=value" or
// the next argument, --list lists the libraries and runs nothing, and any
// other option stops the loader.
var muslValueOptions = []string{"--library-path", "--preload", "--argv0"}

func parseMuslLoader(args []string) (Invocation, int) {
	list := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			if list {
				return Invocation{}, len(args)
			}
			return script(args, i)
		}
		if a == "--" {
			if i+1 < len(args) && !list {
				return script(args, i+1)
			}
			return Invocation{}, len(args)
		}
		name, _, attached := strings.Cut(a, "=")
		switch {
		case name == "--list" && !attached:
			list = true
		case contains(muslValueOptions, name):
			if !attached {
				i++
			}
		default:
			return Invocation{}, len(args) // musl refuses the option
		}
	}
	return Invocation{}, len(args)
}

// nodeValueOptions are node's options that take the next argument as
// their value (node --help): the modules to preload, the conditions.
var nodeValueOptions = []string{"-r", "--require", "--import", "--loader", "-C", "--conditions"}

// parseNode reads node's options: -e and -p run code given as their
// value, "-" reads the program from standard input.
func parseNode(args []string) (Invocation, int) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-e" || a == "--eval" || a == "-p" || a == "--print":
			if i+1 < len(args) {
				return Invocation{Code: args[i+1]}, i + 1
			}
			return Invocation{}, len(args)
		case a == "-":
			return Invocation{Stdin: true}, i
		case contains(nodeValueOptions, a):
			i++
		case a == "--":
			if i+1 < len(args) {
				return script(args, i+1)
			}
			return Invocation{}, len(args)
		case strings.HasPrefix(a, "-"):
		default:
			return script(args, i)
		}
	}
	return Invocation{}, len(args)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
