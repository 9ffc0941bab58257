// Package filehash hashes the files execs loaded, checking that the file
// hashed is the very file identity the kernel reported, and caches the
// results by that identity.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/mitmexec/mitmexec/internal/event"
)

// ErrGone means the file could no longer be reached: the process exited and
// the file was deleted, renamed or replaced (the race every user-space
// hasher has; the kernel's fingerprint covers it).
var ErrGone = errors.New("file is gone")

// Stats count how hashes were obtained.
type Stats struct {
	FromProcExe uint64 // through /proc/PID/exe while the process lived
	FromPath    uint64 // through the path, identity verified
	Cached      uint64
	Lost        uint64 // neither: the race was lost
	TooLarge    uint64
}

// Hasher hashes files, bounded in size, cached by file identity.
type scriptResult struct {
	sum  string
	head []byte
}

type Hasher struct {
	procRoot   string
	maxBytes   int64
	scriptHead int

	mu      sync.Mutex
	cache   map[event.FileID]string
	scripts map[event.FileID]scriptResult // interpreters run the same scripts again and again

	fromProc, fromPath, cached, lost, tooLarge atomic.Uint64
}

// New returns a hasher. procRoot is normally /proc; maxBytes bounds the
// size of a file it hashes.
func New(procRoot string, maxBytes int64) *Hasher {
	return &Hasher{procRoot: procRoot, maxBytes: maxBytes, scriptHead: 64 << 10,
		cache: map[event.FileID]string{}, scripts: map[event.FileID]scriptResult{}}
}

// Stats returns the counters.
func (h *Hasher) Stats() Stats {
	return Stats{FromProcExe: h.fromProc.Load(), FromPath: h.fromPath.Load(), Cached: h.cached.Load(), Lost: h.lost.Load(), TooLarge: h.tooLarge.Load()}
}

// ExecSHA256 hashes the file the exec loaded.
func (h *Hasher) ExecSHA256(e *event.Exec) (string, error) {
	h.mu.Lock()
	sum, ok := h.cache[e.File]
	h.mu.Unlock()
	if ok {
		h.cached.Add(1)
		return sum, nil
	}
	// /proc/PID/exe reaches the file even when it is deleted or a memfd,
	// but only while the process lives; the path reaches it afterwards
	// unless it was unlinked.
	candidates := []string{filepath.Join(h.procRoot, strconv.FormatUint(uint64(e.PID), 10), "exe")}
	if e.ExePath != "" && e.Nlink > 0 {
		candidates = append(candidates, e.ExePath)
	}
	var lastErr error = ErrGone
	for i, p := range candidates {
		sum, err := h.hashVerified(p, e.File)
		if err != nil {
			if errors.Is(err, errTooLarge) {
				h.tooLarge.Add(1)
				return "", err
			}
			lastErr = err
			continue
		}
		if i == 0 {
			h.fromProc.Add(1)
		} else {
			h.fromPath.Add(1)
		}
		h.put(e.File, sum)
		return sum, nil
	}
	h.lost.Add(1)
	return "", fmt.Errorf("hash %s of pid %d: %w", e.ExePath, e.PID, lastErr)
}

// Script hashes a script an exec names and returns its first bytes. A
// relative path is resolved against the process's working directory; the
// process's root is tried first so that a containerised script is found.
func (h *Hasher) Script(e *event.Exec, p string) (string, []byte, error) {
	// /proc/self and /dev/fd name the exec'd process's own descriptors
	// (a script run from a file descriptor or a memfd); read here they
	// would be the collector's.
	pid := strconv.FormatUint(uint64(e.PID), 10)
	for _, own := range []string{"/proc/self/", "/proc/thread-self/", "/dev/fd/"} {
		if rest, ok := strings.CutPrefix(p, own); ok {
			if own == "/dev/fd/" {
				rest = "fd/" + rest
			}
			return h.hashScript(filepath.Join(h.procRoot, pid, rest))
		}
	}
	if !filepath.IsAbs(p) {
		if e.Cwd == "" {
			return "", nil, fmt.Errorf("script %q is relative and the working directory is unknown", p)
		}
		p = filepath.Join(e.Cwd, p)
		return h.hashScript(p)
	}
	root := filepath.Join(h.procRoot, strconv.FormatUint(uint64(e.PID), 10), "root")
	if sum, head, err := h.hashScript(filepath.Join(root, p)); err == nil {
		return sum, head, nil
	}
	return h.hashScript(p)
}

// Stdin hashes the file on the process's standard input. /proc/PID/fd/0
// opens the very file the process holds, wherever it lives; a pipe or a
// terminal is not a regular file and is refused.
func (h *Hasher) Stdin(e *event.Exec) (string, []byte, error) {
	return h.hashScript(filepath.Join(h.procRoot, strconv.FormatUint(uint64(e.PID), 10), "fd", "0"))
}

func (h *Hasher) hashScript(p string) (string, []byte, error) {
	f, err := openNoBlock(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	if !st.Mode().IsRegular() {
		return "", nil, fmt.Errorf("script %s is not a regular file", p)
	}
	if st.Size() > h.maxBytes {
		h.tooLarge.Add(1)
		return "", nil, errTooLarge
	}
	// Cached by inode, modification time and size: a write moves them.
	var id event.FileID
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id = event.FileID{Dev: event.KernelDev(uint64(sys.Dev)), Ino: uint64(sys.Ino), CtimeNs: uint64(st.ModTime().UnixNano()) ^ uint64(st.Size())}
		h.mu.Lock()
		r, ok := h.scripts[id]
		h.mu.Unlock()
		if ok {
			h.cached.Add(1)
			return r.sum, r.head, nil
		}
	}
	d := sha256.New()
	head := make([]byte, 0, h.scriptHead)
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			d.Write(buf[:n])
			if room := h.scriptHead - len(head); room > 0 {
				head = append(head, buf[:min(n, room)]...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, err
		}
	}
	sum := hex.EncodeToString(d.Sum(nil))
	if id.Ino != 0 {
		h.mu.Lock()
		if len(h.scripts) >= 4096 {
			clear(h.scripts)
		}
		h.scripts[id] = scriptResult{sum: sum, head: head}
		h.mu.Unlock()
	}
	return sum, head, nil
}

var errTooLarge = errors.New("file is larger than the hashing bound")

func (h *Hasher) hashVerified(p string, want event.FileID) (string, error) {
	f, err := openNoBlock(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("stat %s: no inode", p)
	}
	// overlayfs and some FUSE file systems report another device to
	// stat(2) than the kernel's own super block; the inode still decides.
	if sys.Ino != want.Ino || (event.KernelDev(uint64(sys.Dev)) != want.Dev && want.Dev != 0 && !h.lenientDev(p)) {
		return "", fmt.Errorf("%s is inode %d, the exec loaded %d: %w", p, sys.Ino, want.Ino, ErrGone)
	}
	if st.Size() > h.maxBytes {
		return "", errTooLarge
	}
	d := sha256.New()
	if _, err := io.Copy(d, io.LimitReader(f, h.maxBytes+1)); err != nil {
		return "", err
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// lenientDev allows a device mismatch for /proc/PID/exe, whose target is the
// file the process runs whatever device stat reports.
func (h *Hasher) lenientDev(p string) bool {
	return filepath.Base(p) == "exe" && filepath.Dir(filepath.Dir(p)) == h.procRoot
}

func (h *Hasher) put(id event.FileID, sum string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cache) >= 65536 {
		clear(h.cache)
	}
	h.cache[id] = sum
}

// openNoBlock opens p for reading without ever waiting: a FIFO named as a
// script or sitting on a process's stdin would block a plain open until a
// writer appears, and a terminal must not become anyone's controlling tty.
// Callers refuse what is not a regular file right after.
func openNoBlock(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
