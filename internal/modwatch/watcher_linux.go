// SPDX-License-Identifier: Apache-2.0

//go:build linux

package modwatch

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxQueue bounds the Events channel New accepts.
const maxQueue = 1 << 20

// readBufSize bounds how many records one read(2) takes. In descriptor mode
// the kernel installs an open descriptor in the reader's table for every
// record it copies out, so the buffer also bounds how many of those are open
// at once: 4096/24 = 170, far from any RLIMIT_NOFILE. A read that cannot
// install a descriptor fails and the kernel drops that event.
const readBufSize = 4096

type inodeKey struct{ dev, ino uint64 }

// mark is a marked inode and the O_PATH descriptor that pins it. Marks are
// removed through the pinned descriptor, not the path: after a package
// upgrade the path names the new file while the mark is on the old inode.
// An O_PATH open neither reads the file nor raises a fanotify event. The
// pin keeps a replaced file's inode (and its blocks) alive until the next
// Set drops it, and keeps its filesystem from being unmounted meanwhile.
type mark struct {
	Mark
	pin int
}

// Watcher is a fanotify group with inode marks on the tools' files.
//
// The group is created non-blocking and its descriptor is wrapped with
// os.NewFile, so the reader goroutine parks in Go's poller (epoll) rather
// than in read(2); Close wakes it by closing the file.
type Watcher struct {
	f      *os.File
	self   int32
	events chan Event
	done   chan struct{}

	setMu  sync.Mutex // serialises Set and Close
	closed bool       // under setMu

	mu    sync.RWMutex // marks: written by Set under setMu, read by the reader
	marks map[inodeKey]*mark

	closeOnce sync.Once
	closeErr  error

	nEvents, nOverflows, nUnmatched, nMarkErrors, nDropped, nSelf, nReadErrors atomic.Uint64
}

// New creates the fanotify group and starts its reader; queue is the
// capacity of the Events channel. It needs CAP_SYS_ADMIN: a group that
// receives open file descriptors is privileged.
func New(queue int) (*Watcher, error) {
	if queue < 1 || queue > maxQueue {
		return nil, fmt.Errorf("queue %d outside [1, %d]", queue, maxQueue)
	}
	// FAN_CLASS_NOTIF: notification only, the opener never waits for us.
	// The event descriptors are O_CLOEXEC so that a child the collector
	// starts while one is open does not inherit it.
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_CLOEXEC|unix.O_LARGEFILE)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	w := &Watcher{
		f:      os.NewFile(uintptr(fd), "fanotify"),
		self:   int32(unix.Getpid()),
		events: make(chan Event, queue),
		done:   make(chan struct{}),
		marks:  map[inodeKey]*mark{},
	}
	go w.run()
	return w, nil
}

// Events delivers the opens of marked files by other processes. It is
// closed by Close.
func (w *Watcher) Events() <-chan Event { return w.events }

// Stats returns the counters.
func (w *Watcher) Stats() Stats {
	return Stats{
		Events:     w.nEvents.Load(),
		Overflows:  w.nOverflows.Load(),
		Unmatched:  w.nUnmatched.Load(),
		MarkErrors: w.nMarkErrors.Load(),
		Dropped:    w.nDropped.Load(),
		Self:       w.nSelf.Load(),
		ReadErrors: w.nReadErrors.Load(),
	}
}

// Set replaces the marks with marks: each path that is (or links to) a
// regular file gets an inode mark for FAN_OPEN, and marks on inodes no
// longer named are removed. A path whose file was replaced since the last
// Set (an upgrade writes a new file and renames it over the old) moves its
// mark to the new inode. Paths naming one inode share one mark; its events
// carry the first such Mark. It returns how many of the paths are watched
// and the errors of the others, joined.
func (w *Watcher) Set(marks []Mark) (int, error) {
	w.setMu.Lock()
	defer w.setMu.Unlock()
	if w.closed {
		return 0, errors.New("watcher is closed")
	}
	var errs []error
	want := make(map[inodeKey]*mark, len(marks))
	seen := make(map[string]bool, len(marks))
	n := 0
	for _, m := range marks {
		if seen[m.Path] {
			continue
		}
		seen[m.Path] = true
		key, pin, err := pinFile(m.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := want[key]; dup {
			unix.Close(pin)
			n++
			continue
		}
		if old, ok := w.marks[key]; ok {
			unix.Close(pin)
			want[key] = &mark{Mark: m, pin: old.pin}
			n++
			continue
		}
		if err := w.mark(unix.FAN_MARK_ADD, pin); err != nil {
			unix.Close(pin)
			errs = append(errs, fmt.Errorf("mark %s: %w", m.Path, err))
			continue
		}
		want[key] = &mark{Mark: m, pin: pin}
		n++
	}
	w.mu.Lock()
	old := w.marks
	w.marks = want
	w.mu.Unlock()
	for key, o := range old {
		if _, kept := want[key]; kept {
			continue
		}
		// ENOENT: the kernel already dropped the mark (the file was
		// unlinked and its last reference went).
		if err := w.mark(unix.FAN_MARK_REMOVE, o.pin); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmark %s: %w", o.Path, err))
		}
		unix.Close(o.pin)
	}
	w.nMarkErrors.Add(uint64(len(errs)))
	return n, errors.Join(errs...)
}

// pinFile opens path with O_PATH (following symbolic links, as the
// interpreter does) and identifies the regular file it names.
func pinFile(path string) (inodeKey, int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return inodeKey{}, -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return inodeKey{}, -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		unix.Close(fd)
		return inodeKey{}, -1, fmt.Errorf("path %s has file type %#o, want a regular file (%#o)", path, t, unix.S_IFREG)
	}
	return inodeKey{dev: uint64(st.Dev), ino: st.Ino}, fd, nil
}

// mark adds or removes FAN_OPEN on the inode pinned by pin.
// fanotify_mark(2) refuses an O_PATH descriptor as the object itself
// (EBADF), but resolves /proc/self/fd/N to exactly the pinned inode.
func (w *Watcher) mark(flags uint, pin int) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		merr = unix.FanotifyMark(int(fd), flags, unix.FAN_OPEN, unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(pin))
	}); err != nil {
		return err
	}
	return merr
}

// Close stops the reader, closes the group (the kernel then drops its marks)
// and closes Events. Calling it again returns the first result.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.setMu.Lock()
		defer w.setMu.Unlock()
		w.closed = true
		// Closing the os.File wakes a Read parked in the poller with
		// os.ErrClosed; the descriptor itself is released once that
		// Read has returned.
		w.closeErr = w.f.Close()
		<-w.done
		w.mu.Lock()
		for _, m := range w.marks {
			unix.Close(m.pin)
		}
		w.marks = nil
		w.mu.Unlock()
		close(w.events)
	})
	return w.closeErr
}

func (w *Watcher) run() {
	defer close(w.done)
	buf := make([]byte, readBufSize)
	evs := make([]rawEvent, 0, readBufSize/metadataLen)
	failing := false
	for {
		n, err := w.f.Read(buf)
		if err != nil || n == 0 {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// The kernel dropped the event it could not deliver, so the
			// next read makes progress; a persistent failure is not
			// allowed to spin.
			w.nReadErrors.Add(1)
			if failing {
				time.Sleep(10 * time.Millisecond)
			}
			failing = true
			continue
		}
		failing = false
		var perr error
		evs, perr = parseEvents(buf[:n], evs[:0])
		for _, e := range evs {
			w.handle(e)
		}
		if perr != nil {
			w.nReadErrors.Add(1)
		}
	}
}

// handle identifies the file of one record and closes its descriptor at
// once: the descriptor is only a handle to fstat, never read.
func (w *Watcher) handle(e rawEvent) {
	if e.Mask&maskQOverflow != 0 {
		w.nOverflows.Add(1)
		if e.FD >= 0 {
			unix.Close(int(e.FD))
		}
		return
	}
	if e.FD < 0 {
		w.nUnmatched.Add(1)
		return
	}
	if e.PID == w.self {
		unix.Close(int(e.FD))
		w.nSelf.Add(1)
		return
	}
	var st unix.Stat_t
	err := unix.Fstat(int(e.FD), &st)
	unix.Close(int(e.FD))
	if err != nil {
		w.nUnmatched.Add(1)
		return
	}
	key := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
	w.mu.RLock()
	m, ok := w.marks[key]
	w.mu.RUnlock()
	if !ok {
		w.nUnmatched.Add(1)
		return
	}
	select {
	case w.events <- Event{PID: uint32(e.PID), Path: m.Path, Tag: m.Tag, Dev: key.dev, Ino: key.ino}:
		w.nEvents.Add(1)
	default:
		w.nDropped.Add(1)
	}
}
