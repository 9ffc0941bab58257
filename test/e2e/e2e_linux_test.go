// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Package e2e runs the built collector (_build/otelcol-custom, `make otelcol`)
// with the mitmexec receiver against real tools and checks the detection
// records that reach an OTLP/HTTP sink, as docs/record.md
// defines them.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

const (
	ruleName         = "net_mitm_tool_exec"
	techniqueID      = "T1040"
	serviceName      = "mitmexec"
	bodyPrefix       = "MitM tool executed: "
	severityText     = "CRITICAL"
	startTimeout     = 30 * time.Second
	recordTimeout    = 20 * time.Second
	settleTime       = time.Second
	stopGrace        = 10 * time.Second
	toolTimeout      = 30 * time.Second
	timestampSlack   = 2 * time.Second
	defaultCollector = "../../_build/otelcol-custom"
	collectorEnvName = "MITMEXEC_OTELCOL"
	attrToolName     = "mitmexec.tool.name"
	attrRuleName     = "security_rule.name"
	attrTechniqueID  = "threat.technique.id"
	attrPID          = "process.pid"
	attrParentPID    = "process.parent_pid"
	attrExecutable   = "process.executable.path"
	attrUserID       = "process.user.id"
	resAttrHostName  = "host.name"
	resAttrSvcName   = "service.name"
)

// run is one exec of the test.
type run struct {
	name   string   // short name, part of the marker
	tool   string   // expected mitmexec.tool.name; "" means must not be detected
	argv   []string // without the marker, which is appended
	marker string
	pid    int
	start  time.Time
	end    time.Time
}

// execRun runs r with its marker as the last argument; the exit code is
// irrelevant, only a failure to start is an error.
func execRun(t *testing.T, r *run, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	args := append(append([]string(nil), r.argv[1:]...), r.marker)
	var err error
	// A freshly written executable can fail with ETXTBSY while a concurrent
	// fork still holds its write descriptor: retry briefly.
	for attempt := 0; attempt < 20; attempt++ {
		cmd := exec.CommandContext(ctx, r.argv[0], args...)
		cmd.Dir = dir
		cmd.Stdin = nil
		cmd.Stdout = io.Discard
		cmd.Stderr = io.Discard
		r.start = time.Now()
		err = cmd.Start()
		if errors.Is(err, syscall.ETXTBSY) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		require.NoError(t, err, "starting %v", r.argv)
		r.pid = cmd.Process.Pid
		werr := cmd.Wait()
		r.end = time.Now()
		var exitErr *exec.ExitError
		if werr != nil && !errors.As(werr, &exitErr) {
			t.Fatalf("%s: waiting: %v", r.name, werr)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: did not exit within %s", r.name, toolTimeout)
		}
		return
	}
	require.NoError(t, err, "starting %v", r.argv)
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

func describe(r harness.Record) string {
	return fmt.Sprintf("event=%q sev=%d/%q body=%q resource=%v attributes=%v",
		r.Record.EventName(), r.Record.SeverityNumber(), r.Record.SeverityText(),
		r.Record.Body().AsString(), r.Resource.AsRaw(), r.Record.Attributes().AsRaw())
}

func TestEndToEnd(t *testing.T) {
	// GIVEN root (the receiver loads eBPF), the built collector and the tools.
	bin := collectorBinary(t, true)
	requireTools(t, "/usr/bin/ettercap", "/usr/bin/bettercap", "/usr/bin/mitmdump", "/usr/sbin/arpspoof")

	// GIVEN an in-process OTLP/HTTP sink.
	snk, sinkURL := serveSink(t)

	// GIVEN the collector running the mitmexec receiver, exporting to the sink.
	col := launchCollector(t, bin, writeConfig(t, t.TempDir(), harness.ExportConfig("", sinkURL, false)))

	scratch := t.TempDir()
	renamed := filepath.Join(scratch, "backup-agent")
	copyExecutable(t, "/usr/bin/bettercap", renamed)
	benignCopy := filepath.Join(scratch, "mitmdumpx")
	copyExecutable(t, "/bin/true", benignCopy)

	runs := []*run{
		{name: "ettercap", tool: "ettercap", argv: []string{"/usr/bin/ettercap", "--version"}},
		{name: "bettercap", tool: "bettercap", argv: []string{"/usr/bin/bettercap", "-version"}},
		{name: "mitmdump", tool: "mitmdump", argv: []string{"/usr/bin/mitmdump", "--version"}},
		{name: "arpspoof", tool: "arpspoof", argv: []string{"/usr/sbin/arpspoof", "-h"}},
		{name: "renamed-bettercap", tool: "bettercap", argv: []string{renamed, "-version"}},
		// Benign: must not be detected.
		{name: "true", argv: []string{"/bin/true"}},
		{name: "echo", argv: []string{"/bin/echo"}},
		{name: "sh", argv: []string{"/bin/sh", "-c", "true"}},
		{name: "grep", argv: []string{"/bin/grep", "-q", "bettercap", "/dev/null"}},
		{name: "cat", argv: []string{"/bin/cat", "/usr/bin/bettercap"}},
		{name: "true-named-mitmdumpx", argv: []string{benignCopy}},
	}
	markRuns(t, runs)

	// WHEN each tool and each benign command is exec'd with its marker.
	for _, r := range runs {
		execRun(t, r, scratch)
	}

	// ... and every tool's detection has reached the sink (or time is up).
	var tools []*run
	for _, r := range runs {
		if r.tool != "" {
			tools = append(tools, r)
		}
	}
	waitForMarkers(snk, tools, recordTimeout)
	time.Sleep(settleTime)
	// ... and the collector is stopped (SIGTERM flushes the exporter).
	col.stop()
	t.Logf("collector exited: %v", col.WaitErr())
	assert.NoError(t, col.WaitErr(), "collector exit after SIGTERM")

	recs, sinkErrs := snk.Records()
	assert.Empty(t, sinkErrs, "sink errors")
	for _, r := range runs {
		for _, rec := range harness.WithMarker(recs, r.marker) {
			t.Logf("%s (pid %d): %s", r.name, r.pid, describe(rec))
		}
	}

	// THEN each tool exec gave exactly one detection record, as the contract
	// describes it, and no benign command gave any.
	for _, r := range runs {
		mine := harness.WithMarker(recs, r.marker)
		if r.tool == "" {
			assert.Empty(t, mine, "%s: benign command detected (marker %s)", r.name, r.marker)
			continue
		}
		if !assert.Len(t, mine, 1, "%s: want exactly one record with marker %s", r.name, r.marker) || len(mine) == 0 {
			continue
		}
		checkRecord(t, r, mine[0])
	}
}

func checkRecord(t *testing.T, r *run, rec harness.Record) {
	t.Helper()
	lr := rec.Record
	attrs := lr.Attributes()
	str := func(key string) (string, bool) {
		v, ok := attrs.Get(key)
		if !ok || v.Type() != pcommon.ValueTypeStr {
			return "", false
		}
		return v.Str(), true
	}
	integer := func(key string) (int64, bool) {
		v, ok := attrs.Get(key)
		if !ok || v.Type() != pcommon.ValueTypeInt {
			return 0, false
		}
		return v.Int(), true
	}

	tool, _ := str(attrToolName)
	assert.Equal(t, r.tool, tool, "%s: %s", r.name, attrToolName)
	assert.Equal(t, ruleName, lr.EventName(), "%s: EventName", r.name)
	assert.Equal(t, plog.SeverityNumberFatal, lr.SeverityNumber(), "%s: SeverityNumber", r.name)
	assert.EqualValues(t, 21, lr.SeverityNumber(), "%s: SeverityNumber", r.name)
	assert.Equal(t, severityText, lr.SeverityText(), "%s: SeverityText", r.name)
	assert.Equal(t, pcommon.ValueTypeStr, lr.Body().Type(), "%s: body type", r.name)
	assert.True(t, strings.HasPrefix(lr.Body().AsString(), bodyPrefix), "%s: body %q", r.name, lr.Body().AsString())

	host, ok := rec.Resource.Get(resAttrHostName)
	assert.True(t, ok && host.AsString() != "", "%s: resource %s missing", r.name, resAttrHostName)
	svc, ok := rec.Resource.Get(resAttrSvcName)
	assert.True(t, ok, "%s: resource %s missing", r.name, resAttrSvcName)
	assert.Equal(t, serviceName, svc.AsString(), "%s: resource %s", r.name, resAttrSvcName)

	rule, _ := str(attrRuleName)
	assert.Equal(t, ruleName, rule, "%s: %s", r.name, attrRuleName)
	tech, _ := str(attrTechniqueID)
	assert.Equal(t, techniqueID, tech, "%s: %s", r.name, attrTechniqueID)

	pid, ok := integer(attrPID)
	assert.True(t, ok && pid > 0, "%s: %s = %d (present %v)", r.name, attrPID, pid, ok)
	// Every run is exec'd directly by this process: the exec'ing process
	// is the child we started, and its parent is this test.
	assert.EqualValues(t, r.pid, pid, "%s: %s", r.name, attrPID)
	ppid, ok := integer(attrParentPID)
	assert.True(t, ok, "%s: %s missing", r.name, attrParentPID)
	assert.EqualValues(t, os.Getpid(), ppid, "%s: %s", r.name, attrParentPID)
	uid, ok := integer(attrUserID)
	assert.True(t, ok, "%s: %s missing", r.name, attrUserID)
	assert.EqualValues(t, os.Geteuid(), uid, "%s: %s", r.name, attrUserID)

	exe, ok := str(attrExecutable)
	assert.True(t, ok && filepath.IsAbs(exe), "%s: %s = %q is not an absolute path", r.name, attrExecutable, exe)

	ts := lr.Timestamp().AsTime()
	assert.False(t, ts.Before(r.start.Add(-timestampSlack)) || ts.After(r.end.Add(timestampSlack)),
		"%s: Timestamp %s outside the exec window [%s, %s] ± %s", r.name, ts, r.start, r.end, timestampSlack)
}
