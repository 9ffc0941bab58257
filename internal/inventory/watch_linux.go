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
	fd      int
	changes chan struct{}
	once    sync.Once
	done    chan struct{}
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
	w := &Watcher{fd: fd, changes: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// Changes signals (coalesced) that something changed.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

func (w *Watcher) run() {
	defer w.wg.Done()
	buf := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-w.done:
			return
		default:
		}
		n, err := unix.Poll(fds, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n <= 0 {
			continue
		}
		if _, err := unix.Read(w.fd, buf); err != nil && !errors.Is(err, unix.EAGAIN) {
			return
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
		close(w.done)
		w.wg.Wait() // the reader polls with a timeout: the fd is not in use once it returned
		err = os.NewFile(uintptr(w.fd), "inotify").Close()
	})
	return err
}
