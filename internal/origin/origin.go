// SPDX-License-Identifier: Apache-2.0

// Package origin tells which code started a process: the package manager
// script, the build, the test or the script file nearest to it up the
// process tree (docs/record.md, "Origin"). The ancestor chain is the
// kernel's (the exec record); what each ancestor was doing is read from
// its /proc entry with the same pinned, bounded, start-time-checked reads
// as the CI context, keeping only the variables allow-listed here. The
// environment and the command line are the process's own word: a process
// can name any package it likes, so an origin is a lead for a reviewer,
// never a reason to allow anything.
package origin

import (
	"strings"
	"unicode/utf8"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/record"
)

// Kind is what sort of code the origin is.
type Kind string

const (
	KindNone        Kind = ""
	KindPackageJS   Kind = "package_script"     // an npm, yarn or pnpm lifecycle or run script
	KindPythonBuild Kind = "python_build"       // a setuptools or PEP 517 build of a distribution
	KindPytest      Kind = "pytest"             // a pytest test
	KindGoTest      Kind = "go_test"            // a Go test binary
	KindCargoBuild  Kind = "cargo_build_script" // a Cargo build script (build.rs)
	KindCargo       Kind = "cargo"              // a binary Cargo runs (cargo run, cargo test)
	KindMake        Kind = "make"               // a make recipe
	KindScript      Kind = "script"             // the nearest script file an interpreter runs
)

// Origin is the code nearest up the process tree that started the tool.
// An empty field has nothing true to say and is left off the record.
type Origin struct {
	Kind           Kind
	Manager        string // npm, yarn, pnpm, pip, cargo
	PackageName    string
	PackageVersion string
	// Dependency is set for package scripts: true when the package lies
	// under node_modules (a dependency), false for the project itself.
	Dependency     *bool
	LifecycleEvent string // npm_lifecycle_event: postinstall, test, build...
	Test           string // pytest node id, or a Go test binary's package
	MakeTarget     string
	File           string // the manifest, test file, package directory or script
	ProjectDir     string // where the package manager was started (INIT_CWD)
	PID            uint32 // the process whose /proc entry named the origin
	Depth          int    // 0: the tool's process itself; n: its n-th ancestor
}

// KV is one attribute; Value is a string, an int64 or a bool.
type KV struct {
	Key   string
	Value any
}

// Attributes returns the attributes that have something to say, in the
// contract's order; none when no origin was found.
func (o Origin) Attributes() []KV {
	if o.Kind == KindNone {
		return nil
	}
	out := []KV{{record.AttrOriginKind, string(o.Kind)}}
	str := func(k, v string) {
		if v != "" {
			out = append(out, KV{k, v})
		}
	}
	str(record.AttrOriginManager, o.Manager)
	str(record.AttrOriginPackageName, o.PackageName)
	str(record.AttrOriginPackageVersion, o.PackageVersion)
	if o.Dependency != nil {
		out = append(out, KV{record.AttrOriginDependency, *o.Dependency})
	}
	str(record.AttrOriginLifecycleEvent, o.LifecycleEvent)
	str(record.AttrOriginTest, o.Test)
	str(record.AttrOriginMakeTarget, o.MakeTarget)
	str(record.AttrOriginFile, o.File)
	str(record.AttrOriginProjectDir, o.ProjectDir)
	out = append(out, KV{record.AttrOriginPID, int64(o.PID)}, KV{record.AttrOriginDepth, int64(o.Depth)})
	return out
}

// Reader reads what the walk needs of one process, each read checking the
// process still is the one that started at startBootNs. procReader is the
// real one; tests give a fake.
type Reader interface {
	Environ(pid uint32, startBootNs uint64) (map[string]string, error)
	Cmdline(pid uint32, startBootNs uint64) ([]string, error)
	Cwd(pid uint32, startBootNs uint64) (string, error)
	// ReadFile reads a small file named relative to the process's working
	// directory, as the process sees it.
	ReadFile(pid uint32, startBootNs uint64, name string) ([]byte, error)
	// Parents returns the process's ancestors from the process table, for
	// a process the kernel sent no chain of.
	Parents(pid uint32, startBootNs uint64) []event.Ancestor
}

// InterpreterFunc classifies an executable's base name (detect.Catalog's
// Interpreter) and returns the script file its argv runs, if any.
type InterpreterFunc func(argv []string) (script string, isInterpreter bool)

// Result is what Lookup found.
type Result struct {
	Origin Origin
	// Gone counts the processes of the chain that had exited (or whose pid
	// had been reused) before they could be read. With no origin found and
	// Gone > 0, the origin may have been among them: the record says
	// nothing, and the receiver counts it.
	Gone int
}

// entry is one process of the chain as read.
type entry struct {
	pid   uint32
	start uint64
	depth int
	env   map[string]string
	args  []string
}

// Lookup walks from the tool's process (pid, startBootNs) up its kernel
// ancestry to the nearest origin. Ancestors that had exited before the
// exec, and pid 1 (init or a container's entrypoint), are skipped. With no
// kernel chain (a process that started before the collector, seen opening
// a tool's module) the process table serves.
func Lookup(r Reader, interp InterpreterFunc, pid uint32, startBootNs uint64, ancestors []event.Ancestor) Result {
	if len(ancestors) == 0 {
		ancestors = r.Parents(pid, startBootNs)
	}
	chain, gone := readChain(r, pid, startBootNs, ancestors)
	res := Result{Gone: gone}
	for i := range chain {
		var next *entry
		if i+1 < len(chain) {
			next = &chain[i+1]
		}
		if o, ok := classify(r, &chain[i], next); ok {
			res.Origin = o
			return res
		}
	}
	for i := range chain {
		if chain[i].depth == 0 {
			continue // the tool's own script is the tool, not its origin
		}
		if o, ok := scriptOrigin(r, interp, &chain[i]); ok {
			res.Origin = o
			return res
		}
	}
	return res
}

func readChain(r Reader, pid uint32, start uint64, ancestors []event.Ancestor) ([]entry, int) {
	type proc struct {
		pid   uint32
		start uint64
		depth int
	}
	procs := []proc{{pid, start, 0}}
	for i, a := range ancestors {
		if a.Exited || a.PID <= 1 {
			continue
		}
		procs = append(procs, proc{a.PID, a.StartBootTime, i + 1})
	}
	var chain []entry
	gone := 0
	for _, p := range procs {
		args, err := r.Cmdline(p.pid, p.start)
		if err != nil || len(args) == 0 {
			gone++
			continue
		}
		env, err := r.Environ(p.pid, p.start)
		if err != nil {
			gone++
			continue
		}
		chain = append(chain, entry{pid: p.pid, start: p.start, depth: p.depth, env: env, args: args})
	}
	return chain, gone
}

// maxField bounds one value taken from a command line or a file; the
// environment's values are bounded by the read (internal/cicd drops a
// value over 2 KiB). A field cut by the bound ends in "…".
const maxField = 1024

// clean bounds s and escapes what a reader's terminal or a Markdown
// renderer would act on: control characters and invalid UTF-8 become \xNN.
func clean(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if b.Len() >= maxField {
			b.WriteString("…")
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			for _, c := range []byte(s[i : i+n]) {
				b.WriteString(`\x`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
