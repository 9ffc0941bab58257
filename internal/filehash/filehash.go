// SPDX-License-Identifier: Apache-2.0

// Package filehash hashes the files execs loaded, checking that the file
// hashed is the very file identity the kernel reported, and caches the
// results by that identity. It also reads the scripts interpreters were
// given, as the process that was given them sees them.
//
// Every name, size and content here is a local user's: files are opened
// through internal/safeopen (never a device, a FIFO or a kernel interface
// file; always in the process's own root) and read bounded in bytes and
// in time.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

// ErrGone means the file could no longer be reached: the process exited and
// the file was deleted, renamed or replaced (the race every user-space
// hasher has; the kernel's fingerprint covers it).
var ErrGone = errors.New("file is gone")

var errTooLarge = errors.New("file is larger than the hashing bound")

// Defaults of the bounds New takes options for.
const (
	// DefaultScriptBytes bounds the size of a script that is hashed: the
	// catalog's tool scripts are a few KiB, and a larger script is still
	// judged by its head.
	DefaultScriptBytes = 1 << 20
	// DefaultScriptTime bounds the time spent reading one script.
	DefaultScriptTime = 200 * time.Millisecond
	// DefaultExecTime bounds the time spent hashing one executable: the
	// size bound (512 MiB in the receiver) hashes in about 0.4 s from the
	// page cache with SHA-NI; tools are tens of MiB.
	DefaultExecTime = time.Second
)

const (
	// scriptHead is how much of a script is returned for its code to be
	// read, hashed or not.
	scriptHead = 64 << 10
	// cacheSettle: a script is cached only once its change time is this
	// old. File systems without fine-grained timestamps stamp ctime from
	// a clock that advances once a tick (or once in two seconds), so a
	// rewrite within the same tick as the read would keep the key; once
	// the clock has moved past the ctime any write changes it.
	cacheSettle = 2 * time.Second
	// Bounds of the caches (internal/bounded): a miss only costs a read.
	maxExecs        = 65536
	maxScripts      = 4096
	maxScriptsBytes = 32 << 20 // heads held by the script cache
)

// Stats count how executables were reached at first sight (for their
// structure or their hash) and why some were not.
type Stats struct {
	FromProcExe uint64 // through /proc/PID/exe while the process lived
	FromPath    uint64 // through the path, identity verified
	Cached      uint64
	Lost        uint64 // neither: the race was lost
	// TooLarge: over a byte bound, as stat said or as the file grew while
	// read; an executable is then not hashed, a script only has its head.
	TooLarge uint64
	// NotRegular: names refused before anything was opened for reading: a
	// device, FIFO, socket or directory, or a file of a kernel interface
	// file system (procfs, sysfs...).
	NotRegular uint64
	// TimeCut: reads the time bound ended; the executable was not hashed,
	// the script not hashed and its head possibly short.
	TimeCut uint64
}

// Option sets a bound of a Hasher.
type Option func(*Hasher)

// WithHostMountNamespace names the collector's own mount namespace. A
// script or program of a process that has already exited (a loader run that
// lasts a millisecond) is then read through the collector's root when the
// kernel said the process ran in that namespace and its working directory
// was walked whole: the same files, resolved from paths the kernel did not
// cut. A chroot inside that namespace is the residual: its files are looked
// up from the host's root.
func WithHostMountNamespace(ns uint32) Option {
	return func(h *Hasher) { h.hostMntNS = ns }
}

// WithScriptBytes sets the size above which a script is not hashed (its
// head is still returned); n <= 0 keeps DefaultScriptBytes.
func WithScriptBytes(n int64) Option {
	return func(h *Hasher) {
		if n > 0 {
			h.scriptBytes = n
		}
	}
}

// WithScriptTime sets the time bound of reading one script; d <= 0 keeps
// DefaultScriptTime.
func WithScriptTime(d time.Duration) Option {
	return func(h *Hasher) {
		if d > 0 {
			h.scriptTime = d
		}
	}
}

// WithExecTime sets the time bound of hashing one executable; d <= 0 keeps
// DefaultExecTime.
func WithExecTime(d time.Duration) Option {
	return func(h *Hasher) {
		if d > 0 {
			h.execTime = d
		}
	}
}

type scriptResult struct {
	sum  string
	head []byte
}

// Hasher hashes files, bounded in size and time, cached by file identity.
type Hasher struct {
	hostMntNS   uint32 // see WithHostMountNamespace
	procRoot    string
	maxBytes    int64
	scriptBytes int64
	scriptTime  time.Duration
	execTime    time.Duration
	settle      time.Duration // cacheSettle; tests of the cache set 0

	cache   *bounded.Map[event.FileID, string]
	scripts *bounded.Map[event.FileID, scriptResult] // interpreters run the same scripts again and again

	fromProc, fromPath, cached, lost, tooLarge, notRegular, timeCut atomic.Uint64
}

// New returns a hasher. procRoot is normally /proc; maxBytes bounds the
// size of an executable it hashes.
func New(procRoot string, maxBytes int64, opts ...Option) *Hasher {
	h := &Hasher{procRoot: procRoot, maxBytes: maxBytes,
		scriptBytes: DefaultScriptBytes, scriptTime: DefaultScriptTime, execTime: DefaultExecTime, settle: cacheSettle,
		cache:   bounded.New[event.FileID, string](maxExecs),
		scripts: bounded.NewWeighted[event.FileID](maxScripts, maxScriptsBytes, func(r scriptResult) int { return len(r.head) })}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Stats returns the counters.
func (h *Hasher) Stats() Stats {
	return Stats{FromProcExe: h.fromProc.Load(), FromPath: h.fromPath.Load(), Cached: h.cached.Load(), Lost: h.lost.Load(),
		TooLarge: h.tooLarge.Load(), NotRegular: h.notRegular.Load(), TimeCut: h.timeCut.Load()}
}

func (h *Hasher) pidDir(pid uint32) string {
	return filepath.Join(h.procRoot, strconv.FormatUint(uint64(pid), 10))
}

// OpenExec opens the file the exec loaded for reading, verified to be the
// identity the kernel reported (inode, and device where stat's agrees with
// the kernel's), so that its structure can be read.
func (h *Hasher) OpenExec(e *event.Exec) (*os.File, unix.Stat_t, error) {
	f, st, _, err := h.openExec(e)
	return f, st, err
}

// openExec also returns which way served: 0 /proc/PID/exe, 1 the path.
func (h *Hasher) openExec(e *event.Exec) (*os.File, unix.Stat_t, int, error) {
	// /proc/PID/exe reaches the file even when it is deleted or a memfd,
	// but only while the process lives; the path reaches it afterwards
	// unless it was unlinked. The kernel wrote the path without symlinks,
	// so one at its end now is another file.
	type candidate struct {
		path string
		open func(string) (*os.File, unix.Stat_t, error)
		// some FUSE file systems report another device to stat(2) than
		// the kernel's own super block (fileid corrects overlayfs and
		// btrfs); the inode still decides. /proc/PID/exe is the file the
		// process runs whatever device stat reports.
		anyDev bool
	}
	if e.Has(event.FlagUntrustedFS) {
		// The kernel saw the file on FUSE: its server may never answer our
		// open (and what it would serve us proves nothing). It is judged by
		// what exec read, the kernel's fingerprint.
		h.lost.Add(1)
		return nil, unix.Stat_t{}, -1, fmt.Errorf("executable %q of pid %d: %w", e.ExePath, e.PID, safeopen.ErrUntrustedFS)
	}
	cands := []candidate{{filepath.Join(h.pidDir(e.PID), "exe"), safeopen.OpenRegular, true}}
	if e.ExePath != "" && e.Nlink > 0 {
		cands = append(cands, candidate{e.ExePath, safeopen.OpenRegularNoFollow, false})
	}
	// A process in a container that has exited left a path that means
	// nothing in the collector's namespace; its parent, in the same mount
	// namespace and usually still alive, resolves it in that root.
	if e.ExePath != "" && e.Nlink > 0 && !e.Has(event.FlagExePathTruncated) && e.PPID > 1 && e.MntNS != 0 &&
		mountNamespaceOf(h.procRoot, e.PPID) == e.MntNS {
		ppid := e.PPID
		cands = append(cands, candidate{e.ExePath, func(p string) (*os.File, unix.Stat_t, error) {
			return safeopen.OpenInProcess(h.procRoot, ppid, p)
		}, false})
	}
	var lastErr error = ErrGone
	for i, c := range cands {
		f, st, err := c.open(c.path)
		if err != nil {
			h.countRefused(err)
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w: %w", ErrGone, err)
			}
			lastErr = err
			continue
		}
		if st.Ino != e.File.Ino || (!c.anyDev && e.File.Dev != 0 && fileid.Of(f, &st).Dev != e.File.Dev) {
			f.Close()
			lastErr = fmt.Errorf("%q is inode %d, the exec loaded %d: %w", c.path, st.Ino, e.File.Ino, ErrGone)
			continue
		}
		if i == 0 {
			h.fromProc.Add(1)
		} else {
			h.fromPath.Add(1)
		}
		return f, st, i, nil
	}
	h.lost.Add(1)
	return nil, unix.Stat_t{}, -1, fmt.Errorf("executable %q of pid %d: %w", e.ExePath, e.PID, lastErr)
}

// ExecSHA256 hashes the file the exec loaded.
func (h *Hasher) ExecSHA256(e *event.Exec) (string, error) {
	sum, ok := h.cache.Get(e.File)
	if ok {
		h.cached.Add(1)
		return sum, nil
	}
	f, st, _, err := h.openExec(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st.Size > h.maxBytes {
		h.tooLarge.Add(1)
		return "", fmt.Errorf("executable %q of pid %d is %d bytes, the hashing bound is %d: %w", e.ExePath, e.PID, st.Size, h.maxBytes, errTooLarge)
	}
	d := sha256.New()
	n, complete, err := safeopen.ReadBounded(f, h.maxBytes, time.Now().Add(h.execTime), func(b []byte) { d.Write(b) })
	switch {
	case err != nil:
		h.lost.Add(1)
		return "", fmt.Errorf("read executable %q of pid %d: %w", e.ExePath, e.PID, err)
	case !complete && n >= h.maxBytes:
		h.tooLarge.Add(1)
		return "", fmt.Errorf("executable %q of pid %d grew past the hashing bound %d while read: %w", e.ExePath, e.PID, h.maxBytes, errTooLarge)
	case !complete:
		h.timeCut.Add(1)
		return "", fmt.Errorf("executable %q of pid %d: the time bound %s ended the hash after %d of %d bytes", e.ExePath, e.PID, h.execTime, n, st.Size)
	case !unchanged(f, &st):
		// written while read: the sum would be of no version of the file
		h.lost.Add(1)
		return "", fmt.Errorf("executable %q of pid %d changed while read: %w", e.ExePath, e.PID, ErrGone)
	}
	sum = hex.EncodeToString(d.Sum(nil))
	h.put(e.File, sum)
	return sum, nil
}

// Script hashes a script an exec names and returns its first bytes, the
// path resolved as the process resolves it: a relative one from its
// working directory, an absolute one from its root (a containerised
// script is the container's), /dev/fd/N and /proc/self/fd/N from its own
// descriptors. A process that has exited can no longer be asked: that is
// an error, never a guess from the collector's own root.
//
// A script over the script byte bound, or one whose read the time bound
// ended, is not hashed: the sum is "" and the error nil, and head holds
// what was read of its first 64 KiB, so that its code can still be judged.
func (h *Hasher) Script(e *event.Exec, p string) (string, []byte, error) {
	f, st, err := h.OpenScript(e, p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	return h.readScript(f, &st, p)
}

// OpenScript opens a file an exec names (a script, the loader's program)
// as the process sees the path, refusing what is not a regular file.
func (h *Hasher) OpenScript(e *event.Exec, p string) (*os.File, unix.Stat_t, error) {
	f, st, err := safeopen.OpenInProcess(h.procRoot, e.PID, p)
	if err != nil {
		if host, ok := h.hostPath(e, p); ok {
			// resolved in the collector's own root, with the same checks:
			// its mount table says whether the path leads onto FUSE
			f, st, err = safeopen.OpenInProcess(h.procRoot, uint32(os.Getpid()), host)
		}
	}
	if err != nil {
		h.countRefused(err)
		return nil, st, fmt.Errorf("script %q of pid %d: %w", p, e.PID, err)
	}
	if err := h.samePID(e); err != nil {
		f.Close()
		return nil, st, fmt.Errorf("script %q: %w", p, err)
	}
	return f, st, nil
}

// hostPath is p as the collector's root resolves it, for a process that
// has exited and ran in the collector's mount namespace.
func (h *Hasher) hostPath(e *event.Exec, p string) (string, bool) {
	if h.hostMntNS == 0 || e.MntNS != h.hostMntNS || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/dev/") {
		return "", false
	}
	// Exited, reaped or not: a zombie keeps its /proc entry but no root.
	if _, err := procfs.Readlink(h.procRoot, e.PID, "root"); err == nil {
		return "", false // alive: its own view decided
	}
	if filepath.IsAbs(p) {
		return p, true
	}
	if e.Cwd == "" || e.Has(event.FlagCwdTruncated) {
		return "", false
	}
	return filepath.Join(e.Cwd, p), true
}

// Stdin hashes the file on the process's standard input like Script.
// /proc/PID/fd/0 opens the very file the process holds, wherever it lives;
// a pipe or a terminal is not a regular file and is refused.
func (h *Hasher) Stdin(e *event.Exec) (string, []byte, error) {
	f, st, err := safeopen.OpenRegular(filepath.Join(h.pidDir(e.PID), "fd", "0"))
	if err != nil {
		h.countRefused(err)
		return "", nil, fmt.Errorf("stdin of pid %d: %w", e.PID, err)
	}
	defer f.Close()
	if err := h.samePID(e); err != nil {
		return "", nil, fmt.Errorf("stdin: %w", err)
	}
	return h.readScript(f, &st, "stdin")
}

// samePID fails when the exec's pid now belongs to a later process, whose
// root, working directory or descriptors were then the ones used. It looks
// after the open: a process found alive then was alive during it, and a
// pid is not reused while its process lives. A process that exited since
// cannot be asked; the open found its /proc entry, so it is taken as the
// exec's (reuse needs a full wrap of the pid space in between).
func (h *Hasher) samePID(e *event.Exec) error {
	if e.StartBootTimeNs == 0 {
		return nil
	}
	st, err := procfs.ReadStat(h.procRoot, e.PID)
	if err != nil || st.SameStart(e.StartBootTimeNs) {
		return nil
	}
	return fmt.Errorf("pid %d started at tick %d, the exec's process at %d ns: %w", e.PID, st.StartTicks, e.StartBootTimeNs, ErrGone)
}

func (h *Hasher) readScript(f *os.File, st *unix.Stat_t, name string) (string, []byte, error) {
	// The key is what the kernel controls: device, inode and change time,
	// which every write, truncate, chmod and utimes (touch -d included)
	// moves to the current time and no user can set.
	// (stat's device: only this cache compares these keys, so it need not
	// be the kernel's, and stat(2) costs no mountinfo read)
	id := event.FileID{Dev: event.KernelDev(uint64(st.Dev)), Ino: uint64(st.Ino), CtimeNs: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec)}
	cacheable := h.cacheable(f, st)
	if cacheable {
		r, ok := h.scripts.Get(id)
		if ok {
			h.cached.Add(1)
			return r.sum, r.head, nil
		}
	}
	deadline := time.Now().Add(h.scriptTime)
	if st.Size > h.scriptBytes {
		h.tooLarge.Add(1)
		head := make([]byte, 0, scriptHead)
		n, complete, err := safeopen.ReadBounded(f, scriptHead, deadline, func(b []byte) { head = append(head, b...) })
		if err != nil {
			return "", nil, fmt.Errorf("read script %q: %w", name, err)
		}
		if !complete && n < scriptHead {
			h.timeCut.Add(1)
			return "", head, nil
		}
		if cacheable && unchanged(f, st) {
			h.putScript(id, scriptResult{head: head})
		}
		return "", head, nil
	}
	d := sha256.New()
	head := make([]byte, 0, min(scriptHead, max(st.Size, 0)))
	n, complete, err := safeopen.ReadBounded(f, h.scriptBytes, deadline, func(b []byte) {
		d.Write(b)
		if room := scriptHead - len(head); room > 0 {
			head = append(head, b[:min(len(b), room)]...)
		}
	})
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("read script %q: %w", name, err)
	case !complete && n >= h.scriptBytes:
		h.tooLarge.Add(1)
		return "", head, nil
	case !complete:
		h.timeCut.Add(1)
		return "", head, nil
	case !unchanged(f, st):
		// rewritten while read: the sum would be of no version of it
		return "", head, nil
	}
	sum := hex.EncodeToString(d.Sum(nil))
	if cacheable {
		h.putScript(id, scriptResult{sum: sum, head: head})
	}
	return sum, head, nil
}

// cacheable reports whether a script's identity can key its result: its
// change time must be settled (see cacheSettle) and kept by the kernel
// (a FUSE server or a network file server makes up inode and ctime).
func (h *Hasher) cacheable(f *os.File, st *unix.Stat_t) bool {
	if time.Since(time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))) < h.settle {
		return false
	}
	return kernelKeepsCtime(f)
}

// unchanged reports whether f still has the size and change time it had
// when it was opened: a write during the read moves them.
func unchanged(f *os.File, before *unix.Stat_t) bool {
	var now unix.Stat_t
	if err := fstat(f, &now); err != nil {
		return false
	}
	return now.Size == before.Size && now.Ctim == before.Ctim
}

func fstat(f *os.File, st *unix.Stat_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), st) }); err != nil {
		return err
	}
	return serr
}

func (h *Hasher) countRefused(err error) {
	if errors.Is(err, safeopen.ErrNotRegular) || errors.Is(err, safeopen.ErrKernelFile) {
		h.notRegular.Add(1)
	}
}

func (h *Hasher) put(id event.FileID, sum string) { h.cache.Put(id, sum) }

func (h *Hasher) putScript(id event.FileID, r scriptResult) { h.scripts.Put(id, r) }

// mountNamespaceOf returns the inode number of the mount namespace of
// process pid, 0 when it cannot be read.
func mountNamespaceOf(procRoot string, pid uint32) uint32 {
	n, _ := procfs.Namespace(procRoot, pid, "mnt")
	return n
}
