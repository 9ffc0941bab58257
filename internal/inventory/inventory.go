// SPDX-License-Identifier: Apache-2.0

// Package inventory finds the catalog's tools and the interpreters installed
// on the host, and takes each one's identity, hash and fingerprint, so that
// the kernel knows them before they first run and a renamed copy is known by
// its content.
package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

// DefaultFileTime bounds the time spent hashing one installed file: the
// receiver's size bound (512 MiB) hashes in about 0.4 s from the page cache.
const DefaultFileTime = time.Second

// DefaultDirs returns $PATH's directories and the standard ones, deduplicated.
func DefaultDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	// Besides $PATH: the standard directories, and where Python tools hide
	// (impacket's examples, Responder and MITMf under /usr/share or /opt).
	standard := []string{
		"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
		"/usr/games", "/usr/share/doc/python3-impacket/examples", "/usr/share/responder",
		"/opt/Responder", "/usr/share/mitmf",
		// the dynamic loader
		"/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	}
	for _, d := range append(filepath.SplitList(os.Getenv("PATH")), standard...) {
		if d == "" || !filepath.IsAbs(d) || seen[d] {
			continue
		}
		seen[d] = true
		dirs = append(dirs, d)
	}
	return dirs
}

// File is one installed file.
type File struct {
	Path        string
	ID          event.FileID
	SHA256      string
	Fingerprint *event.Fingerprint // ELF and other binaries; nil for scripts
}

// Interpreter is an installed interpreter; a copy of it under another
// name is still an interpreter.
type Interpreter struct {
	Kind detect.InterpreterKind
	File
}

// Tool is an installed build of a catalog tool.
type Tool struct {
	Tool *detect.Tool
	File
}

// Result is what a scan found.
type Result struct {
	Tools        []Tool
	Interpreters []Interpreter
	Errors       []error // files that could not be read; the scan goes on
}

// Scan looks for every catalog file name and every interpreter in dirs.
// Files reached through several names (symlinks, /bin -> /usr/bin) are
// taken once. Each file is hashed within maxBytes and DefaultFileTime.
func Scan(cat *detect.Catalog, dirs []string, maxBytes int64) Result {
	return ScanBounded(cat, dirs, maxBytes, DefaultFileTime)
}

// ScanBounded is Scan with the time bound of hashing one file; a file the
// bound cuts is reported in Result.Errors, unhashed.
func ScanBounded(cat *detect.Catalog, dirs []string, maxBytes int64, perFile time.Duration) Result {
	var res Result
	seen := map[event.FileID]bool{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, ent := range entries {
			name := ent.Name()
			tool := cat.ByFileName(name)
			interp := cat.Interpreter(name) != detect.NotInterpreter
			if tool == nil && !interp {
				continue
			}
			p := filepath.Join(dir, name)
			f, err := readFile(p, maxBytes, perFile)
			if err != nil {
				res.Errors = append(res.Errors, err)
				continue
			}
			if seen[f.ID] {
				continue
			}
			seen[f.ID] = true
			if tool != nil {
				res.Tools = append(res.Tools, Tool{Tool: tool, File: f})
			} else {
				res.Interpreters = append(res.Interpreters, Interpreter{Kind: cat.Interpreter(name), File: f})
			}
		}
	}
	return res
}

// readFile takes an installed file's identity, hash and fingerprint. A
// name in a tool directory may be anything a package or a user put there:
// only a regular file is opened for reading, and the reading is bounded.
func readFile(p string, maxBytes int64, perFile time.Duration) (File, error) {
	fh, st, err := safeopen.OpenRegular(p)
	if err != nil {
		return File{}, err
	}
	defer fh.Close()
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	f := File{Path: real, ID: fileid.Of(fh, &st)}
	if st.Size > maxBytes {
		return f, fmt.Errorf("%q is %d bytes, the hashing bound is %d", p, st.Size, maxBytes)
	}
	head := make([]byte, 0, event.HeadLen)
	d := sha256.New()
	n, complete, err := safeopen.ReadBounded(fh, maxBytes, time.Now().Add(perFile), func(b []byte) {
		d.Write(b)
		if room := event.HeadLen - len(head); room > 0 {
			head = append(head, b[:min(len(b), room)]...)
		}
	})
	switch {
	case err != nil:
		return f, fmt.Errorf("hash %q: %w", p, err)
	case !complete && n >= maxBytes:
		return f, fmt.Errorf("%q grew past the hashing bound %d while read", p, maxBytes)
	case !complete:
		return f, fmt.Errorf("hash %q: the time bound %s ended it after %d of %d bytes", p, perFile, n, st.Size)
	}
	// A write during the read moves the change time: the sum would be of
	// no version of the file.
	var after unix.Stat_t
	if err := unix.Fstat(int(fh.Fd()), &after); err != nil || after.Ctim != st.Ctim || after.Size != st.Size {
		return f, fmt.Errorf("%q changed while read", p)
	}
	f.SHA256 = hex.EncodeToString(d.Sum(nil))
	// bprm->buf holds the interpreter's bytes for a script, so only
	// binaries have a fingerprint the exec hook can match.
	if !strings.HasPrefix(string(head[:min(len(head), 2)]), "#!") {
		fp := event.FingerprintOf(head)
		f.Fingerprint = &fp
	}
	return f, nil
}

// compilerGlobs are where the host's byte-compiling scripts live: Debian's
// py3compile (which apt runs at every install of a Python package) and
// the standard library's compilers, which are run as scripts too.
var compilerGlobs = []string{
	"/usr/bin/py3compile", "/usr/bin/pypy3compile",
	"/usr/lib/python3*/py_compile.py", "/usr/lib/python3*/compileall.py",
	"/usr/local/lib/python3*/py_compile.py", "/usr/local/lib/python3*/compileall.py",
}

// Compilers hashes the host's byte-compiling scripts, each within maxBytes
// and DefaultFileTime; what cannot be read is left out.
func Compilers(maxBytes int64) []File {
	var out []File
	for _, g := range compilerGlobs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if f, err := readFile(p, maxBytes, DefaultFileTime); err == nil {
				out = append(out, f)
			}
		}
	}
	return out
}
