// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/mitmexec/mitmexec/internal/cicd"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/origin"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// detectionRecord is everything one detection record says; appendDetection
// writes it under the contract's names (internal/record, docs/record.md).
type detectionRecord struct {
	Exec        event.Exec
	Detection   detect.Detection
	SHA256      string // of the loaded file, when the rule computed it
	Context     enrich.Context
	Time        time.Time      // wall time of the exec
	Outcome     record.Outcome // what was done to the process; "" is record.OutcomeAlerted
	RepeatCount int            // >1 when repeats were folded into this record
	// SummarizedCount is how many detections the records-per-second
	// ceiling held back since the previous record went out.
	SummarizedCount int
	ActionDelay     time.Duration // for killed_late: from the exec to the kill
	CI              cicd.Context  // the CI job the process ran in (cicd.go)
	Wire            *wireClaim    // the lie a behaviour record reports (behaviour.go), nil for an exec
	Origin          origin.Origin // the code that started it (origin.go)
}

// resourceInfo describes the host the records come from.
type resourceInfo struct {
	HostName, HostID, OSType, ServiceName string
	// The stream, node and pod (resource.go).
	ServiceInstanceID, NodeName string
	Pod                         podResource
	pods                        podLookup
}

// newLogs returns logs with one ResourceLogs for res and one ScopeLogs named
// after the receiver, and that scope's record slice to append to.
func newLogs(res resourceInfo) (plog.Logs, plog.LogRecordSlice) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	attrs := rl.Resource().Attributes()
	attrs.PutStr(record.AttrHostName, res.HostName)
	putStrIf(attrs, record.AttrHostID, res.HostID)
	putStrIf(attrs, record.AttrOSType, res.OSType)
	service := res.ServiceName
	if service == "" {
		service = metadata.Type.String()
	}
	attrs.PutStr(record.AttrServiceName, service)
	res.putNode(attrs)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	return ld, sl.LogRecords()
}

// appendDetection appends r to sl as one log record. observed is when the
// receiver made the record; maxArgsBytes bounds argv (NUL-joined bytes).
func appendDetection(sl plog.LogRecordSlice, r *detectionRecord, observed time.Time, maxArgsBytes int) {
	lr := sl.AppendEmpty()
	lr.SetEventName(record.EventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	lr.SetSeverityNumber(plog.SeverityNumberFatal)
	lr.SetSeverityText(record.SeverityText)

	toolName, toolTechnique := "", ""
	if t := r.Detection.Tool; t != nil {
		toolName, toolTechnique = t.Name, t.Technique
	}

	a := lr.Attributes()
	a.EnsureCapacity(40)
	putRule(a)
	putStrIf(a, record.AttrToolName, toolName)
	putStrIf(a, record.AttrToolTechniqueID, toolTechnique)
	putStrIf(a, record.AttrMatch, string(r.Detection.Match))
	putStrIf(a, record.AttrMatchDetail, r.Detection.Detail)
	argsCut := putProcess(a, r, maxArgsBytes)
	putExecutable(a, r, argsCut)
	putCI(a, r.CI)
	putWire(a, r.Wire)
	putOrigin(a, r.Origin)
	putOutcome(a, r)

	lr.Body().SetStr(recordBody(r, toolName))
	sanitizeUTF8(lr)
}

// putRule adds the rule every record reports, and its place in ATT&CK.
func putRule(a pcommon.Map) {
	a.PutStr(record.AttrRuleName, record.RuleName)
	a.PutStr(record.AttrRuleCategory, record.RuleCategory)
	a.PutStr(record.AttrRuleDescription, record.RuleDescription)
	a.PutStr(record.AttrRulesetName, record.RulesetName)
	a.PutStr(record.AttrThreatFramework, record.ThreatFramework)
	a.PutStr(record.AttrTacticName, record.TacticName)
	a.PutStr(record.AttrTacticID, record.TacticID)
	a.PutStr(record.AttrTechniqueName, record.TechniqueName)
	a.PutStr(record.AttrTechniqueID, record.TechniqueID)
}

// putProcess adds the process: its pids, its program, its argv (bounded
// to maxArgsBytes, redacted), its users, where and when it runs. It
// reports whether the bound cut argv.
func putProcess(a pcommon.Map, r *detectionRecord, maxArgsBytes int) bool {
	e := &r.Exec
	a.PutInt(record.AttrPID, int64(e.PID))
	if e.VPID != 0 && e.VPID != e.PID {
		a.PutInt(record.AttrVPID, int64(e.VPID))
	}
	a.PutInt(record.AttrParentPID, int64(e.PPID))
	exeName := e.Name
	if e.ExePath != "" {
		exeName = filepath.Base(e.ExePath)
	}
	putStrIf(a, record.AttrExecutablePath, e.ExePath)
	putStrIf(a, record.AttrExecutableName, exeName)

	args, cut := boundCaptured(redactArgs(capturedArgs(e), e.Has(event.FlagArgsTruncated)), len(e.ArgsTail), maxArgsBytes)
	if len(args) > 0 {
		putStrs(a, record.AttrCommandArgs, args)
		a.PutStr(record.AttrCommandLine, strings.Join(args, " "))
	}
	a.PutInt(record.AttrUserID, int64(e.EUID))
	a.PutInt(record.AttrRealUserID, int64(e.UID))
	// The audit login uid survives su and sudo: who logged in, whatever
	// user the tool now runs as. (uid_t)-1 means no login session (services).
	if e.LoginUID != 0xffffffff {
		a.PutInt(record.AttrLoginUserID, int64(e.LoginUID))
	}
	putStrIf(a, record.AttrOwner, r.Context.Owner)
	putStrIf(a, record.AttrWorkingDirectory, e.Cwd)
	a.PutBool(record.AttrInteractive, e.Has(event.FlagInteractive))
	putStrIf(a, record.AttrCgroup, e.Cgroup)
	if t, ok := processStart(r); ok {
		a.PutStr(record.AttrCreationTime, t.UTC().Format(time.RFC3339Nano))
	}
	return cut
}

// putExecutable adds what was exec'd and the file it loaded, what the
// kernel cut, the ancestry and the container. argsCut: the record's bound
// cut argv.
func putExecutable(a pcommon.Map, r *detectionRecord, argsCut bool) {
	e := &r.Exec
	putStrIf(a, record.AttrExecFilename, e.Filename)
	putStrIf(a, record.AttrExecInterpreter, e.Interpreter)
	putStrIf(a, record.AttrExecutableSHA256, r.Context.SHA256)
	if e.File.Ino != 0 {
		a.PutInt(record.AttrExecutableInode, int64(e.File.Ino))
		a.PutInt(record.AttrExecutableDevice, int64(event.UserDev(e.File.Dev)))
	}
	// Always said: "not truncated" is as true and as useful as "truncated".
	a.PutBool(record.AttrArgsTruncated, argsCut || e.Has(event.FlagArgsTruncated))
	putTruncatedPaths(a, e)
	putStrIf(a, record.AttrParentExecutable, r.Context.ParentExecutable)
	if len(r.Context.Ancestors) > 0 {
		putStrs(a, record.AttrAncestors, r.Context.Ancestors)
	}
	putStrIf(a, record.AttrContainerID, r.Context.ContainerID)
}

// putOutcome adds the namespaces and what was done: the outcome, how late
// a kill came, how many detections the record stands for.
func putOutcome(a pcommon.Map, r *detectionRecord) {
	if r.Exec.PidNS != 0 {
		a.PutInt(record.AttrNamespacePID, int64(r.Exec.PidNS))
	}
	if r.Exec.MntNS != 0 {
		a.PutInt(record.AttrNamespaceMnt, int64(r.Exec.MntNS))
	}
	outcome := r.Outcome
	if outcome == "" {
		outcome = record.OutcomeAlerted
	}
	a.PutStr(record.AttrAction, string(outcome))
	if r.ActionDelay > 0 {
		a.PutDouble(record.AttrActionDelay, float64(r.ActionDelay.Microseconds())/1000)
	}
	if r.RepeatCount > 1 {
		a.PutInt(record.AttrRepeatCount, int64(r.RepeatCount))
	}
	if r.SummarizedCount > 0 {
		a.PutInt(record.AttrSummarizedCount, int64(r.SummarizedCount))
	}
}

// putStrs sets a string slice attribute.
func putStrs(m pcommon.Map, k string, v []string) {
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(v))
	for _, el := range v {
		s.AppendEmpty().SetStr(el)
	}
}

// capturedArgs is argv as the kernel captured it: where it left out the
// middle of a long argv, one argument says how much is missing.
func capturedArgs(e *event.Exec) []string {
	if !e.Has(event.FlagArgsElided) {
		return e.Args
	}
	kept := 0
	for _, a := range e.Args {
		kept += len(a) + 1
	}
	for _, a := range e.ArgsTail {
		kept += len(a) + 1
	}
	out := make([]string, 0, len(e.Args)+len(e.ArgsTail)+1)
	out = append(out, e.Args...)
	out = append(out, fmt.Sprintf("[%d bytes not captured]", max(int(e.ArgsTotal)-kept, 0)))
	return append(out, e.ArgsTail...)
}

// sanitizeUTF8 escapes bytes that are not UTF-8 as \xNN. Paths and argv are
// bytes to the kernel, but OTLP strings must be UTF-8: a backend may refuse
// the whole batch otherwise, and the escape keeps the original recoverable.
func sanitizeUTF8(lr plog.LogRecord) {
	fix := func(v pcommon.Value) {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			if !utf8.ValidString(v.Str()) {
				v.SetStr(escapeInvalidUTF8(v.Str()))
			}
		case pcommon.ValueTypeSlice:
			for i := 0; i < v.Slice().Len(); i++ {
				if el := v.Slice().At(i); el.Type() == pcommon.ValueTypeStr && !utf8.ValidString(el.Str()) {
					el.SetStr(escapeInvalidUTF8(el.Str()))
				}
			}
		}
	}
	lr.Attributes().Range(func(_ string, v pcommon.Value) bool {
		fix(v)
		return true
	})
	fix(lr.Body())
}

func escapeInvalidUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// recordBody is the record's one readable line:
// "MitM tool executed: ettercap (/usr/bin/ettercap) pid 4242 uid 0 parent bash (4100)".
func recordBody(r *detectionRecord, toolName string) string {
	e := &r.Exec
	if toolName == "" {
		toolName = "unknown"
	}
	exe := e.ExePath
	if exe == "" {
		exe = e.Filename
	}
	body := fmt.Sprintf("MitM tool executed: %s (%s) pid %d uid %d parent %s (%d)",
		toolName, exe, e.PID, e.EUID, parentName(r), e.PPID)
	if r.Wire != nil {
		body += "; on the wire: " + r.Detection.Detail
	}
	return body
}

// parentName is the parent's comm as the kernel saw it at the exec, else the
// base name of its executable.
func parentName(r *detectionRecord) string {
	if anc := r.Exec.Ancestors; len(anc) > 0 && anc[0].PID == r.Exec.PPID && anc[0].Comm != "" {
		return anc[0].Comm
	}
	if p := r.Context.ParentExecutable; p != "" {
		return filepath.Base(p)
	}
	return "unknown"
}

// processStart converts the process's start (CLOCK_BOOTTIME) to wall time
// with the same offset as the exec's: both come from the kernel's boot
// clock, and r.Time is the exec's boot time converted already.
func processStart(r *detectionRecord) (time.Time, bool) {
	e := &r.Exec
	if r.Time.IsZero() || e.StartBootTimeNs == 0 || e.StartBootTimeNs > e.BootTimeNs {
		return time.Time{}, false
	}
	return r.Time.Add(-time.Duration(e.BootTimeNs - e.StartBootTimeNs)), true
}

// boundArgs cuts args so that their NUL-joined size (each argument and its
// terminating NUL, as the kernel captures argv) fits maxBytes; the argument
// that crosses the bound is kept as far as it fits, cut before a
// character that crosses it. It reports whether anything was cut. maxBytes <= 0 means the
// kernel's bound.
// boundCaptured bounds argv whose last tail arguments are argv's end (the
// kernel kept both ends of a long argv): the start gives way, so the
// program an interpreter runs and the arguments after it stay in the record.
func boundCaptured(args []string, tail, maxBytes int) ([]string, bool) {
	if tail == 0 || tail >= len(args) {
		return boundArgs(args, maxBytes)
	}
	if maxBytes <= 0 {
		maxBytes = event.ArgsLen
	}
	end := append([]string(nil), args[len(args)-tail-1:]...) // the gap's marker and the tail
	endBytes := 0
	for _, a := range end {
		endBytes += len(a) + 1
	}
	// The first tail argument is cut at its start by the kernel already;
	// it gives way first, from its start, keeping a little of the head.
	const keepHead = 256
	if over := endBytes - (maxBytes - keepHead); over > 0 && len(end) > 1 {
		first := end[1]
		cut := min(over, len(first))
		for cut < len(first) && !utf8.RuneStart(first[cut]) {
			cut++
		}
		end[1] = first[cut:]
		endBytes -= cut
	}
	if endBytes >= maxBytes {
		return boundArgs(args, maxBytes)
	}
	head, _ := boundArgs(args[:len(args)-tail-1], maxBytes-endBytes)
	return append(head[:len(head):len(head)], end...), true
}

func boundArgs(args []string, maxBytes int) ([]string, bool) {
	if maxBytes <= 0 {
		maxBytes = event.ArgsLen
	}
	used := 0
	for i, a := range args {
		if used+len(a)+1 <= maxBytes {
			used += len(a) + 1
			continue
		}
		room := maxBytes - used - 1 // leave the NUL
		out := args[:i:i]
		// Back up over continuation bytes so that a multi-byte character
		// is not split (at most UTF-8's three).
		for k := 0; k < utf8.UTFMax-1 && room > 0 && !utf8.RuneStart(a[room]); k++ {
			room--
		}
		if room > 0 {
			out = append(out, a[:room])
		}
		return out, true
	}
	return args, false
}

// putStrIf sets a string attribute unless v is empty: an attribute with
// nothing true to say is left out.
func putStrIf(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// putTruncatedPaths names the paths the kernel cut at its depth bound (the
// innermost components kept): shown as if whole, they would name another
// place. None of them ever satisfies an allow-list entry.
func putTruncatedPaths(a pcommon.Map, e *event.Exec) {
	var names []string
	for _, p := range []struct {
		flag event.Flag
		name string
	}{{event.FlagExePathTruncated, "executable"}, {event.FlagCwdTruncated, "working_directory"}, {event.FlagCgroupTruncated, "cgroup"}} {
		if e.Has(p.flag) {
			names = append(names, p.name)
		}
	}
	if len(names) == 0 {
		return
	}
	putStrs(a, record.AttrPathsTruncated, names)
}
