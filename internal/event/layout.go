// SPDX-License-Identifier: Apache-2.0

package event

// The wire layout of struct exec_event in bpf/mitmexec.h, little endian,
// naturally aligned. internal/tracer's tests compare every offset and
// constant here with what bpf2go generated from the C.
const (
	CommLen      = 16
	NameLen      = 64
	StrLen       = 256
	HeadLen      = 256
	PathBufLen   = 768
	ArgsLen      = 4096
	ArgsHead     = 2048 // ARGS_HEAD: with FlagArgsElided, bytes kept from argv's start
	MaxAncestors = 8
	ancestorSize = 32

	// AncestorFromForkTable is ANCESTOR_FROM_FORK_TABLE: the ancestor
	// came from the fork table, its process had exited.
	AncestorFromForkTable = 1

	offKtimeBootNs     = 0
	offStartBoottimeNs = 8
	offCgroupID        = 16
	offIno             = 24
	offCtimeNs         = 32
	offSize            = 40
	offDev             = 48
	offNlink           = 52
	offTgid            = 56
	offTid             = 60
	offVpid            = 64
	offPpid            = 68
	offUID             = 72
	offEUID            = 76
	offGID             = 80
	offEGID            = 84
	offLoginUID        = 88
	offPidNS           = 92
	offMntNS           = 96
	offReasons         = 100
	offFlags           = 104
	offArgsLen         = 108
	offArgsTotal       = 112
	offToolID          = 116
	offFilenameLen     = 118
	offInterpLen       = 120
	offNameLen         = 122
	offExePathLen      = 124
	offCwdLen          = 126
	offCgroupLen       = 128
	offAncestorsN      = 130
	offComm            = 132
	offName            = offComm + CommLen
	offFilename        = offName + NameLen
	offInterp          = offFilename + StrLen
	offHead            = offInterp + StrLen
	offArgsHeadLen     = offHead + HeadLen
	offAncestors       = offArgsHeadLen + 4
	offExePath         = offAncestors + MaxAncestors*ancestorSize
	offCwd             = offExePath + PathBufLen
	offCgroup          = offCwd + PathBufLen
	offArgs            = offCgroup + PathBufLen

	// RecordSize is sizeof(struct exec_event).
	RecordSize = offArgs + ArgsLen
)

// Offsets returns the field offsets, for the tracer's layout test.
func Offsets() map[string]int {
	return map[string]int{
		"KtimeBootNs": offKtimeBootNs, "StartBoottimeNs": offStartBoottimeNs, "CgroupId": offCgroupID,
		"Ino": offIno, "CtimeNs": offCtimeNs, "Size": offSize, "Dev": offDev, "Nlink": offNlink,
		"Tgid": offTgid, "Tid": offTid, "Vpid": offVpid, "Ppid": offPpid, "Uid": offUID, "Euid": offEUID,
		"Gid": offGID, "Egid": offEGID, "Loginuid": offLoginUID, "Pidns": offPidNS, "Mntns": offMntNS,
		"Reasons": offReasons, "Flags": offFlags, "ArgsLen": offArgsLen, "ArgsTotal": offArgsTotal,
		"ToolId": offToolID, "FilenameLen": offFilenameLen, "InterpLen": offInterpLen, "NameLen": offNameLen,
		"ExePathLen": offExePathLen, "CwdLen": offCwdLen, "CgroupLen": offCgroupLen, "AncestorsN": offAncestorsN,
		"Comm": offComm, "Name": offName, "Filename": offFilename, "Interp": offInterp, "Head": offHead,
		"ArgsHeadLen": offArgsHeadLen, "Ancestors": offAncestors, "ExePath": offExePath, "Cwd": offCwd, "Cgroup": offCgroup, "Args": offArgs,
	}
}

// Verdict kinds, actions, reasons, flags and counters: the enums of the same
// names in bpf/mitmexec.h (checked by internal/tracer's TestABIMatchesC).
const (
	VerdictBenign      uint8 = 1
	VerdictTool        uint8 = 2
	VerdictInterpreter uint8 = 3
	// VerdictShell: an interpreter whose `-c` and argument-less runs the
	// kernel skips (the commands they start are exec'd and judged anyway).
	VerdictShell uint8 = 4
	// VerdictLoader: the dynamic loader, whose library listings (ldd) the
	// kernel skips.
	VerdictLoader uint8 = 5

	ActionAlert uint8 = 0
	ActionKill  uint8 = 1
)

// Reason says why the kernel sent a record up.
type Reason uint32

const (
	ReasonVerdictTool Reason = 1 << 0 // the file identity has a cached tool verdict
	ReasonName        Reason = 1 << 1 // the loaded file's name is in the kernel's name table
	ReasonFingerprint Reason = 1 << 2 // the first bytes, section-header fields masked, equal a known tool build's
	ReasonInterpreter Reason = 1 << 3 // an interpreter: its arguments decide
	ReasonUnknown     Reason = 1 << 4 // first sight of this file identity
	ReasonSubmitAll   Reason = 1 << 5 // debug mode: every exec goes up
)

// Flag describes a record.
type Flag uint32

const (
	FlagArgsTruncated    Flag = 1 << 0
	FlagScript           Flag = 1 << 1 // a binfmt handler replaced the interpreter (shebang, binfmt_misc)
	FlagInteractive      Flag = 1 << 2 // a controlling tty
	FlagKilled           Flag = 1 << 3 // SIGKILL sent from the exec hook
	FlagKillFailed       Flag = 1 << 4
	FlagExePathTruncated Flag = 1 << 5
	FlagCwdTruncated     Flag = 1 << 6
	FlagCgroupTruncated  Flag = 1 << 7
	FlagDenied           Flag = 1 << 8 // refused by the LSM hook: the exec never happened
	// FlagArgsElided: argv was longer than the capture, which kept its
	// start and its end (Exec.Args and Exec.ArgsTail) and left out the middle.
	FlagArgsElided Flag = 1 << 9
	// FlagUntrustedFS: the file is on FUSE, whose server picks inode
	// numbers and times and may serve other bytes to another reader: no
	// verdict on its identity is cached.
	FlagUntrustedFS Flag = 1 << 10
	// FlagLoaderLists: LD_TRACE_LOADED_OBJECTS is set in the new
	// program's environment, so a glibc loader lists the libraries of the
	// program it names and runs none of it (ldd). Set on first sights; a
	// cached loader verdict decides this in the kernel.
	FlagLoaderLists Flag = 1 << 11
)

// Indexes of the kernel's per-CPU counters.
const (
	CounterExecs         = 0
	CounterSubmitted     = 1
	CounterReserveFailed = 2
	CounterKills         = 3
	NumCounters          = 8
)
