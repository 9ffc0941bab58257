// SPDX-License-Identifier: Apache-2.0

// Package modwatch reports which process opens a tool's own files.
//
// A Python tool can be started under any spelling: a reversed or
// base64-decoded module name, an importlib call, a wrapper module, or
// interpreter options that push the module name past the 4 KiB of argv the
// kernel hands to tracers. Whatever the spelling, the interpreter has to open
// the tool's entry module (its cached bytecode in __pycache__, or the source
// when the cache is missing or stale). A fanotify inode mark on each of those
// files reports every open of them with the opener's pid, and costs nothing
// for the opens of other files: inode marks hang off the marked inodes only.
//
// Watchers are Linux-only (fanotify); Locate and PythonRoots work anywhere.
package modwatch

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Mark is a file to watch and what it stands for (e.g. the module name
// "mitmproxy.tools.main", or "exe:ettercap").
type Mark struct {
	Path string
	Tag  string
}

// Event is one open of a marked file.
type Event struct {
	// PID is the opening process (its tgid). The kernel reports it as seen
	// from the collector's pid namespace: 0 when the opener lives in a pid
	// namespace the collector cannot see.
	PID  uint32
	Path string // the marked path
	Tag  string
	Dev  uint64 // stat(2) st_dev of the opened file
	Ino  uint64
}

// Stats counts what the reader saw since New.
type Stats struct {
	// Events is the number of opens by other processes delivered on Events().
	Events uint64
	// Overflows counts FAN_Q_OVERFLOW: the kernel's queue of the group was
	// full and it discarded events (which and how many is not told).
	Overflows uint64
	// Unmatched counts events whose file is not (or no longer) one of the
	// marks: a Set that removed the mark raced the event, or the kernel gave
	// no file descriptor to identify the file.
	Unmatched uint64
	// MarkErrors counts the paths Set could not mark, over all calls.
	MarkErrors uint64

	// Dropped counts events for marked files that were discarded because
	// the Events channel was full (the reader never blocks on it).
	Dropped uint64
	// Self counts opens of marked files by the collector's own process,
	// which are not reported (it hashes the tool files itself).
	Self uint64
	// ReadErrors counts failed reads of the group and malformed event
	// records. The kernel fails a read when it cannot install the event's
	// file descriptor (e.g. EMFILE); that event is lost.
	ReadErrors uint64
}

// Locate returns the files an import of module opens or may open, for
// "a.b.c" under each root:
//
//   - a/b/c.py, a/b/c/__init__.py (source),
//   - a/b/__pycache__/c.TAG.pyc, a/b/c/__pycache__/__init__.TAG.pyc for any
//     interpreter tag (cpython-311, cpython-311.opt-1, ...),
//   - a/b/c.pyc, a/b/c/__init__.pyc (sourceless bytecode, imported when the
//     source is absent),
//   - a/b/c.so, a/b/c.TAG.so and the same for __init__ (extension modules).
//
// Only existing regular files are returned (symbolic links are followed),
// in a stable order, each once. A name that is not a dotted module name
// yields nil.
func Locate(module string, roots []string) []string {
	parts := strings.Split(module, ".")
	for _, p := range parts {
		// A component holding a path separator or NUL is no module name;
		// empty components come from "a..b", ".a" or "a.".
		if p == "" || strings.ContainsAny(p, "/\x00") {
			return nil
		}
	}
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if seen[p] {
			return
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			seen[p] = true
			out = append(out, p)
		}
	}
	last := parts[len(parts)-1]
	for _, root := range roots {
		dir := filepath.Join(append([]string{root}, parts[:len(parts)-1]...)...)
		// The module as a plain module (dir/last.*) and as a package
		// (dir/last/__init__.*): the import system tries both.
		for _, b := range [][2]string{{dir, last}, {filepath.Join(dir, last), "__init__"}} {
			d, name := b[0], b[1]
			add(filepath.Join(d, name+".py"))
			add(filepath.Join(d, name+".pyc"))
			add(filepath.Join(d, name+".so"))
			for _, p := range tagged(d, name, ".so") {
				add(p)
			}
			for _, p := range tagged(filepath.Join(d, "__pycache__"), name, ".pyc") {
				add(p)
			}
		}
	}
	return out
}

// tagged lists dir/name.TAG.suffix. The directory is read rather than
// globbed so that a module name is never taken as a pattern. Module names
// hold no dots, so name.X.suffix is always a file of that module.
func tagged(dir, name, suffix string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if len(n) > len(name)+1+len(suffix) && strings.HasPrefix(n, name+".") && strings.HasSuffix(n, suffix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out
}

// PythonRoots returns the directories on the system Pythons' sys.path that
// hold packages and modules: /usr/lib/python3/dist-packages (Debian's
// version-independent packages), /usr/lib/python3.X itself (the standard
// library directory is on sys.path, so a module dropped there imports) and
// its site-packages and dist-packages, and
// /usr/local/lib/python3.X/{dist,site}-packages. Existing directories
// only, each real directory once (the first spelling is kept).
func PythonRoots() []string {
	return pythonRoots("/")
}

// isVersionDir accepts python3.11 and python3.13t (free-threaded builds),
// not python3.11-config or python3.11.zip.
func isVersionDir(name string) bool {
	rest, ok := strings.CutPrefix(name, "python3.")
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 {
		return false
	}
	for _, c := range rest[i:] {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func pythonRoots(prefix string) []string {
	var cand []string
	cand = append(cand, filepath.Join(prefix, "usr/lib/python3/dist-packages"))
	for _, p := range versions(filepath.Join(prefix, "usr/lib")) {
		cand = append(cand, p, filepath.Join(p, "site-packages"), filepath.Join(p, "dist-packages"))
	}
	for _, p := range versions(filepath.Join(prefix, "usr/local/lib")) {
		cand = append(cand, filepath.Join(p, "dist-packages"), filepath.Join(p, "site-packages"))
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range cand {
		fi, err := os.Stat(c)
		if err != nil || !fi.IsDir() {
			continue
		}
		real, err := filepath.EvalSymlinks(c)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, c)
	}
	return out
}

// versions lists dir/python3.X in version order (3.9 before 3.11).
func versions(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if isVersionDir(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return a < b
	})
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}
