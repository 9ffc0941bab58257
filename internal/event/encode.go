// SPDX-License-Identifier: Apache-2.0

package event

import "strings"

// Encode writes e in the kernel's record layout. It is the inverse of
// Decode for fields the kernel fills, and serves fake exec sources in tests
// and benchmarks; strings longer than their field are cut like the kernel
// cuts them.
func Encode(e *Exec) []byte {
	b := make([]byte, RecordSize)
	le.PutUint64(b[offKtimeBootNs:], e.BootTimeNs)
	le.PutUint64(b[offStartBoottimeNs:], e.StartBootTimeNs)
	le.PutUint64(b[offCgroupID:], e.CgroupID)
	le.PutUint64(b[offIno:], e.File.Ino)
	le.PutUint64(b[offCtimeNs:], e.File.CtimeNs)
	le.PutUint32(b[offDev:], e.File.Dev)
	le.PutUint64(b[offSize:], e.Size)
	le.PutUint32(b[offNlink:], e.Nlink)
	for off, v := range map[int]uint32{offTgid: e.PID, offTid: e.TID, offVpid: e.VPID, offPpid: e.PPID, offUID: e.UID,
		offEUID: e.EUID, offGID: e.GID, offEGID: e.EGID, offLoginUID: e.LoginUID, offPidNS: e.PidNS, offMntNS: e.MntNS,
		offReasons: uint32(e.Reasons), offFlags: uint32(e.Flags), offArgsTotal: e.ArgsTotal} {
		le.PutUint32(b[off:], v)
	}
	le.PutUint16(b[offToolID:], e.KernelToolID)
	copy(b[offComm:offComm+CommLen-1], e.Comm)
	putString(b, offName, NameLen, offNameLen, e.Name)
	putString(b, offFilename, StrLen, offFilenameLen, e.Filename)
	putString(b, offInterp, StrLen, offInterpLen, e.Interpreter)
	copy(b[offHead:offHead+HeadLen], e.Head[:])
	putPath(b, offExePath, offExePathLen, e.ExePath)
	putPath(b, offCwd, offCwdLen, e.Cwd)
	putPath(b, offCgroup, offCgroupLen, e.Cgroup)
	n := min(len(e.Ancestors), MaxAncestors)
	b[offAncestorsN] = byte(n)
	for i := 0; i < n; i++ {
		a := b[offAncestors+i*ancestorSize:]
		le.PutUint32(a, e.Ancestors[i].PID)
		le.PutUint64(a[8:], e.Ancestors[i].StartBootTime)
		if e.Ancestors[i].Exited {
			le.PutUint32(a[4:], AncestorFromForkTable)
		}
		copy(a[16:16+CommLen-1], e.Ancestors[i].Comm)
	}
	var args []byte
	for _, a := range e.Args {
		args = append(append(args, a...), 0)
	}
	if e.Has(FlagArgsElided) {
		// the kernel cuts argv's start inside an argument: no NUL ends it
		args = args[:min(max(len(args)-1, 0), ArgsHead)]
		le.PutUint32(b[offArgsHeadLen:], uint32(len(args)))
		for _, a := range e.ArgsTail {
			args = append(append(args, a...), 0)
		}
	}
	if len(args) > ArgsLen-1 {
		args = args[:ArgsLen-1]
	}
	if !e.Has(FlagArgsElided) {
		le.PutUint32(b[offArgsHeadLen:], uint32(len(args)))
	}
	copy(b[offArgs:], args)
	le.PutUint32(b[offArgsLen:], uint32(len(args)))
	return b
}

func putString(b []byte, off, size, lenOff int, s string) {
	if s == "" {
		return
	}
	if len(s) > size-1 {
		s = s[:size-1]
	}
	copy(b[off:], s)
	le.PutUint16(b[lenOff:], uint16(len(s)+1))
}

// putPath writes an absolute path leaf first, as the kernel's dentry walk does.
func putPath(b []byte, off, lenOff int, p string) {
	if p == "" {
		return
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	var s []byte
	if p == "/" {
		s = []byte("/\x00")
	}
	for i := len(parts) - 1; i >= 0 && p != "/"; i-- {
		s = append(append(s, parts[i]...), 0)
	}
	if len(s) > PathBufLen {
		s = s[:PathBufLen]
	}
	copy(b[off:], s)
	le.PutUint16(b[lenOff:], uint16(len(s)))
}
