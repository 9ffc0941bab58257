package detect

import (
	"path"
	"sync"

	"github.com/mitmexec/mitmexec/internal/event"
)

// Files is how the rule reads files it must look into. The receiver passes
// the host's file system (internal/filehash); tests pass a fake.
type Files interface {
	// ExecSHA256 hashes the file the exec loaded, verified to be the file
	// identity the kernel reported. It fails when the file is gone.
	ExecSHA256(e *event.Exec) (string, error)
	// Script returns the SHA-256 and the first bytes of a script the exec
	// names, resolved against the process's working directory.
	Script(e *event.Exec, path string) (sum string, head []byte, err error)
	// Stdin is Script for the file on the process's standard input (python
	// < tool); a pipe or a terminal is an error.
	Stdin(e *event.Exec) (sum string, head []byte, err error)
}

// Result is the rule's answer for one exec.
type Result struct {
	Detection Detection
	Detected  bool
	// Identity is the verdict on the loaded file alone, to be cached in the
	// kernel for e.File when NewIdentity is set.
	Identity    event.Verdict
	NewIdentity bool
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
	tool   *Tool
	match  Match
	sum    string
}

// Rule decides whether an exec is a MitM tool. It keeps its own cache of
// file identities, the user-space twin of the kernel's verdict map.
type Rule struct {
	cat                 *Catalog
	files               Files
	mu                  sync.Mutex
	fingerprints        map[event.Fingerprint]*Tool
	known               map[event.FileID]identity
	installed           map[inodeKey]*Tool // installed tool builds by inode, whatever their change time
	interpBySum         map[string]InterpreterKind
	interpByFingerprint map[event.Fingerprint]InterpreterKind
	maxKnown            int
	actionFor           func(*Tool) uint8
}

// NewRule returns a rule over the catalog. actionFor gives the kernel action
// for a tool (nil: alert).
func NewRule(cat *Catalog, files Files, actionFor func(*Tool) uint8) *Rule {
	if actionFor == nil {
		actionFor = func(*Tool) uint8 { return event.ActionAlert }
	}
	return &Rule{
		cat: cat, files: files, actionFor: actionFor,
		fingerprints:        map[event.Fingerprint]*Tool{},
		known:               map[event.FileID]identity{},
		installed:           map[inodeKey]*Tool{},
		interpBySum:         map[string]InterpreterKind{},
		interpByFingerprint: map[event.Fingerprint]InterpreterKind{},
		maxKnown:            65536,
	}
}

// KernelVerdict is the verdict kind the kernel keeps for an interpreter:
// shells and the loader have cases the kernel decides alone.
func KernelVerdict(k InterpreterKind) uint8 {
	switch k {
	case Shell:
		return event.VerdictShell
	case Loader:
		return event.VerdictLoader
	}
	return event.VerdictInterpreter
}

// Catalog returns the rule's catalog.
func (r *Rule) Catalog() *Catalog { return r.cat }

// AddInstalled records a tool build found on the host: its identity, its
// content hash and, for binaries, its fingerprint.
func (r *Rule) AddInstalled(t *Tool, id event.FileID, sum string, fp *event.Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known[id] = identity{kind: event.VerdictTool, tool: t, match: MatchInode, sum: sum}
	r.installed[inodeKey{id.Dev, id.Ino}] = t
	if sum != "" {
		r.cat.AddSHA256(t, sum)
	}
	if fp != nil {
		r.fingerprints[*fp] = t
	}
}

// AddInterpreter records an interpreter found on the host, with its hash
// and fingerprint so that a renamed copy of it is still read as one.
func (r *Rule) AddInterpreter(kind InterpreterKind, id event.FileID, sum string, fp *event.Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known[id] = identity{kind: event.VerdictInterpreter, interp: kind, sum: sum}
	if sum != "" {
		r.interpBySum[sum] = kind
	}
	if fp != nil {
		r.interpByFingerprint[*fp] = kind
	}
}

// Judge evaluates one exec. The order matters: the loaded file itself
// first (its name, its identity, its content), then what it runs (a script
// behind a shebang, an interpreter's arguments), then the name it was
// invoked by. argv[0] and comm never decide anything: the caller sets them.
func (r *Rule) Judge(e *event.Exec) Result {
	var res Result
	id, isNew := r.identityOf(e)
	res.SHA256 = id.sum
	if isNew {
		res.NewIdentity = true
		res.Identity = event.Verdict{Kind: id.kind}
		if id.kind == event.VerdictInterpreter {
			res.Identity.Kind = KernelVerdict(id.interp)
		}
		if id.tool != nil {
			res.Identity.ToolID = id.tool.ID
			res.Identity.Action = r.actionFor(id.tool)
		}
	}
	if id.tool != nil {
		match := id.match
		if r.cat.byName[e.Name] == id.tool {
			match = MatchExecutableName
		}
		res.Detection = Detection{Tool: id.tool, Match: match, Detail: e.ExePath}
		res.Detected = true
		return res
	}
	if e.Has(event.FlagScript) && e.Filename != "" {
		if d, ok := r.script(e, e.Filename); ok {
			res.Detection, res.Detected = d, true
			return res
		}
	}
	kind := r.cat.Interpreter(e.Name)
	if kind == NotInterpreter {
		kind = id.interp // a renamed copy of an interpreter
	}
	if kind != NotInterpreter {
		inv := parseInterpreterArgs(kind, e.Args)
		switch {
		case inv.module != "" && kind == Python:
			if t := r.cat.moduleTool(inv.module, "", nil); t != nil {
				res.Detection = Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "-m " + inv.module}
				res.Detected = true
				return res
			}
		case inv.code != "" && kind == Python:
			if t, what := r.cat.pythonCodeTool(inv.code); t != nil {
				res.Detection = Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "-c " + what}
				res.Detected = true
				return res
			}
		case inv.stdin && kind == Python:
			if d, ok := r.stdin(e); ok {
				res.Detection, res.Detected = d, true
				return res
			}
		case inv.script != "" && kind == Loader:
			if d, ok := r.loaded(e, inv.script); ok {
				res.Detection, res.Detected = d, true
				return res
			}
		case inv.script != "":
			if d, ok := r.script(e, inv.script); ok {
				res.Detection, res.Detected = d, true
				return res
			}
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

// script judges a script by its name, then by its content: a renamed copy
// of a tool's script hashes the same, and a script of one's own that starts
// the tool's entry point imports it.
func (r *Rule) script(e *event.Exec, p string) (Detection, bool) {
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
	if t := r.cat.BySHA256(sum); t != nil {
		return Detection{Tool: t, Match: MatchContentHash, Detail: p, Script: p}, true
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
	if t := r.cat.BySHA256(sum); t != nil {
		return Detection{Tool: t, Match: MatchContentHash, Detail: "stdin"}, true
	}
	if t, what := r.cat.pythonCodeTool(string(head)); t != nil {
		return Detection{Tool: t, Match: MatchScript, Detail: "stdin imports " + what}, true
	}
	return Detection{}, false
}

// loaded judges the program the dynamic linker was asked to load: by its
// name, then by its content, like the exec of the program itself.
func (r *Rule) loaded(e *event.Exec, p string) (Detection, bool) {
	if t := r.cat.byExec[path.Base(p)]; t != nil {
		return Detection{Tool: t, Match: MatchInterpreterArgs, Detail: "loader " + p, Script: p}, true
	}
	if r.files == nil {
		return Detection{}, false
	}
	if sum, _, err := r.files.Script(e, p); err == nil {
		if t := r.cat.BySHA256(sum); t != nil {
			return Detection{Tool: t, Match: MatchContentHash, Detail: "loader " + p, Script: p}, true
		}
	}
	return Detection{}, false
}

// identityOf returns the verdict on the loaded file alone, from the cache
// or judged now (and then reported as new, for the kernel's cache).
func (r *Rule) identityOf(e *event.Exec) (identity, bool) {
	r.mu.Lock()
	id, ok := r.known[e.File]
	r.mu.Unlock()
	if ok {
		return id, false
	}
	id = r.judgeIdentity(e)
	r.mu.Lock()
	if len(r.known) >= r.maxKnown {
		clear(r.known) // rare; the kernel keeps its own LRU copy
	}
	r.known[e.File] = id
	r.mu.Unlock()
	return id, true
}

func (r *Rule) judgeIdentity(e *event.Exec) identity {
	if t := r.cat.byExec[e.Name]; t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchExecutableName}
	}
	if e.Reasons&event.ReasonVerdictTool != 0 {
		if t := r.cat.ByID(e.KernelToolID); t != nil {
			return identity{kind: event.VerdictTool, tool: t, match: MatchInode}
		}
	}
	if k := r.cat.Interpreter(e.Name); k != NotInterpreter {
		return identity{kind: event.VerdictInterpreter, interp: k}
	}
	// A hard link is the installed file under another name; linking
	// changed its change time, so only device and inode still agree.
	r.mu.Lock()
	t := r.installed[inodeKey{e.File.Dev, e.File.Ino}]
	r.mu.Unlock()
	if t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchInode}
	}
	// Content: a full hash where the file can still be read, else the
	// fingerprint the kernel took before the program ran.
	var sum string
	if r.files != nil {
		if s, err := r.files.ExecSHA256(e); err == nil {
			sum = s
			if t := r.cat.BySHA256(s); t != nil {
				return identity{kind: event.VerdictTool, tool: t, match: MatchContentHash, sum: sum}
			}
		}
	}
	r.mu.Lock()
	t = r.fingerprints[e.Fingerprint()]
	ik, copied := r.interpBySum[sum]
	if !copied {
		ik, copied = r.interpByFingerprint[e.Fingerprint()]
	}
	r.mu.Unlock()
	if t == nil && copied {
		return identity{kind: event.VerdictInterpreter, interp: ik, sum: sum}
	}
	if t == nil && e.Reasons&event.ReasonFingerprint != 0 {
		t = r.cat.ByID(e.KernelToolID)
	}
	if t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchFingerprint, sum: sum}
	}
	return identity{kind: event.VerdictBenign, sum: sum}
}
