// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"github.com/mitmexec/mitmexec/internal/event"
)

// identityOf returns the verdict on the loaded file alone, from the cache
// or judged now and then cached on both sides. A verdict is cached only
// for a file that was read (or a tool, whatever showed it): a read that
// failed (the file renamed or gone before it was read, refused, cut by a
// time bound) leaves the file to be judged again at its next exec.
func (r *Rule) identityOf(e *event.Exec) identity {
	if e.Has(event.FlagUntrustedFS) {
		id, _ := r.judgeIdentity(e) // every exec of a FUSE file is judged anew
		return id
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.known.Get(e.File); ok {
		if e.Reasons&event.ReasonUnknown != 0 {
			// the kernel's LRU forgot it: put it back, so that the file
			// does not come up on every exec from now on (an error is counted)
			_ = r.remember(e.File, id)
		}
		return id
	}
	r.mu.Unlock()
	id, read := r.judgeIdentity(e)
	r.mu.Lock()
	if !read && id.kind != event.VerdictTool {
		r.unread.Add(1)
		return id
	}
	_ = r.remember(e.File, id) // counted in KernelErrors
	return id
}

// judgeIdentity says what the loaded file is: what it is, before what it
// is called. A tool's name, the kernel's verdict and the installed
// identities first, then the file's content (structure, hash) and the
// fingerprint the kernel took; an interpreter's name counts only where
// none of these said anything, so that a copy of a tool named sh or perl
// is the tool. read reports whether the content could be read.
func (r *Rule) judgeIdentity(e *event.Exec) (id identity, read bool) {
	if t := r.cat.byExec[e.Name]; t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchExecutableName}, true
	}
	if e.Reasons&event.ReasonVerdictTool != 0 {
		if t := r.cat.ByID(e.KernelToolID); t != nil {
			return identity{kind: event.VerdictTool, tool: t, match: MatchInode}, true
		}
	}
	// A hard link is the installed file under another name; linking
	// changed its change time, so only device and inode still agree. Only
	// while the inode has several names: an inode number freed by an
	// upgrade and reused for another file (one name) is not the tool.
	r.mu.Lock()
	var t *Tool
	if e.Nlink > 1 {
		t = r.installed[inodeKey{e.File.Dev, e.File.Ino}]
	}
	fpTool := r.fingerprints[e.Fingerprint()]
	ik, copied := r.interpByFingerprint[e.Fingerprint()]
	r.mu.Unlock()
	if t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchInode}, true
	}
	id, read = r.byContent(e)
	if id.kind != 0 {
		return id, read
	}
	sum := id.sum
	if copied && fpTool == nil {
		return identity{kind: event.VerdictInterpreter, interp: ik, sum: sum}, read
	}
	// The kernel's fingerprint is what exec read: the same entry point and
	// program headers as a tool's build, which only another build of the
	// same sources shares. It decides where the file is gone, and where a
	// patched build no longer hashes like the original.
	if fpTool == nil && e.Reasons&event.ReasonFingerprint != 0 {
		fpTool = r.cat.ByID(e.KernelToolID)
	}
	if fpTool != nil {
		return identity{kind: event.VerdictTool, tool: fpTool, match: MatchFingerprint, detail: "first 256 bytes", sum: sum}, read
	}
	if k := r.cat.Interpreter(e.Name); k != NotInterpreter {
		return identity{kind: event.VerdictInterpreter, interp: k, byName: true, sum: sum}, read
	}
	return identity{kind: event.VerdictBenign, sum: sum}, read
}

// byContent judges the loaded file by what can still be read of it: its
// structure, then the exact hash. The structure alone covers the host's
// builds (their sections), the catalog's signatures and the installed
// interpreters' code, so a whole-file hash, a second read of the file, is
// taken only where the catalog lists exact hashes or the file has no ELF
// structure to read. A zero kind means the content named nothing; read
// says whether the file was read at all (without a file system to read,
// the kernel's account is all there is, and it is taken as read).
func (r *Rule) byContent(e *event.Exec) (identity, bool) {
	if r.files == nil {
		return identity{}, true
	}
	st, elfErr := r.files.ExecELF(e)
	if elfErr == nil {
		if t, what := r.byStructure(&st); t != nil {
			return identity{kind: event.VerdictTool, tool: t, match: MatchStructure, detail: what}, true
		}
		if k := r.interpreterBy("", &st); k != NotInterpreter {
			return identity{kind: event.VerdictInterpreter, interp: k}, true
		}
		if pythonByStructure(&st) {
			return identity{kind: event.VerdictInterpreter, interp: Python}, true
		}
		if !r.cat.HasSHA256() {
			return identity{}, true
		}
	}
	s, err := r.files.ExecSHA256(e)
	if err != nil {
		return identity{}, elfErr == nil
	}
	if t := r.bySum(s); t != nil {
		return identity{kind: event.VerdictTool, tool: t, match: MatchContentHash, detail: "sha256 " + s, sum: s}, true
	}
	if k := r.interpreterBy(s, nil); k != NotInterpreter {
		return identity{kind: event.VerdictInterpreter, interp: k, sum: s}, true
	}
	return identity{sum: s}, true
}
