// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"

	"github.com/mitmexec/mitmexec/internal/argv"
	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
)

// Files is how the rule reads files it must look into. The receiver passes
// the host's file system (internal/filehash); tests pass a fake.
type Files interface {
	// ExecSHA256 hashes the file the exec loaded, verified to be the file
	// identity the kernel reported. It fails when the file is gone.
	ExecSHA256(e *event.Exec) (string, error)
	// ExecELF reads the structure of the file the exec loaded, verified
	// like ExecSHA256.
	ExecELF(e *event.Exec) (elfid.Identity, error)
	// ProgramELF reads the structure of a program the exec names (the
	// dynamic loader's argument), resolved as the process sees the path.
	ProgramELF(e *event.Exec, path string) (elfid.Identity, error)
	// Script returns the SHA-256 and the first bytes of a script the exec
	// names, resolved as the process sees the path. sum is "" for a script
	// too large to hash.
	Script(e *event.Exec, path string) (sum string, head []byte, err error)
	// Stdin is Script for the file on the process's standard input (python
	// < tool); a pipe or a terminal is an error.
	Stdin(e *event.Exec) (sum string, head []byte, err error)
	// Cmdline reads the whole argv of the exec'd process, while it lives.
	Cmdline(e *event.Exec) ([]string, error)
	// Environ reads the environment of the exec'd process, while it lives.
	Environ(e *event.Exec) ([]string, error)
	// ReadDir lists at most max names of a directory as the process sees
	// it (relative to its working directory, or absolute in its root); a
	// missing directory is an fs.ErrNotExist.
	ReadDir(e *event.Exec, dir string, max int) ([]string, error)
}

// Kernel is the kernel's half of the one verdict cache: what the rule
// learns about a file identity is written there at once, so that the exec
// hook decides the next exec of that file alone (internal/tracer; tests
// pass a fake).
type Kernel interface {
	PutVerdict(id event.FileID, v event.Verdict) error
	PutFingerprint(fp event.Fingerprint, v event.Verdict) error
}

// Result is the rule's answer for one exec.
type Result struct {
	Detection Detection
	Detected  bool
	// Interpreter: the loaded file runs programs it is given (python, sh,
	// the loader): what it opens later may still name a tool.
	Interpreter bool
	// SHA256 of the loaded file when the rule computed it.
	SHA256 string
}

type inodeKey struct {
	dev uint32
	ino uint64
}

type identity struct {
	kind   uint8
	interp InterpreterKind
	// byName: nothing in the file's content said what it is, only its
	// name says interpreter. The kernel then keeps no shortcut for it
	// (sh -c, ldd): every exec of it comes up and is judged here.
	byName bool
	tool   *Tool
	match  Match
	detail string
	sum    string
}

// Rule decides whether an exec is a MitM tool. The catalog is fixed; what
// the host adds at start (its installed builds and interpreters) and the
// verdicts on file identities live here, under one lock, because judges run
// concurrently.
type Rule struct {
	cat     *Catalog
	files   Files
	kernel  Kernel
	actions map[string]uint8 // the exec hook's action per tool name; alert when absent

	kernelErrors atomic.Uint64
	unread       atomic.Uint64

	mu                  sync.Mutex
	fingerprints        map[event.Fingerprint]*Tool
	known               *bounded.Map[event.FileID, identity] // two generations, like the kernel's LRU map of the same capacity
	installed           map[inodeKey]*Tool                   // installed tool builds by inode, whatever their change time
	sums                map[string]*Tool                     // SHA-256 of installed tool builds and scripts
	sections            map[string]*Tool                     // .text/.rodata hashes of installed tool builds
	interpBySum         map[string]InterpreterKind
	interpByFingerprint map[event.Fingerprint]InterpreterKind
	interpBySection     map[string]InterpreterKind // .text/.rodata hashes of installed interpreters
	compilers           map[string]bool            // SHA-256 of the host's byte-compiling scripts
}

// NewRule returns a rule over the catalog, writing what it learns into
// kernel. actions says which tools the exec hook kills on its own (by tool
// name; the others it reports).
func NewRule(cat *Catalog, files Files, kernel Kernel, actions map[string]uint8) *Rule {
	return &Rule{
		cat: cat, files: files, kernel: kernel, actions: actions,
		fingerprints:        map[event.Fingerprint]*Tool{},
		known:               bounded.New[event.FileID, identity](KnownIdentities),
		installed:           map[inodeKey]*Tool{},
		sums:                map[string]*Tool{},
		sections:            map[string]*Tool{},
		interpBySum:         map[string]InterpreterKind{},
		interpByFingerprint: map[event.Fingerprint]InterpreterKind{},
		interpBySection:     map[string]InterpreterKind{},
	}
}

// KernelErrors counts verdicts the kernel refused to store.
func (r *Rule) KernelErrors() uint64 { return r.kernelErrors.Load() }

// Unread counts first sights whose file could not be read (gone, renamed,
// refused, cut by a time bound): judged by what the kernel sent, and not
// cached, so that the next exec of the file is judged again.
func (r *Rule) Unread() uint64 { return r.unread.Load() }

// ToolVerdict is the kernel's verdict for a tool's files and names.
func (r *Rule) ToolVerdict(t *Tool) event.Verdict {
	return event.Verdict{Kind: event.VerdictTool, ToolID: t.ID, Action: r.actions[t.Name]}
}

// verdict is the kernel's verdict on an identity.
func (r *Rule) verdict(id identity) event.Verdict {
	switch {
	case id.tool != nil:
		return r.ToolVerdict(id.tool)
	case id.kind == event.VerdictInterpreter && id.byName:
		return event.Verdict{Kind: event.VerdictInterpreter}
	case id.kind == event.VerdictInterpreter:
		return event.Verdict{Kind: KernelVerdict(id.interp)}
	}
	return event.Verdict{Kind: id.kind}
}

// remember caches an identity on both sides; r.mu is held.
func (r *Rule) remember(f event.FileID, id identity) error {
	r.known.Put(f, id)
	if r.kernel == nil {
		return nil
	}
	if err := r.kernel.PutVerdict(f, r.verdict(id)); err != nil {
		r.kernelErrors.Add(1)
		return fmt.Errorf("kernel verdict for inode %d: %w", f.Ino, err)
	}
	return nil
}

// KnownIdentities is how many file identities the rule remembers: as many
// as the kernel's verdict map holds, so that a file the kernel forgot and
// sends up again is answered from memory, without reading it again.
const KnownIdentities = 65536

// KernelVerdict is the verdict kind the kernel keeps for an interpreter:
// shells and the loader have cases the kernel decides alone.
func KernelVerdict(k InterpreterKind) uint8 {
	switch k {
	case Shell:
		return event.VerdictShell
	case Loader:
		return event.VerdictLoader
	}
	// MuslLoader too: the kernel's LD_TRACE_LOADED_OBJECTS shortcut is
	// glibc's behaviour, so every exec of musl's loader goes up.
	return event.VerdictInterpreter
}

// AddInstalled records a tool build found on the host: its identity, its
// content hash, its structure and, for binaries, its fingerprint.
func (r *Rule) AddInstalled(t *Tool, id event.FileID, sum string, fp *event.Fingerprint, structure *elfid.Identity) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.remember(id, identity{kind: event.VerdictTool, tool: t, match: MatchInode})
	r.installed[inodeKey{id.Dev, id.Ino}] = t
	if sum != "" {
		r.sums[sum] = t
	}
	if fp != nil {
		r.fingerprints[*fp] = t
		if r.kernel != nil {
			if ferr := r.kernel.PutFingerprint(*fp, r.ToolVerdict(t)); ferr != nil {
				r.kernelErrors.Add(1)
				err = errors.Join(err, fmt.Errorf("kernel fingerprint: %w", ferr))
			}
		}
	}
	if structure != nil {
		for _, s := range structure.Code {
			r.sections[s.SHA256] = t
		}
	}
	return err
}

// AddInterpreter records an interpreter found on the host, with its hash,
// fingerprint and structure so that a renamed or patched copy of it is
// still read as one.
func (r *Rule) AddInterpreter(kind InterpreterKind, id event.FileID, sum string, fp *event.Fingerprint, structure *elfid.Identity) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.remember(id, identity{kind: event.VerdictInterpreter, interp: kind, sum: sum})
	if sum != "" {
		r.interpBySum[sum] = kind
	}
	if fp != nil {
		r.interpByFingerprint[*fp] = kind
	}
	if structure != nil {
		for _, s := range structure.Code {
			r.interpBySection[s.SHA256] = kind
		}
	}
	return err
}

// interpreterBy names the installed interpreter a file's content or code
// is: its hash, else one of its code or constant-data sections (a copy
// with a header byte changed, bytes appended, a section added).
func (r *Rule) interpreterBy(sum string, st *elfid.Identity) InterpreterKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.interpBySum[sum]; ok && sum != "" {
		return k
	}
	if st != nil {
		for _, s := range st.Code {
			if k, ok := r.interpBySection[s.SHA256]; ok {
				return k
			}
		}
	}
	return NotInterpreter
}

func (r *Rule) bySum(sum string) *Tool {
	if sum == "" {
		return nil
	}
	if t := r.cat.BySHA256(sum); t != nil {
		return t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sums[sum]
}

// byStructure matches an ELF structure against the catalog's signatures
// and the installed builds' sections.
func (r *Rule) byStructure(id *elfid.Identity) (*Tool, string) {
	if t, what := r.cat.StructureTool(id); t != nil {
		return t, what
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range id.Code {
		if t := r.sections[s.SHA256]; t != nil {
			return t, "section " + s.Name + " sha256 " + s.SHA256 + " of the installed build"
		}
	}
	return nil, ""
}

// Judge evaluates one exec. The order matters: the loaded file itself
// first (what it is: a tool's name, its identity, its content; an
// interpreter's name only where these said nothing), then what it runs (a
// script behind a shebang, an interpreter's arguments), then the name it
// was invoked by. argv[0] and comm never decide anything: the caller sets
// them.
func (r *Rule) Judge(e *event.Exec) Result {
	id := r.identityOf(e)
	res := Result{SHA256: id.sum, Interpreter: id.kind == event.VerdictInterpreter}
	if id.tool != nil {
		match, detail := id.match, id.detail
		switch {
		case r.cat.byName[e.Name] == id.tool:
			match, detail = MatchExecutableName, e.Name
		case match == MatchExecutableName:
			// The identity was first judged under the tool's name; this
			// exec reached the same inode under another one: a hard link.
			match, detail = MatchInode, ""
		}
		if detail == "" {
			detail = e.ExePath
		}
		res.Detection = Detection{Tool: id.tool, Match: match, Detail: detail}
		res.Detected = true
		return res
	}
	// What the file is decides how its argv reads; its name only where
	// its content said nothing (identityOf).
	kind := id.interp
	// A shebang script runs in the language of the interpreter the kernel
	// loaded for it.
	if e.Has(event.FlagScript) && e.Filename != "" {
		if d, ok := r.script(e, e.Filename, kind); ok {
			res.Detection, res.Detected = d, true
			return res
		}
	}
	if kind != NotInterpreter {
		// ldd's listing is taken from a loader known by what it is only:
		// a file merely named like the loader may run what it is given
		lists := kind == Loader && e.Has(event.FlagLoaderLists) && !id.byName
		if d, ok := r.interpreter(e, kind, lists); ok {
			res.Detection, res.Detected = d, true
			return res
		}
	}
	if invoked := path.Base(e.Filename); invoked != e.Name && !e.Has(event.FlagScript) {
		if t := r.cat.byName[invoked]; t != nil {
			res.Detection = Detection{Tool: t, Match: MatchInvokedName, Detail: e.Filename}
			res.Detected = true
			return res
		}
	}
	return res
}

// interpreter judges what an interpreter's argv says it runs. An argv the
// kernel cut is read whole from the process where it still lives, and is
// never taken to mean "no program".
func (r *Rule) interpreter(e *event.Exec, kind InterpreterKind, lists bool) (Detection, bool) {
	args, complete := argvOf(e)
	d, ok, undecided := r.runs(e, kind, args, 0, lists)
	if !ok && undecided && !complete && r.files != nil {
		if full, err := r.files.Cmdline(e); err == nil && len(full) > 0 {
			d, ok, _ = r.runs(e, kind, full, 0, lists)
		}
	}
	return d, ok
}

// maxLoaderDepth bounds loaders run by loaders (ld.so ld.so ... PROGRAM).
const maxLoaderDepth = 4

// runs judges what args, the argv of an interpreter of kind, runs. depth
// counts the loaders in front of it. undecided says the program may sit
// in a part of argv the kernel did not capture.
func (r *Rule) runs(e *event.Exec, kind InterpreterKind, args []string, depth int, lists bool) (d Detection, ok, undecided bool) {
	inv := argv.Parse(kind, args)
	undecided = inv.Undecided()
	named := inv.Script != "" && inv.Script != argv.Elided
	switch {
	case inv.Module != "" && kind == Python:
		if t := r.cat.moduleTool(inv.Module, "", nil); t != nil {
			return Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "-m " + inv.Module}, true, undecided
		}
	case inv.Code != "" && kind == Python:
		if t, what := r.cat.pythonCodeTool(inv.Code); t != nil {
			return Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "-c " + what}, true, undecided
		}
	case inv.Stdin && kind == Python:
		d, ok = r.stdin(e)
	case named && lists:
		return Detection{}, false, false // ldd: glibc's loader lists the libraries and runs nothing
	case named && (kind == Loader || kind == MuslLoader):
		return r.loaded(e, args[inv.At:], depth)
	case named:
		d, ok = r.script(e, inv.Script, kind)
	}
	return d, ok, undecided
}

// argvOf returns argv as far as the kernel captured it, with the middle
// it left out (FlagArgsElided) as one elided argument, and whether it is
// the whole argv.
func argvOf(e *event.Exec) ([]string, bool) {
	c := argv.Captured{Head: e.Args, Tail: e.ArgsTail, Elided: e.Has(event.FlagArgsElided)}
	return c.Read(), !c.Elided && !e.Has(event.FlagArgsTruncated)
}

// script judges a script by its name, then by its content: a renamed copy
// of a tool's script hashes the same, and a Python script of one's own that
// starts the tool's entry point imports it. The content is read as the
// language that runs it: Python lines in a shell script are text, not a run.
func (r *Rule) script(e *event.Exec, p string, lang InterpreterKind) (Detection, bool) {
	if t := r.cat.byName[path.Base(p)]; t != nil {
		return Detection{Tool: t, Match: MatchScript, Detail: p, Script: p}, true
	}
	if r.files == nil {
		return Detection{}, false
	}
	sum, head, err := r.files.Script(e, p)
	if err != nil {
		return Detection{}, false
	}
	if t := r.bySum(sum); t != nil {
		return Detection{Tool: t, Match: MatchContentHash, Detail: p + " sha256 " + sum, Script: p}, true
	}
	if lang != Python {
		return Detection{}, false
	}
	if t, what := r.cat.pythonCodeTool(string(head)); t != nil {
		return Detection{Tool: t, Match: MatchScript, Detail: p + " imports " + what, Script: p}, true
	}
	return Detection{}, false
}

// stdin judges a program fed to the interpreter from a file on its
// standard input, by content: it has no name of its own.
func (r *Rule) stdin(e *event.Exec) (Detection, bool) {
	if r.files == nil {
		return Detection{}, false
	}
	sum, head, err := r.files.Stdin(e)
	if err != nil {
		return Detection{}, false
	}
	if t := r.bySum(sum); t != nil {
		return Detection{Tool: t, Match: MatchContentHash, Detail: "stdin sha256 " + sum}, true
	}
	if t, what := r.cat.pythonCodeTool(string(head)); t != nil {
		return Detection{Tool: t, Match: MatchScript, Detail: "stdin imports " + what}, true
	}
	return Detection{}, false
}

// loaded judges the program the dynamic linker was asked to load, args
// being its argv from the program on: as if it had been exec'd, by its
// name, then its content and structure, and when it is an interpreter by
// what its own arguments run.
func (r *Rule) loaded(e *event.Exec, args []string, depth int) (Detection, bool, bool) {
	p := args[0]
	if t := r.cat.byExec[path.Base(p)]; t != nil {
		return Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "loader " + p, Script: p}, true, false
	}
	kind := NotInterpreter
	if r.files != nil {
		sum, _, err := r.files.Script(e, p)
		if err == nil {
			if t := r.bySum(sum); t != nil {
				return Detection{Tool: t, Match: MatchContentHash, Detail: "loader " + p + " sha256 " + sum, Script: p}, true, false
			}
		}
		if st, err := r.files.ProgramELF(e, p); err == nil {
			if t, what := r.byStructure(&st); t != nil {
				return Detection{Tool: t, Match: MatchStructure, Detail: "loader " + p + ": " + what, Script: p}, true, false
			}
			kind = r.interpreterBy(sum, &st)
			if kind == NotInterpreter && pythonByStructure(&st) {
				kind = Python
			}
		} else {
			kind = r.interpreterBy(sum, nil)
		}
	}
	if kind == NotInterpreter {
		kind = r.cat.Interpreter(path.Base(p))
	}
	if kind == NotInterpreter || depth+1 >= maxLoaderDepth {
		return Detection{}, false, false
	}
	return r.runs(e, kind, args, depth+1, false)
}

// programKind is the interpreter a program named in argv is, by its
// content or structure, else by its name.
func (r *Rule) programKind(e *event.Exec, p string) InterpreterKind {
	if r.files != nil {
		sum, _, _ := r.files.Script(e, p)
		var st *elfid.Identity
		if s, err := r.files.ProgramELF(e, p); err == nil {
			st = &s
		}
		if k := r.interpreterBy(sum, st); k != NotInterpreter {
			return k
		}
		if pythonByStructure(st) {
			return Python
		}
	}
	return r.cat.Interpreter(path.Base(p))
}

// IsPython reports whether a process runs Python: the file it exec'd is a
// Python interpreter (by identity: a renamed or patched copy of the host's
// python; by name only where its content said nothing), or it exec'd the
// dynamic loader and the loader runs Python.
func (r *Rule) IsPython(e *event.Exec) bool {
	r.mu.Lock()
	id, ok := r.known.Get(e.File)
	r.mu.Unlock()
	kind := NotInterpreter
	switch {
	case ok && id.kind == event.VerdictInterpreter:
		kind = id.interp
	case !ok:
		kind = r.cat.Interpreter(e.Name)
	}
	args, _ := argvOf(e)
	for depth := 0; (kind == Loader || kind == MuslLoader) && depth < maxLoaderDepth; depth++ {
		inv := argv.Parse(kind, args)
		if inv.Script == "" || inv.Script == argv.Elided {
			return false
		}
		args = args[inv.At:]
		kind = r.programKind(e, args[0])
	}
	return kind == Python
}

// JudgeModule names the tool whose module a process opened (a fanotify
// mark on the module's files), whatever its argv said.
func (r *Rule) JudgeModule(module, file string) (Detection, bool) {
	if t := r.cat.moduleTool(module, "", nil); t != nil {
		return Detection{Tool: t, Match: MatchModuleLoad, Detail: module + " (" + file + ")"}, true
	}
	return Detection{}, false
}
