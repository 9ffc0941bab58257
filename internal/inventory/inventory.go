// Package inventory finds the catalog's tools and the interpreters installed
// on the host, and takes each one's identity, hash and fingerprint, so that
// the kernel knows them before they first run and a renamed copy is known by
// its content.
package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
)

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
// taken once.
func Scan(cat *detect.Catalog, dirs []string, maxBytes int64) Result {
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
			f, err := readFile(p, maxBytes, true)
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

// Identity returns the kernel's file identity of a path, following symlinks.
func Identity(p string) (event.FileID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return event.FileID{}, err
	}
	return identity(&st), nil
}

func readFile(p string, maxBytes int64, hash bool) (File, error) {
	fh, err := openNoBlock(p)
	if err != nil {
		return File{}, err
	}
	defer fh.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fh.Fd()), &st); err != nil {
		return File{}, fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return File{}, fmt.Errorf("%s is not a regular file", p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	f := File{Path: real, ID: identity(&st)}
	if !hash {
		return f, nil
	}
	if st.Size > maxBytes {
		return f, fmt.Errorf("%s is %d bytes, the hashing bound is %d", p, st.Size, maxBytes)
	}
	head := make([]byte, event.HeadLen)
	n, _ := io.ReadFull(fh, head)
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return f, err
	}
	d := sha256.New()
	if _, err := io.Copy(d, fh); err != nil {
		return f, fmt.Errorf("hash %s: %w", p, err)
	}
	f.SHA256 = hex.EncodeToString(d.Sum(nil))
	// bprm->buf holds the interpreter's bytes for a script, so only
	// binaries have a fingerprint the exec hook can match.
	if !strings.HasPrefix(string(head[:min(n, 2)]), "#!") {
		fp := event.Fingerprint{Size: uint64(st.Size)}
		copy(fp.Head[:], head[:n])
		f.Fingerprint = &fp
	}
	return f, nil
}

// openNoBlock opens p without waiting on a FIFO that carries a tool's name;
// readFile refuses what is not a regular file right after.
func openNoBlock(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
