// SPDX-License-Identifier: Apache-2.0

package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/filehash"
	"github.com/mitmexec/mitmexec/internal/procstat"
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

func (h hostFiles) structure(f interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) (elfid.Identity, error) {
	// A Go build is named by its module; its sections are hashed only for
	// the installed builds (kernel.go), whose renamed or patched copies the
	// kernel's fingerprint recognises anyway.
	return elfid.Read(f, size, elfid.Options{MaxBytes: maxStructureBytes, Needles: h.needles, SkipGoSections: true})
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
	args, _, err := procstat.Cmdline(h.procRoot, e.PID, e.StartBootTimeNs, maxCmdlineBytes)
	return args, err
}
