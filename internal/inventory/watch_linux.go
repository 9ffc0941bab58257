// SPDX-License-Identifier: Apache-2.0

//go:build linux

package inventory

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Watcher reports that a file in the watched directories was created,
// written, renamed or changed its attributes: a package upgrade, a tool
// dropped into /usr/local/bin. The receiver then scans again.
type Watcher struct {
	// The inotify descriptor is non-blocking and served by Go's poller:
	// the reader sleeps until the kernel has an event, and Close wakes it.
	// (A poll loop with a timeout woke the idle collector 5 times a second.)
	f       *os.File
	changes chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// Watch watches dirs; directories that do not exist are skipped.
func Watch(dirs []string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	watched := 0
	for _, d := range dirs {
		if _, err := unix.InotifyAddWatch(fd, d, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_ATTRIB); err == nil {
			watched++
		}
	}
	if watched == 0 {
		unix.Close(fd)
		return nil, errors.New("no directory to watch")
	}
	w := &Watcher{f: os.NewFile(uintptr(fd), "inotify"), changes: make(chan struct{}, 1)}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// Changes signals (coalesced) that something changed.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

func (w *Watcher) run() {
	defer w.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed
		}
		select {
		case w.changes <- struct{}{}:
		default:
		}
	}
}

// Close stops watching.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		err = w.f.Close() // wakes the reader
		w.wg.Wait()
	})
	return err
}
