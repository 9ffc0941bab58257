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
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

const (
	ruleName         = "net_mitm_tool_exec"
	techniqueID      = "T1040"
	serviceName      = "mitmexec"
	bodyPrefix       = "MitM tool executed: "
	severityText     = "CRITICAL"
	readyLine        = "Everything is ready"
	startTimeout     = 30 * time.Second
	recordTimeout    = 20 * time.Second
	settleTime       = time.Second
	stopGrace        = 10 * time.Second
	toolTimeout      = 30 * time.Second
	timestampSlack   = 2 * time.Second
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
	defaultCollector = "../../_build/otelcol-custom"
	collectorEnvName = "MITMEXEC_OTELCOL"
	logTailLines     = 40
	attrCommandArgs  = "process.command_args"
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

// underCI reports whether a skip must count as a failure.
func underCI() bool { return testenv.UnderCI() }

// skipOrFail skips the test, or fails it under CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if underCI() {
		t.Fatalf("CI=true, cannot skip: "+format, args...)
	}
	t.Skipf(format, args...)
}

// record is one log record received by the sink, with its resource.
type record struct {
	Resource pcommon.Map
	Record   plog.LogRecord
}

// sink is an in-process OTLP/HTTP logs receiver.
type sink struct {
	mu   sync.Mutex
	logs plog.Logs
	errs []string
}

func newSink() *sink { return &sink{logs: plog.NewLogs()} }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/logs" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		ct = ""
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(fmt.Sprintf("reading body: %v", err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := plogotlp.NewExportRequest()
	resp := plogotlp.NewExportResponse()
	var out []byte
	switch ct {
	case contentTypeProto:
		if err = req.UnmarshalProto(body); err == nil {
			out, err = resp.MarshalProto()
		}
	case contentTypeJSON:
		if err = req.UnmarshalJSON(body); err == nil {
			out, err = resp.MarshalJSON()
		}
	default:
		s.fail(fmt.Sprintf("unsupported content type %q", r.Header.Get("Content-Type")))
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		s.fail(fmt.Sprintf("decoding %s request: %v", ct, err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	req.Logs().ResourceLogs().MoveAndAppendTo(s.logs.ResourceLogs())
	s.mu.Unlock()
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (s *sink) fail(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, msg)
}

// records returns a copy of everything received so far, flattened.
func (s *sink) records() ([]record, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := plog.NewLogs()
	s.logs.CopyTo(cp)
	var out []record
	for i := 0; i < cp.ResourceLogs().Len(); i++ {
		rl := cp.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, record{Resource: rl.Resource().Attributes(), Record: lrs.At(k)})
			}
		}
	}
	return out, append([]string(nil), s.errs...)
}

// hasArg reports whether marker is one element of the record's
// process.command_args.
func hasArg(r record, marker string) bool {
	v, ok := r.Record.Attributes().Get(attrCommandArgs)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return false
	}
	s := v.Slice()
	for i := 0; i < s.Len(); i++ {
		if s.At(i).AsString() == marker {
			return true
		}
	}
	return false
}

func withMarker(recs []record, marker string) []record {
	var out []record
	for _, r := range recs {
		if hasArg(r, marker) {
			out = append(out, r)
		}
	}
	return out
}

// collector is the running collector process.
type collector struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	once    sync.Once
	tailed  bool // the log tail was already reported
}

// stop sends SIGTERM, waits up to stopGrace, then SIGKILLs. Safe to call twice.
func (c *collector) stop(t *testing.T) {
	c.once.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopGrace):
			t.Logf("collector did not stop %s after SIGTERM, killing it", stopGrace)
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

func (c *collector) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startCollector runs bin with a config exporting to sinkURL and waits until
// it is ready.
func startCollector(t *testing.T, bin, sinkURL string) *collector {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`receivers:
  mitmexec: {}
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    encoding: proto
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, sinkURL)
	return launchCollector(t, bin, writeConfig(t, dir, cfg))
}

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

func describe(r record) string {
	return fmt.Sprintf("event=%q sev=%d/%q body=%q resource=%v attributes=%v",
		r.Record.EventName(), r.Record.SeverityNumber(), r.Record.SeverityText(),
		r.Record.Body().AsString(), r.Resource.AsRaw(), r.Record.Attributes().AsRaw())
}

func TestEndToEnd(t *testing.T) {
	// GIVEN root (the receiver loads eBPF), the built collector and the tools.
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to load eBPF programs (euid %d)", os.Geteuid())
	}
	bin := os.Getenv(collectorEnvName)
	if bin == "" {
		bin = defaultCollector
	}
	bin, err := filepath.Abs(bin)
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "collector binary %s not found (%v): run `make otelcol` (or set %s)", bin, err, collectorEnvName)
	}
	for _, p := range []string{"/usr/bin/ettercap", "/usr/bin/bettercap", "/usr/bin/mitmdump", "/usr/sbin/arpspoof"} {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "tool %s not installed: %v", p, err)
		}
	}

	// GIVEN an in-process OTLP/HTTP sink.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	snk := newSink()
	srv := &http.Server{Handler: snk, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	sinkURL := "http://" + ln.Addr().String()

	// GIVEN the collector running the mitmexec receiver, exporting to the sink.
	col := startCollector(t, bin, sinkURL)

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
	for _, r := range runs {
		r.marker = fmt.Sprintf("e2e-%d-%s", os.Getpid(), r.name)
	}

	// WHEN each tool and each benign command is exec'd with its marker.
	for _, r := range runs {
		execRun(t, r, scratch)
	}

	// ... and every tool's detection has reached the sink (or time is up).
	deadline := time.Now().Add(recordTimeout)
	for {
		recs, _ := snk.records()
		missing := 0
		for _, r := range runs {
			if r.tool != "" && len(withMarker(recs, r.marker)) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(settleTime)
	// ... and the collector is stopped (SIGTERM flushes the exporter).
	col.stop(t)
	t.Logf("collector exited: %v", col.waitErr)
	assert.NoError(t, col.waitErr, "collector exit after SIGTERM")

	recs, sinkErrs := snk.records()
	assert.Empty(t, sinkErrs, "sink errors")
	for _, r := range runs {
		for _, rec := range withMarker(recs, r.marker) {
			t.Logf("%s (pid %d): %s", r.name, r.pid, describe(rec))
		}
	}

	// THEN each tool exec gave exactly one detection record, as the contract
	// describes it, and no benign command gave any.
	for _, r := range runs {
		mine := withMarker(recs, r.marker)
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

func checkRecord(t *testing.T, r *run, rec record) {
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
