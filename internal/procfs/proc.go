// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Proc is one process's /proc directory, held by a descriptor: every read
// through it reaches that process or, once it is reaped, nothing.
type Proc struct {
	fd  int
	pid uint32
}

// Open holds procRoot/PID. The descriptor holds whichever process had the
// pid at the open: check its start (CheckStart, or OpenStarted) before
// trusting what it reads.
func Open(procRoot string, pid uint32) (*Proc, error) {
	for {
		fd, err := unix.Open(pidDir(procRoot, pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("/proc entry of pid %d: %w", pid, err)
		}
		return &Proc{fd: fd, pid: pid}, nil
	}
}

// OpenStarted is Open for the process that started at startBootNs (the
// kernel's start_boottime): a process that reuses the pid is refused.
func OpenStarted(procRoot string, pid uint32, startBootNs uint64) (*Proc, error) {
	p, err := Open(procRoot, pid)
	if err != nil {
		return nil, err
	}
	if err := p.CheckStart(startBootNs); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the descriptor.
func (p *Proc) Close() { _ = unix.Close(p.fd) }

// PID is the pid the directory was opened by.
func (p *Proc) PID() uint32 { return p.pid }

// Stat parses the held process's stat.
func (p *Proc) Stat() (Stat, error) {
	what := fmt.Sprintf("stat of pid %d", p.pid)
	f, err := openFile(p.fd, "stat")
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	return readStat(f, what)
}

// CheckStart fails unless the held process started at startBootNs.
func (p *Proc) CheckStart(startBootNs uint64) error {
	st, err := p.Stat()
	if err != nil {
		return err
	}
	if !st.SameStart(startBootNs) {
		return fmt.Errorf("pid %d started at tick %d, the exec's process at %d ns: the pid was reused", p.pid, st.StartTicks, startBootNs)
	}
	return nil
}

// Read reads the file name of the held process, at most maxBytes of it;
// cut reports that a bound (maxBytes, or ReadTime) ended the read. It is
// for the files a prefix of which still serves (cmdline, environ).
func (p *Proc) Read(name string, maxBytes int) (b []byte, cut bool, err error) {
	if maxBytes <= 0 {
		return nil, false, fmt.Errorf("%s bound maxBytes is %d, want more than 0", name, maxBytes)
	}
	f, err := openFile(p.fd, name)
	if err != nil {
		return nil, false, fmt.Errorf("%s of pid %d: %w", name, p.pid, err)
	}
	defer f.Close()
	b, cut, err = readBounded(f, maxBytes, ReadTime)
	if err != nil {
		return nil, false, fmt.Errorf("%s of pid %d: %w", name, p.pid, err)
	}
	return b, cut, nil
}

// readWhole reads the file name of the held process to its end, an
// error past maxBytes.
func (p *Proc) readWhole(name string, maxBytes int) ([]byte, error) {
	what := fmt.Sprintf("%s of pid %d", name, p.pid)
	f, err := openFile(p.fd, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	return readWhole(f, maxBytes, ReadTime, what)
}

// Cmdline returns the arguments in procRoot/PID/cmdline, at most maxBytes
// of them, if PID is still the process that started at startBootNs (the
// exec record's start_boottime). truncated reports that a bound cut the
// read; the last argument is then kept as far as it was read. A process
// rewrites its own argument area at will (setproctitle), so this is what
// the process shows now, not what the exec passed.
func Cmdline(procRoot string, pid uint32, startBootNs uint64, maxBytes int) (args []string, truncated bool, err error) {
	return readList(procRoot, pid, startBootNs, maxBytes, "cmdline", nil)
}

// Environ is Cmdline for the process's environment (NAME=VALUE strings):
// what the process shows now, which it may have rewritten.
func Environ(procRoot string, pid uint32, startBootNs uint64, maxBytes int) (vars []string, truncated bool, err error) {
	return readList(procRoot, pid, startBootNs, maxBytes, "environ", nil)
}

// ReadStarted reads name of the process that started at startBootNs, the
// start checked on both sides of the read; between, when not nil, runs
// after the read and before the second check (tests make the pid reused
// there).
func ReadStarted(procRoot string, pid uint32, startBootNs uint64, name string, maxBytes int, between func()) ([]byte, bool, error) {
	if maxBytes <= 0 {
		return nil, false, fmt.Errorf("%s bound maxBytes is %d, want more than 0", name, maxBytes)
	}
	p, err := OpenStarted(procRoot, pid, startBootNs)
	if err != nil {
		return nil, false, err
	}
	defer p.Close()
	b, cut, err := p.Read(name, maxBytes)
	if err != nil {
		return nil, false, err
	}
	if between != nil {
		between()
	}
	if err := p.CheckStart(startBootNs); err != nil {
		return nil, false, err
	}
	return b, cut, nil
}

// readList reads a NUL-separated list (cmdline, environ).
func readList(procRoot string, pid uint32, startBootNs uint64, maxBytes int, name string, between func()) ([]string, bool, error) {
	b, cut, err := ReadStarted(procRoot, pid, startBootNs, name, maxBytes, between)
	if err != nil {
		return nil, false, err
	}
	return splitList(b), cut, nil
}

// splitList splits NUL-separated strings; the NUL after the last one is
// not an empty string.
func splitList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}
