// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// The pure decoders (internal/event, internal/wire) and the receiver
// spell the kernel's constants in Go; bpf2go generated the same ones from
// the enums of bpf/mitmexec.h. Every constant user space relies on must
// equal the C's.
func TestABIMatchesC(t *testing.T) {
	for _, c := range []struct {
		name    string
		goV, cV uint64
	}{
		{"COMM_LEN", event.CommLen, uint64(mitmexecLimitCOMM_LEN)},
		{"NAME_LEN", event.NameLen, uint64(mitmexecLimitNAME_LEN)},
		{"STR_LEN", event.StrLen, uint64(mitmexecLimitSTR_LEN)},
		{"PATH_BUF_LEN", event.PathBufLen, uint64(mitmexecLimitPATH_BUF_LEN)},
		{"ARGS_LEN", event.ArgsLen, uint64(mitmexecLimitARGS_LEN)},
		{"ARGS_HEAD", event.ArgsHead, uint64(mitmexecLimitARGS_HEAD)},
		{"HEAD_LEN", event.HeadLen, uint64(mitmexecLimitHEAD_LEN)},
		{"ANCESTORS", event.MaxAncestors, uint64(mitmexecLimitANCESTORS)},
		{"KEY_NAME_LEN", uint64(len(mitmexecNameKey{}.Name)), uint64(mitmexecLimitKEY_NAME_LEN)},
		{"FRAME_CAP", wire.CaptureBytes, uint64(mitmexecLimitFRAME_CAP)},
		{"DEVICE_LEN", uint64(len(mitmexecFrameEvent{}.Device)), uint64(mitmexecLimitDEVICE_LEN)},

		{"VERDICT_BENIGN", uint64(event.VerdictBenign), uint64(mitmexecVerdictKindVERDICT_BENIGN)},
		{"VERDICT_TOOL", uint64(event.VerdictTool), uint64(mitmexecVerdictKindVERDICT_TOOL)},
		{"VERDICT_INTERPRETER", uint64(event.VerdictInterpreter), uint64(mitmexecVerdictKindVERDICT_INTERPRETER)},
		{"VERDICT_SHELL", uint64(event.VerdictShell), uint64(mitmexecVerdictKindVERDICT_SHELL)},
		{"VERDICT_LOADER", uint64(event.VerdictLoader), uint64(mitmexecVerdictKindVERDICT_LOADER)},
		{"ACTION_ALERT", uint64(event.ActionAlert), uint64(mitmexecVerdictActionACTION_ALERT)},
		{"ACTION_KILL", uint64(event.ActionKill), uint64(mitmexecVerdictActionACTION_KILL)},

		{"REASON_VERDICT_TOOL", uint64(event.ReasonVerdictTool), uint64(mitmexecExecReasonREASON_VERDICT_TOOL)},
		{"REASON_NAME", uint64(event.ReasonName), uint64(mitmexecExecReasonREASON_NAME)},
		{"REASON_FINGERPRINT", uint64(event.ReasonFingerprint), uint64(mitmexecExecReasonREASON_FINGERPRINT)},
		{"REASON_INTERPRETER", uint64(event.ReasonInterpreter), uint64(mitmexecExecReasonREASON_INTERPRETER)},
		{"REASON_UNKNOWN", uint64(event.ReasonUnknown), uint64(mitmexecExecReasonREASON_UNKNOWN)},
		{"REASON_SUBMIT_ALL", uint64(event.ReasonSubmitAll), uint64(mitmexecExecReasonREASON_SUBMIT_ALL)},

		{"FLAG_ARGS_TRUNCATED", uint64(event.FlagArgsTruncated), uint64(mitmexecExecFlagFLAG_ARGS_TRUNCATED)},
		{"FLAG_SCRIPT", uint64(event.FlagScript), uint64(mitmexecExecFlagFLAG_SCRIPT)},
		{"FLAG_INTERACTIVE", uint64(event.FlagInteractive), uint64(mitmexecExecFlagFLAG_INTERACTIVE)},
		{"FLAG_KILLED", uint64(event.FlagKilled), uint64(mitmexecExecFlagFLAG_KILLED)},
		{"FLAG_KILL_FAILED", uint64(event.FlagKillFailed), uint64(mitmexecExecFlagFLAG_KILL_FAILED)},
		{"FLAG_EXE_PATH_TRUNCATED", uint64(event.FlagExePathTruncated), uint64(mitmexecExecFlagFLAG_EXE_PATH_TRUNCATED)},
		{"FLAG_CWD_TRUNCATED", uint64(event.FlagCwdTruncated), uint64(mitmexecExecFlagFLAG_CWD_TRUNCATED)},
		{"FLAG_CGROUP_TRUNCATED", uint64(event.FlagCgroupTruncated), uint64(mitmexecExecFlagFLAG_CGROUP_TRUNCATED)},
		{"FLAG_DENIED", uint64(event.FlagDenied), uint64(mitmexecExecFlagFLAG_DENIED)},
		{"FLAG_ARGS_ELIDED", uint64(event.FlagArgsElided), uint64(mitmexecExecFlagFLAG_ARGS_ELIDED)},
		{"FLAG_UNTRUSTED_FS", uint64(event.FlagUntrustedFS), uint64(mitmexecExecFlagFLAG_UNTRUSTED_FS)},
		{"FLAG_LOADER_LISTS", uint64(event.FlagLoaderLists), uint64(mitmexecExecFlagFLAG_LOADER_LISTS)},

		{"COUNTER_EXECS", event.CounterExecs, uint64(mitmexecCounterCOUNTER_EXECS)},
		{"COUNTER_SUBMITTED", event.CounterSubmitted, uint64(mitmexecCounterCOUNTER_SUBMITTED)},
		{"COUNTER_RESERVE_FAILED", event.CounterReserveFailed, uint64(mitmexecCounterCOUNTER_RESERVE_FAILED)},
		{"COUNTER_KILLS", event.CounterKills, uint64(mitmexecCounterCOUNTER_KILLS)},
		{"COUNTER_MAX", event.NumCounters, uint64(mitmexecCounterCOUNTER_MAX)},
		{"ANCESTOR_FROM_FORK_TABLE", event.AncestorFromForkTable, uint64(mitmexecAncestorFlagANCESTOR_FROM_FORK_TABLE)},

		{"FRAME_LINK_HEADER", wire.FlagLinkHeader, uint64(mitmexecFrameFlagFRAME_LINK_HEADER)},
		{"FRAME_TX_RING", wire.FlagTxRing, uint64(mitmexecFrameFlagFRAME_TX_RING)},
		{"FRAME_QDISC_BYPASS", wire.FlagQdiscBypass, uint64(mitmexecFrameFlagFRAME_QDISC_BYPASS)},
		{"FRAME_DEVICE_NAME", wire.FlagDeviceName, uint64(mitmexecFrameFlagFRAME_DEVICE_NAME)},
		{"FRAME_DENIED", wire.FlagDenied, uint64(mitmexecFrameFlagFRAME_DENIED)},
		{"FRAME_BEFORE_SEND", wire.FlagBeforeSend, uint64(mitmexecFrameFlagFRAME_BEFORE_SEND)},
		{"FRAME_KERNEL_LIE", wire.FlagKernelLie, uint64(mitmexecFrameFlagFRAME_KERNEL_LIE)},
		{"FCOUNTER_SENDS", wire.CounterSends, uint64(mitmexecFrameCounterFCOUNTER_SENDS)},
		{"FCOUNTER_SUBMITTED", wire.CounterSubmitted, uint64(mitmexecFrameCounterFCOUNTER_SUBMITTED)},
		{"FCOUNTER_RESERVE_FAILED", wire.CounterReserveFailed, uint64(mitmexecFrameCounterFCOUNTER_RESERVE_FAILED)},
		{"FCOUNTER_UNREADABLE", wire.CounterUnreadable, uint64(mitmexecFrameCounterFCOUNTER_UNREADABLE)},
		{"FCOUNTER_DENIED", wire.CounterDenied, uint64(mitmexecFrameCounterFCOUNTER_DENIED)},
	} {
		if c.goV != c.cV {
			t.Errorf("%s: Go says %d, bpf/mitmexec.h %d", c.name, c.goV, c.cV)
		}
	}
}
