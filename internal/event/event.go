// SPDX-License-Identifier: Apache-2.0

// Package event turns the kernel's exec records into Exec values. It is pure
// Go without build tags so that decoding is tested and fuzzed anywhere.
package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// FileID is a file's identity as the kernel sees it. Dev is the kernel's
// internal dev_t (major<<20 | minor), not stat(2)'s encoding; see KernelDev.
type FileID struct {
	Dev     uint32
	Ino     uint64
	CtimeNs uint64
}

// KernelDev converts a stat(2) st_dev (glibc's encoding) to the kernel's
// internal dev_t that struct super_block.s_dev holds.
func KernelDev(statDev uint64) uint32 {
	major := uint32((statDev>>8)&0xfff) | uint32((statDev>>32)&^0xfff)
	minor := uint32(statDev&0xff) | uint32((statDev>>12)&^0xff)
	return major<<20 | minor
}

// UserDev converts the kernel's internal dev_t to the encoding stat(2) uses,
// the one users see in `stat -c %d`.
func UserDev(kdev uint32) uint64 {
	major := uint64(kdev >> 20)
	minor := uint64(kdev & 0xfffff)
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

// Verdict is what user space tells the kernel about a file identity, a name
// or a fingerprint.
type Verdict struct {
	Kind   uint8
	Action uint8
	ToolID uint16
}

// Fingerprint is the race-free content signal the exec hook reads: the first
// bytes of the loaded file (bprm->buf), with the ELF header fields that only
// locate section headers masked (MaskELFHead). It survives appended bytes and
// added or removed sections, which move nothing the loader maps.
type Fingerprint struct {
	Head [HeadLen]byte
}

// FingerprintOf returns the fingerprint of a file that starts with head.
func FingerprintOf(head []byte) Fingerprint {
	var fp Fingerprint
	copy(fp.Head[:], head)
	MaskELFHead(&fp.Head)
	return fp
}

// MaskELFHead zeroes e_shoff, e_shnum and e_shstrndx, as mask_elf_head in
// bpf/mitmexec.bpf.c does (keep in sync).
func MaskELFHead(h *[HeadLen]byte) {
	if h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F' {
		return
	}
	switch h[4] {
	case 2: // ELFCLASS64
		clear(h[0x28:0x30])
		clear(h[0x3c:0x40])
	case 1: // ELFCLASS32
		clear(h[0x20:0x24])
		clear(h[0x30:0x34])
	}
}

// Ancestor is one process up the real_parent chain at the time of the exec.
type Ancestor struct {
	PID           uint32
	StartBootTime uint64
	Comm          string
	// Exited: the kernel's fork table named this ancestor because it had
	// exited before the exec and its child was reparented.
	Exited bool
}

// Exec is one exec the kernel sent up.
type Exec struct {
	BootTimeNs      uint64 // bpf_ktime_get_boot_ns at the exec
	StartBootTimeNs uint64 // process start, CLOCK_BOOTTIME
	CgroupID        uint64
	File            FileID
	Size            uint64
	Nlink           uint32
	PID             uint32 // host tgid
	TID             uint32
	VPID            uint32 // tgid inside the process's own pid namespace
	PPID            uint32 // host tgid of the real parent
	UID, EUID       uint32
	GID, EGID       uint32
	LoginUID        uint32
	PidNS, MntNS    uint32
	Reasons         Reason
	Flags           Flag
	KernelToolID    uint16
	Comm            string
	Name            string // dentry name of the loaded file
	Filename        string // the path as passed to execve (bprm->filename)
	Interpreter     string // bprm->interp when a binfmt handler changed it
	Head            [HeadLen]byte
	ExePath         string // full path of the loaded file, from the host's root
	Cwd             string
	Cgroup          string // cgroup v2 path, "/" for the root
	Args            []string
	// ArgsTail is the end of argv when FlagArgsElided is set: its first
	// element is cut at the start, as Args' last one is at the end.
	ArgsTail  []string
	ArgsTotal uint32 // bytes of argv the process had
	Ancestors []Ancestor
}

// Has reports whether f is set.
func (e *Exec) Has(f Flag) bool { return e.Flags&f != 0 }

// Fingerprint returns the record's content fingerprint.
func (e *Exec) Fingerprint() Fingerprint { return Fingerprint{Head: e.Head} }

// Deleted reports a file with no links left: a memfd, or a file unlinked
// before or while it ran.
func (e *Exec) Deleted() bool { return e.Nlink == 0 }

var le = binary.LittleEndian

// Decode parses one ring-buffer record. Every length the kernel reports is
// checked against its field, so a short, long or corrupt record is an error,
// never a panic or an out-of-bounds read.
func Decode(b []byte) (Exec, error) {
	var e Exec
	if len(b) != RecordSize {
		return e, fmt.Errorf("exec record is %d bytes, want %d", len(b), RecordSize)
	}
	e.BootTimeNs = le.Uint64(b[offKtimeBootNs:])
	e.StartBootTimeNs = le.Uint64(b[offStartBoottimeNs:])
	e.CgroupID = le.Uint64(b[offCgroupID:])
	e.File = FileID{Dev: le.Uint32(b[offDev:]), Ino: le.Uint64(b[offIno:]), CtimeNs: le.Uint64(b[offCtimeNs:])}
	e.Size = le.Uint64(b[offSize:])
	e.Nlink = le.Uint32(b[offNlink:])
	e.PID = le.Uint32(b[offTgid:])
	e.TID = le.Uint32(b[offTid:])
	e.VPID = le.Uint32(b[offVpid:])
	e.PPID = le.Uint32(b[offPpid:])
	e.UID = le.Uint32(b[offUID:])
	e.EUID = le.Uint32(b[offEUID:])
	e.GID = le.Uint32(b[offGID:])
	e.EGID = le.Uint32(b[offEGID:])
	e.LoginUID = le.Uint32(b[offLoginUID:])
	e.PidNS = le.Uint32(b[offPidNS:])
	e.MntNS = le.Uint32(b[offMntNS:])
	e.Reasons = Reason(le.Uint32(b[offReasons:]))
	e.Flags = Flag(le.Uint32(b[offFlags:]))
	e.KernelToolID = le.Uint16(b[offToolID:])
	e.ArgsTotal = le.Uint32(b[offArgsTotal:])

	var err error
	if e.Comm, err = cstring(b[offComm:offComm+CommLen], CommLen, "comm"); err != nil {
		return e, err
	}
	if e.Name, err = lenString(b, offName, NameLen, le.Uint16(b[offNameLen:]), "name"); err != nil {
		return e, err
	}
	if e.Filename, err = lenString(b, offFilename, StrLen, le.Uint16(b[offFilenameLen:]), "filename"); err != nil {
		return e, err
	}
	if e.Has(FlagScript) {
		if e.Interpreter, err = lenString(b, offInterp, StrLen, le.Uint16(b[offInterpLen:]), "interp"); err != nil {
			return e, err
		}
	}
	copy(e.Head[:], b[offHead:offHead+HeadLen])
	if e.ExePath, err = reversedPath(b, offExePath, le.Uint16(b[offExePathLen:]), "exe_path"); err != nil {
		return e, err
	}
	if e.Cwd, err = reversedPath(b, offCwd, le.Uint16(b[offCwdLen:]), "cwd"); err != nil {
		return e, err
	}
	if e.Cgroup, err = reversedPath(b, offCgroup, le.Uint16(b[offCgroupLen:]), "cgroup"); err != nil {
		return e, err
	}
	if e.Ancestors, err = decodeAncestors(b); err != nil {
		return e, err
	}
	e.Args, e.ArgsTail, err = decodeArgs(b, e.Has(FlagArgsElided))
	return e, err
}

// decodeAncestors reads the record's ancestry, nearest first.
func decodeAncestors(b []byte) ([]Ancestor, error) {
	n := int(b[offAncestorsN])
	if n > MaxAncestors {
		return nil, fmt.Errorf("exec record ancestors_n is %d, limit %d", n, MaxAncestors)
	}
	var out []Ancestor
	for i := 0; i < n; i++ {
		a := b[offAncestors+i*ancestorSize : offAncestors+(i+1)*ancestorSize]
		comm, err := cstring(a[16:32], CommLen, "ancestor comm")
		if err != nil {
			return out, err
		}
		out = append(out, Ancestor{PID: le.Uint32(a[0:]), StartBootTime: le.Uint64(a[8:]), Comm: comm,
			Exited: le.Uint32(a[4:])&AncestorFromForkTable != 0})
	}
	return out, nil
}

// decodeArgs reads argv: whole, or with FLAG_ARGS_ELIDED its start and its
// end around the middle the kernel left out.
func decodeArgs(b []byte, elided bool) (args, tail []string, err error) {
	argsLen := le.Uint32(b[offArgsLen:])
	if argsLen > ArgsLen {
		return nil, nil, fmt.Errorf("exec record args_len is %d, limit %d", argsLen, ArgsLen)
	}
	if !elided {
		return splitArgs(b[offArgs : offArgs+int(argsLen)]), nil, nil
	}
	headLen := le.Uint32(b[offArgsHeadLen:])
	if headLen > argsLen {
		return nil, nil, fmt.Errorf("exec record args_head_len is %d, args_len %d", headLen, argsLen)
	}
	return splitArgs(b[offArgs : offArgs+int(headLen)]), splitArgs(b[offArgs+int(headLen) : offArgs+int(argsLen)]), nil
}

// cstring reads a NUL-terminated string that fills at most size bytes.
func cstring(b []byte, size int, field string) (string, error) {
	if i := bytes.IndexByte(b[:size], 0); i >= 0 {
		return string(b[:i]), nil
	}
	return "", fmt.Errorf("exec record %s is not NUL-terminated within %d bytes", field, size)
}

// lenString reads a string whose length the kernel reported, NUL included
// (bpf_probe_read_kernel_str's return value); 0 means it could not be read.
func lenString(b []byte, off, size int, n uint16, field string) (string, error) {
	if n == 0 {
		return "", nil
	}
	if int(n) > size {
		return "", fmt.Errorf("exec record %s length is %d, limit %d", field, n, size)
	}
	s := b[off : off+int(n)]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), nil
}

// reversedPath joins the NUL-separated, leaf-first components the kernel
// wrote into an absolute path.
func reversedPath(b []byte, off int, n uint16, field string) (string, error) {
	if n == 0 {
		return "", nil
	}
	if int(n) > PathBufLen {
		return "", fmt.Errorf("exec record %s length is %d, limit %d", field, n, PathBufLen)
	}
	parts := strings.Split(strings.TrimSuffix(string(b[off:off+int(n)]), "\x00"), "\x00")
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if p == "/" || p == "" {
			continue
		}
		sb.WriteByte('/')
		sb.WriteString(p)
	}
	if sb.Len() == 0 {
		return "/", nil
	}
	return sb.String(), nil
}

// splitArgs splits the NUL-separated argv block. A final argument cut by the
// capture bound is kept as far as it was read.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}
