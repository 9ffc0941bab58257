// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/mitmexec/mitmexec/internal/netaddr"
	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// requirePrivileges skips outside CI when not root; under CI=true a missing
// privilege fails, so a green CI always means the kernel tests ran.
func requirePrivileges(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
}

// liveReceiver is a started receiver with the real tracer and a sink.
type liveReceiver struct {
	sink *consumertest.LogsSink
	rcv  *mitmexecReceiver
}

func startLive(t *testing.T, mutate func(*Config)) *liveReceiver {
	t.Helper()
	requirePrivileges(t)
	cfg := createDefaultConfig().(*Config)
	if mutate != nil {
		mutate(cfg)
	}
	sink := new(consumertest.LogsSink)
	// every record a kernel made it send, after Shutdown (contract_test.go)
	t.Cleanup(func() { checkLogsListed(t, "live record", sink.AllLogs()) })
	set := receivertest.NewNopSettings(metadata.Type)
	rcv, err := newReceiver(set, cfg, sink, openTracer)
	if err != nil {
		t.Fatal(err)
	}
	rcv.openModules = openModuleWatch
	rcv.interfaces = netaddr.New(interfaceTTL)
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &liveReceiver{sink: sink, rcv: rcv}
}

// liveRecord is one detection flattened for assertions.
type liveRecord struct {
	attrs map[string]any
	lr    plog.LogRecord
	res   map[string]any
}

func (l *liveReceiver) records() []liveRecord {
	var out []liveRecord
	for _, ld := range l.sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, liveRecord{attrs: lrs.At(k).Attributes().AsRaw(), lr: lrs.At(k), res: rl.Resource().Attributes().AsRaw()})
				}
			}
		}
	}
	return out
}

// withMarker returns the detections whose argv carries marker, or whose
// exec went through a path named marker: a record of an exec the BPF LSM
// refused has no argv (it never reached a new mm), only the path.
func (l *liveReceiver) withMarker(marker string) []liveRecord {
	var out []liveRecord
	for _, r := range l.records() {
		if f, _ := r.attrs["mitmexec.exec.filename"].(string); filepath.Base(f) == marker {
			out = append(out, r)
			continue
		}
		args, _ := r.attrs["process.command_args"].([]any)
		for _, a := range args {
			if a == marker {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// waitFor waits until every marker has a detection, then a little longer
// so that duplicates would show.
func (l *liveReceiver) waitFor(t *testing.T, markers []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		missing := 0
		for _, m := range markers {
			if len(l.withMarker(m)) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}

type scenario struct {
	name  string
	tool  string   // expected tool, "" for none
	match string   // expected mitmexec.match, "" for any
	argv  []string // the marker is appended
	env   []string
	dir   string
}

var markerSeq struct {
	sync.Mutex
	n int
}

func newMarker(name string) string {
	markerSeq.Lock()
	defer markerSeq.Unlock()
	markerSeq.n++
	return fmt.Sprintf("mitmexec-test-%d-%d-%s", os.Getpid(), markerSeq.n, strings.ReplaceAll(name, " ", "_"))
}

func runScenarios(t *testing.T, l *liveReceiver, scenarios []scenario) {
	t.Helper()
	markers := make([]string, len(scenarios))
	var expected []string
	for i, s := range scenarios {
		markers[i] = newMarker(s.name)
		argv := append(append([]string{}, s.argv...), markers[i])
		if strings.Contains(strings.Join(s.argv, " "), "MARKER") {
			argv = nil
			for _, a := range s.argv {
				argv = append(argv, strings.ReplaceAll(a, "MARKER", markers[i]))
			}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), s.env...)
		cmd.Dir = s.dir
		out, err := cmd.CombinedOutput()
		if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
			t.Fatalf("%s: cannot run %v: %v\n%s", s.name, argv, err, out)
		}
		if s.tool != "" {
			expected = append(expected, markers[i])
		}
	}
	l.waitFor(t, expected)
	for i, s := range scenarios {
		got := l.withMarker(markers[i])
		if s.tool == "" {
			if len(got) != 0 {
				t.Errorf("%s: want no detection, got %d: %v", s.name, len(got), got[0].attrs)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: want exactly one detection, got %d", s.name, len(got))
			continue
		}
		r := got[0]
		if r.attrs["mitmexec.tool.name"] != s.tool {
			t.Errorf("%s: tool %v, want %s", s.name, r.attrs["mitmexec.tool.name"], s.tool)
		}
		if s.match != "" && r.attrs["mitmexec.match"] != s.match {
			t.Errorf("%s: match %v, want %s", s.name, r.attrs["mitmexec.match"], s.match)
		}
		assertContract(t, s.name, r)
	}
}

// assertContract checks the fields every detection carries.
func assertContract(t *testing.T, name string, r liveRecord) {
	t.Helper()
	if r.lr.EventName() != "net_mitm_tool_exec" {
		t.Errorf("%s: EventName %q", name, r.lr.EventName())
	}
	if r.lr.SeverityNumber() != plog.SeverityNumberFatal || r.lr.SeverityText() != "CRITICAL" {
		t.Errorf("%s: severity %v %q", name, r.lr.SeverityNumber(), r.lr.SeverityText())
	}
	if !strings.HasPrefix(r.lr.Body().Str(), "MitM tool executed: ") {
		t.Errorf("%s: body %q", name, r.lr.Body().Str())
	}
	if d := time.Since(r.lr.Timestamp().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("%s: timestamp %v is %v from now", name, r.lr.Timestamp().AsTime(), d)
	}
	if r.res["host.name"] == nil || r.res["host.name"] == "" {
		t.Errorf("%s: resource host.name missing", name)
	}
	fixed := map[string]string{
		"security_rule.name": "net_mitm_tool_exec", "security_rule.category": "Discovery",
		"security_rule.description": "Network man-in-the-middle tool", "security_rule.ruleset.name": "mitmexec",
		"threat.framework": "MITRE ATT&CK", "threat.tactic.name": "Discovery", "threat.tactic.id": "TA0007",
		"threat.technique.name": "Network Sniffing", "threat.technique.id": "T1040",
	}
	for k, v := range fixed {
		if r.attrs[k] != v {
			t.Errorf("%s: %s = %v, want %s", name, k, r.attrs[k], v)
		}
	}
	for _, k := range []string{"process.pid", "process.parent_pid", "process.executable.path", "process.executable.name",
		"process.command_line", "process.user.id", "process.real_user.id", "mitmexec.exec.filename",
		"mitmexec.executable.inode", "mitmexec.executable.device", "mitmexec.tool.technique.id", "mitmexec.match",
		"mitmexec.action", "mitmexec.namespace.pid", "mitmexec.namespace.mnt"} {
		if _, ok := r.attrs[k]; !ok {
			t.Errorf("%s: attribute %s missing", name, k)
		}
	}
	if p, _ := r.attrs["process.executable.path"].(string); !strings.HasPrefix(p, "/") {
		t.Errorf("%s: process.executable.path %q is not absolute", name, p)
	}
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(d, name)); serr == nil {
				return filepath.Join(d, name)
			}
		}
		t.Fatalf("%s is not installed (.ci/run installs it): %v", name, err)
	}
	return p
}

func buildFdexec(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fdexec")
	cmd := exec.Command("go", "build", "-o", out, "../../testdata/fdexec")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fdexec: %v\n%s", err, b)
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// sameFile reports whether two paths name one inode.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(sa, sb)
}

func writeFile(t *testing.T, p, content string) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
