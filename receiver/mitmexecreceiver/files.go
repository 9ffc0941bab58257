// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/filehash"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

// Bounds on what one exec may make the receiver read: the structure of an
// executable (section bytes hashed and searched) and a process's argv.
const (
	maxStructureBytes = 64 << 20
	maxCmdlineBytes   = 256 << 10
)

// hostFiles is the host's file system as the rule reads it: hashes and
// scripts through the hasher, ELF structure and argv beside it.
type hostFiles struct {
	*filehash.Hasher
	procRoot string
	needles  []string
}

func (h hostFiles) structure(f io.ReaderAt, size int64) (elfid.Identity, error) {
	// A Go build is named by its module; its sections are hashed only for
	// the installed builds (kernel.go), whose renamed or patched copies the
	// kernel's fingerprint recognises anyway. The read is bounded in time
	// like every other: a file whose reads crawl (a slow network mount)
	// ends as an unread first sight, judged again at its next exec.
	r := deadlineReader{r: f, deadline: time.Now().Add(maxStructureTime)}
	needles := append(append([]string(nil), h.needles...), detect.InterpreterNeedles()...)
	return elfid.Read(r, size, elfid.Options{MaxBytes: maxStructureBytes, Needles: needles, SkipGoSections: true})
}

// maxStructureTime bounds the reading of one executable's structure.
const maxStructureTime = filehash.DefaultExecTime

// errStructureTime ends a structure read past maxStructureTime.
var errStructureTime = errors.New("elf structure read over its time bound")

// deadlineReader fails every read after its deadline.
type deadlineReader struct {
	r        io.ReaderAt
	deadline time.Time
}

func (d deadlineReader) ReadAt(p []byte, off int64) (int, error) {
	if time.Now().After(d.deadline) {
		return 0, fmt.Errorf("%w (%s)", errStructureTime, maxStructureTime)
	}
	return d.r.ReadAt(p, off)
}

// ExecELF reads the structure of the very file the exec loaded.
func (h hostFiles) ExecELF(e *event.Exec) (elfid.Identity, error) {
	f, st, err := h.OpenExec(e)
	if err != nil {
		return elfid.Identity{}, err
	}
	defer f.Close()
	return h.structure(f, st.Size)
}

// ProgramELF reads the structure of a program named in the process's argv,
// resolved in the process's own root and working directory.
func (h hostFiles) ProgramELF(e *event.Exec, p string) (elfid.Identity, error) {
	f, st, err := h.OpenScript(e, p)
	if err != nil {
		return elfid.Identity{}, err
	}
	defer f.Close()
	return h.structure(f, st.Size)
}

// Cmdline reads the whole argv of the exec'd process, if it is still the
// same process.
func (h hostFiles) Cmdline(e *event.Exec) ([]string, error) {
	args, _, err := procfs.Cmdline(h.procRoot, e.PID, e.StartBootTimeNs, maxCmdlineBytes)
	return args, err
}

// maxEnvironBytes bounds the environment read of one process.
const maxEnvironBytes = 256 << 10

// Environ reads the environment of the exec'd process, if it is still the
// same process.
func (h hostFiles) Environ(e *event.Exec) ([]string, error) {
	vars, _, err := procfs.Environ(h.procRoot, e.PID, e.StartBootTimeNs, maxEnvironBytes)
	return vars, err
}

// ReadDir lists a directory as the exec'd process sees it: a relative
// path from its working directory, an absolute one from its root. The
// process must be the exec's on both sides of the read.
func (h hostFiles) ReadDir(e *event.Exec, dir string, max int) ([]string, error) {
	pidDir := filepath.Join(h.procRoot, strconv.FormatUint(uint64(e.PID), 10))
	base := filepath.Join(pidDir, "cwd")
	if filepath.IsAbs(dir) {
		base = filepath.Join(pidDir, "root")
	}
	if err := h.sameProcess(e); err != nil {
		return nil, err
	}
	if err := safeopen.RefuseUntrusted(h.procRoot, e.PID, dir); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(base, dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(max + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(names) > max {
		return nil, fmt.Errorf("directory %q of pid %d holds more than %d names", dir, e.PID, max)
	}
	if err := h.sameProcess(e); err != nil {
		return nil, err
	}
	return names, nil
}

func (h hostFiles) sameProcess(e *event.Exec) error {
	st, err := procfs.ReadStat(h.procRoot, e.PID)
	if err != nil {
		return err
	}
	if !st.SameStart(e.StartBootTimeNs) {
		return fmt.Errorf("pid %d is another process than the exec's", e.PID)
	}
	return nil
}
