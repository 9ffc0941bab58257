// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
)

// fakeFiles stands in for the host's file system.
type fakeFiles struct {
	execSums   map[event.FileID]string         // hashes of loaded files still readable
	execELF    map[event.FileID]elfid.Identity // their structure
	programELF map[string]elfid.Identity       // programs by path as the exec names them
	scripts    map[string]fakeScript           // scripts by path as the exec names them
	cmdlines   map[uint32][]string             // whole argv of live processes
	environ    map[uint32][]string             // environments of live processes
	dirs       map[string][]string             // directories as the processes see them
}

func (f *fakeFiles) ExecELF(e *event.Exec) (elfid.Identity, error) {
	if s, ok := f.execELF[e.File]; ok {
		return s, nil
	}
	return elfid.Identity{}, errors.New("file is gone")
}

func (f *fakeFiles) ProgramELF(_ *event.Exec, p string) (elfid.Identity, error) {
	if s, ok := f.programELF[p]; ok {
		return s, nil
	}
	return elfid.Identity{}, errors.New("no such program")
}

func (f *fakeFiles) Cmdline(e *event.Exec) ([]string, error) {
	if c, ok := f.cmdlines[e.PID]; ok {
		return c, nil
	}
	return nil, errors.New("process exited")
}

func (f *fakeFiles) Environ(e *event.Exec) ([]string, error) {
	if v, ok := f.environ[e.PID]; ok {
		return v, nil
	}
	return nil, errors.New("process exited")
}

func (f *fakeFiles) ReadDir(_ *event.Exec, dir string, max int) ([]string, error) {
	names, ok := f.dirs[dir]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if len(names) > max {
		return nil, errors.New("too many names")
	}
	return names, nil
}

type fakeScript struct {
	sum  string
	body string
}

func (f *fakeFiles) ExecSHA256(e *event.Exec) (string, error) {
	if s, ok := f.execSums[e.File]; ok {
		return s, nil
	}
	return "", errors.New("file is gone")
}

func (f *fakeFiles) Stdin(e *event.Exec) (string, []byte, error) {
	return f.Script(e, fmt.Sprintf("stdin of %d", e.PID))
}

func (f *fakeFiles) Script(_ *event.Exec, p string) (string, []byte, error) {
	if s, ok := f.scripts[p]; ok {
		return s.sum, []byte(s.body), nil
	}
	return "", nil, errors.New("no such script")
}

// fakeKernel is the kernel's verdict map.
type fakeKernel struct {
	verdicts map[event.FileID]event.Verdict
	puts     int
}

func (k *fakeKernel) PutVerdict(id event.FileID, v event.Verdict) error {
	k.verdicts[id] = v
	k.puts++
	return nil
}

func (k *fakeKernel) PutFingerprint(event.Fingerprint, event.Verdict) error { return nil }
