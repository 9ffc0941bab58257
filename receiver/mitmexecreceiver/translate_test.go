// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"flag"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The exec happened at execTime, 1000 s after boot; the receiver saw it 2 ms
// later.
var (
	execTime     = time.Date(2026, 11, 26, 18, 0, 0, 123456789, time.UTC)
	observedTime = execTime.Add(2 * time.Millisecond)
)

const execBootNs = 1000 * uint64(time.Second)

var testResource = resourceInfo{HostName: "sensor-1", HostID: "0123456789abcdef0123456789abcdef", OSType: "linux", ServiceName: "mitmexec"}

func tool(t testing.TB, name string) *detect.Tool {
	t.Helper()
	for _, tl := range detect.DefaultTools() {
		if tl.Name == name {
			return &tl
		}
	}
	t.Fatalf("tool %q is not in the catalog", name)
	return nil
}

// goldenRecords are the detection records pinned in testdata/golden.
func goldenRecords(t testing.TB) []struct {
	name         string
	rec          detectionRecord
	maxArgsBytes int
} {
	return []struct {
		name         string
		rec          detectionRecord
		maxArgsBytes int
	}{
		{
			// An ELF tool run from an interactive shell through sudo.
			name: "elf",
			rec: detectionRecord{
				Exec: event.Exec{
					BootTimeNs: execBootNs, StartBootTimeNs: execBootNs - 3*uint64(time.Millisecond),
					File: event.FileID{Dev: 259<<20 | 1, Ino: 1311234}, Size: 312456, Nlink: 1,
					PID: 4242, TID: 4242, VPID: 4242, PPID: 4100,
					UID: 1000, EUID: 0, GID: 1000, EGID: 0, LoginUID: 1000,
					PidNS: 4026531836, MntNS: 4026531841,
					Flags: event.FlagInteractive,
					Comm:  "ettercap", Name: "ettercap", Filename: "/usr/bin/ettercap",
					ExePath: "/usr/bin/ettercap", Cwd: "/home/alice",
					Cgroup:    "/user.slice/user-1000.slice/session-3.scope",
					Args:      []string{"ettercap", "-T", "-q", "-M", "arp:remote", "/192.0.2.1//", "/192.0.2.254//"},
					Ancestors: []event.Ancestor{{PID: 4100, Comm: "bash"}, {PID: 4000, Comm: "sshd"}},
				},
				Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchExecutableName},
				Context: enrich.Context{
					Owner:            "root",
					SHA256:           "9f2c1e0d5b7a4c3e8f6a1b2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a",
					ParentExecutable: "/usr/bin/bash",
					Ancestors:        []string{"4100:/usr/bin/bash", "4000:/usr/sbin/sshd"},
				},
				Time: execTime,
			},
		},
		{
			// mitmdump, a #!/usr/bin/python3 script, in a container: the
			// kernel loaded python3.11, and the proxy's credentials in
			// argv are redacted.
			name: "script",
			rec: detectionRecord{
				Exec: event.Exec{
					BootTimeNs: execBootNs, StartBootTimeNs: execBootNs - 250*uint64(time.Millisecond),
					File: event.FileID{Dev: 0<<20 | 45, Ino: 77001}, Size: 6831736, Nlink: 1,
					PID: 90210, TID: 90210, VPID: 17, PPID: 90200,
					UID: 0, EUID: 0,
					PidNS: 4026532701, MntNS: 4026532699,
					Flags: event.FlagScript,
					Comm:  "mitmdump", Name: "python3.11", Filename: "/usr/bin/mitmdump",
					Interpreter: "/usr/bin/python3",
					ExePath:     "/usr/bin/python3.11", Cwd: "/",
					Cgroup:    "/system.slice/docker-3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e.scope",
					Args:      []string{"/usr/bin/python3", "/usr/bin/mitmdump", "--mode", "transparent", "--set", "proxyauth=alice:hunter2"},
					Ancestors: []event.Ancestor{{PID: 90200, Comm: "sh"}},
				},
				Detection: detect.Detection{Tool: tool(t, "mitmdump"), Match: detect.MatchScript, Detail: "/usr/bin/mitmdump"},
				Context: enrich.Context{
					Owner:            "root",
					ContainerID:      "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e",
					SHA256:           "0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091",
					ParentExecutable: "/usr/bin/dash",
				},
				Time: execTime,
			},
		},
		{
			// A memfd copy of ettercap run through execveat: no file left
			// to hash, no links; known by its content fingerprint and
			// killed at the exec hook.
			name: "memfd",
			rec: detectionRecord{
				Exec: event.Exec{
					BootTimeNs: execBootNs, StartBootTimeNs: execBootNs - 40*uint64(time.Millisecond),
					File: event.FileID{Dev: 0<<20 | 1, Ino: 2051}, Size: 312456, Nlink: 0,
					PID: 5150, TID: 5150, VPID: 5150, PPID: 5149,
					UID: 1000, EUID: 1000,
					Flags: event.FlagKilled,
					Comm:  "3", Name: "memfd:x", Filename: "/dev/fd/3",
					ExePath: "/memfd:x", Cwd: "/tmp",
					Cgroup:    "/user.slice/user-1000.slice/session-4.scope",
					Args:      []string{"x", "-T"},
					Ancestors: []event.Ancestor{{PID: 5149, Comm: "loader"}},
				},
				Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchFingerprint},
				Context:   enrich.Context{Owner: "alice", ParentExecutable: "/tmp/loader"},
				Time:      execTime,
				Outcome:   record.OutcomeKilled,
			},
		},
		{
			// bettercap with a long argv cut to 160 bytes by max_args_bytes,
			// its API key and an upstream proxy's password redacted.
			name:         "truncated",
			maxArgsBytes: 160,
			rec: detectionRecord{
				Exec: event.Exec{
					BootTimeNs: execBootNs, StartBootTimeNs: execBootNs - uint64(time.Millisecond),
					File: event.FileID{Dev: 259<<20 | 1, Ino: 1312000}, Size: 30123456, Nlink: 1,
					PID: 6001, TID: 6001, VPID: 6001, PPID: 6000,
					UID: 0, EUID: 0,
					Comm: "bettercap", Name: "bettercap", Filename: "/usr/bin/bettercap",
					ExePath: "/usr/bin/bettercap",
					Args: []string{
						"bettercap", "-iface", "eth0", "--api-key=c0ffee1234", "-eval",
						"set https.proxy.upstream http://bob:s3cret@proxy.example:3128; set arp.spoof.targets 192.0.2.7; arp.spoof on; net.sniff on; https.proxy on",
						"-no-colors",
					},
					ArgsTotal: 190,
				},
				Detection: detect.Detection{Tool: tool(t, "bettercap"), Match: detect.MatchExecutableName},
				Context:   enrich.Context{Owner: "root"},
				Time:      execTime,
			},
		},
		{
			// arpspoof run through a symlink named after nothing, 17 times
			// in a burst, folded into one record; little is known beyond
			// what the kernel sent.
			name: "repeat",
			rec: detectionRecord{
				Exec: event.Exec{
					BootTimeNs: execBootNs, StartBootTimeNs: execBootNs - 2*uint64(time.Millisecond),
					File: event.FileID{Dev: 259<<20 | 1, Ino: 1310099}, Size: 22712, Nlink: 1,
					PID: 7100, TID: 7100, VPID: 7100, PPID: 1,
					UID: 0, EUID: 0,
					Comm: ".a", Name: "arpspoof", Filename: "/tmp/.a",
					ExePath: "/usr/sbin/arpspoof",
					Args:    []string{"/tmp/.a", "-i", "eth0", "-t", "192.0.2.7", "192.0.2.1"},
					Cgroup:  "/system.slice/cron.service",
				},
				Detection:   detect.Detection{Tool: tool(t, "arpspoof"), Match: detect.MatchInode},
				Time:        execTime,
				RepeatCount: 17,
			},
		},
	}
}

func TestTranslateGolden(t *testing.T) {
	for _, tc := range goldenRecords(t) {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a detection record
			rec := tc.rec
			maxArgs := tc.maxArgsBytes
			if maxArgs == 0 {
				maxArgs = defaultMaxArgsBytes
			}

			// WHEN it is translated
			ld, sl := newLogs(testResource)
			appendDetection(sl, &rec, observedTime, maxArgs)

			// THEN it is the golden record
			path := filepath.Join("testdata", "golden", tc.name+".yaml")
			if *update {
				require.NoError(t, golden.WriteLogs(t, path, ld))
			}
			want, err := golden.ReadLogs(path)
			require.NoError(t, err)
			require.NoError(t, plogtest.CompareLogs(want, ld))
			// plogtest does not compare EventName.
			assert.Equal(t, record.EventName, onlyRecord(t, ld).EventName())
			assert.Equal(t, onlyRecord(t, want).EventName(), onlyRecord(t, ld).EventName())
		})
	}
}

func onlyRecord(t *testing.T, ld plog.Logs) plog.LogRecord {
	t.Helper()
	require.Equal(t, 1, ld.ResourceLogs().Len())
	require.Equal(t, 1, ld.ResourceLogs().At(0).ScopeLogs().Len())
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	require.Equal(t, 1, lrs.Len())
	return lrs.At(0)
}

// translate returns the one record r becomes.
func translate(t *testing.T, r detectionRecord, maxArgsBytes int) plog.LogRecord {
	t.Helper()
	ld, sl := newLogs(testResource)
	appendDetection(sl, &r, observedTime, maxArgsBytes)
	return onlyRecord(t, ld)
}

func TestTranslateFixedFields(t *testing.T) {
	rec := goldenRecords(t)[0].rec
	lr := translate(t, rec, 4096)

	assert.Equal(t, "net_mitm_tool_exec", lr.EventName())
	assert.Equal(t, plog.SeverityNumber(21), lr.SeverityNumber())
	assert.Equal(t, "CRITICAL", lr.SeverityText())
	assert.Equal(t, "MitM tool executed: ettercap (/usr/bin/ettercap) pid 4242 uid 0 parent bash (4100)", lr.Body().Str())
	assert.Equal(t, pcommon.NewTimestampFromTime(execTime), lr.Timestamp())
	assert.Equal(t, pcommon.NewTimestampFromTime(observedTime), lr.ObservedTimestamp())
	want := map[string]any{
		"security_rule.name":         "net_mitm_tool_exec",
		"security_rule.category":     "Discovery",
		"security_rule.description":  "Network man-in-the-middle tool",
		"security_rule.ruleset.name": "mitmexec",
		"threat.framework":           "MITRE ATT&CK",
		"threat.tactic.name":         "Discovery",
		"threat.tactic.id":           "TA0007",
		"threat.technique.name":      "Network Sniffing",
		"threat.technique.id":        "T1040",
		"mitmexec.tool.name":         "ettercap",
		"mitmexec.tool.technique.id": "T1557.002",
		"mitmexec.match":             "executable_name",
		"mitmexec.action":            "alerted",
		"mitmexec.args_truncated":    false,
		// 3 ms before the exec, by the same boot clock.
		"process.creation.time":      "2026-11-26T18:00:00.120456789Z",
		"mitmexec.executable.device": int64(event.UserDev(259<<20 | 1)),
	}
	raw := lr.Attributes().AsRaw()
	for k, v := range want {
		assert.Equal(t, v, raw[k], k)
	}
	for _, k := range []string{"process.vpid", "mitmexec.repeat_count", "container.id", "mitmexec.exec.interpreter"} {
		assert.NotContains(t, raw, k, "nothing true to say about %s", k)
	}
}

func TestTranslateResource(t *testing.T) {
	ld, _ := newLogs(resourceInfo{HostName: "h"})
	rl := ld.ResourceLogs().At(0)
	assert.Equal(t, map[string]any{"host.name": "h", "service.name": "mitmexec"}, rl.Resource().Attributes().AsRaw())
	assert.Equal(t, metadata.ScopeName, rl.ScopeLogs().At(0).Scope().Name())
}

func TestTranslateOmitsUnknown(t *testing.T) {
	// GIVEN an exec the kernel said almost nothing about
	rec := detectionRecord{
		Exec:      event.Exec{PID: 10, PPID: 1, Name: "ettercap"},
		Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchExecutableName},
		Time:      execTime,
	}

	// WHEN it is translated
	raw := translate(t, rec, 4096).Attributes().AsRaw()

	// THEN the unknown is left out, not filled with placeholders
	for _, k := range []string{
		"process.vpid", "process.executable.path", "process.command_args", "process.command_line",
		"process.owner", "process.working_directory", "process.linux.cgroup", "process.creation.time",
		"mitmexec.exec.filename", "mitmexec.executable.sha256", "mitmexec.executable.inode",
		"mitmexec.executable.device", "mitmexec.parent.executable.path", "mitmexec.ancestors",
		"container.id", "mitmexec.namespace.pid", "mitmexec.namespace.mnt",
	} {
		assert.NotContains(t, raw, k)
	}
	assert.Equal(t, "ettercap", raw["process.executable.name"], "falls back to the dentry name")
	assert.Equal(t, false, raw["process.interactive"])
}

func TestTranslateKernelTruncatedArgs(t *testing.T) {
	// GIVEN argv the kernel cut at its bound, in the middle of a URL's password
	rec := goldenRecords(t)[4].rec
	rec.Exec.Flags |= event.FlagArgsTruncated
	rec.Exec.Args = []string{"arpspoof", "--upstream", "http://bob:s3cr"}

	// WHEN it is translated
	raw := translate(t, rec, 4096).Attributes().AsRaw()

	// THEN it says so, and the partial password is gone
	assert.Equal(t, true, raw["mitmexec.args_truncated"])
	assert.Equal(t, "arpspoof --upstream http://bob:REDACTED", raw["process.command_line"])
}

func TestBoundArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		max     int
		want    []string
		wantCut bool
	}{
		{"fits exactly", []string{"abc", "de"}, 7, []string{"abc", "de"}, false},
		{"last cut", []string{"abc", "defgh"}, 7, []string{"abc", "de"}, true},
		{"next arg dropped", []string{"abc", "de", "f"}, 7, []string{"abc", "de"}, true},
		{"no room for a byte", []string{"abc", "de"}, 5, []string{"abc"}, true},
		{"utf-8 not split", []string{"a", "xé"}, 5, []string{"a", "x"}, true},
		{"empty", nil, 64, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := boundArgs(tt.args, tt.max)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantCut, cut)
		})
	}
}

func TestProcessStart(t *testing.T) {
	r := &detectionRecord{Exec: event.Exec{BootTimeNs: 5e9, StartBootTimeNs: 2e9}, Time: execTime}
	got, ok := processStart(r)
	require.True(t, ok)
	assert.Equal(t, execTime.Add(-3*time.Second), got)

	r.Exec.StartBootTimeNs = 6e9 // after the exec: not true, left out
	_, ok = processStart(r)
	assert.False(t, ok)
}

func TestTranslateNonUTF8(t *testing.T) {
	// GIVEN a path and an argument that are not UTF-8, and a path with a newline
	r := &detectionRecord{
		Exec:      event.Exec{PID: 1, ExePath: "/tmp/\xff\xfeettercap", Filename: "/tmp/a\nb", Args: []string{"x\xc3", "ok"}},
		Detection: detect.Detection{Tool: &detect.Tool{Name: "ettercap"}, Match: detect.MatchContentHash},
		Time:      time.Unix(1, 0),
	}
	ld, sl := newLogs(resourceInfo{HostName: "h"})
	// WHEN it is translated
	appendDetection(sl, r, time.Unix(2, 0), 4096)
	// THEN every string is valid UTF-8, the bytes escaped, the newline kept
	lr := sl.At(0)
	exe, _ := lr.Attributes().Get("process.executable.path")
	if exe.Str() != `/tmp/\xff\xfeettercap` {
		t.Errorf("executable path %q", exe.Str())
	}
	args, _ := lr.Attributes().Get("process.command_args")
	if args.Slice().At(0).Str() != `x\xc3` {
		t.Errorf("arg %q", args.Slice().At(0).Str())
	}
	fn, _ := lr.Attributes().Get("mitmexec.exec.filename")
	if fn.Str() != "/tmp/a\nb" {
		t.Errorf("filename %q", fn.Str())
	}
	if _, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld); err != nil {
		t.Errorf("marshal: %v", err)
	}
	if !utf8.ValidString(lr.Body().Str()) {
		t.Errorf("body %q", lr.Body().Str())
	}
}

// BenchmarkTranslate: one detection record to OTLP, allocations per record.
func BenchmarkTranslate(b *testing.B) {
	rec := goldenRecords(b)[0].rec
	observed := time.Unix(2, 0)
	b.ReportAllocs()
	for b.Loop() {
		_, sl := newLogs(testResource)
		appendDetection(sl, &rec, observed, 4096)
	}
}
