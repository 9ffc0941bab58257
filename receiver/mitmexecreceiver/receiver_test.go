// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// fakeSource is the kernel side without a kernel: tests push records in and
// read back the verdicts the receiver writes down.
type fakeSource struct {
	records chan []byte
	mu      sync.Mutex
	verdict map[event.FileID]event.Verdict
	names   map[string]event.Verdict
	closed  int
}

func newFakeSource() *fakeSource {
	return &fakeSource{records: make(chan []byte, 16), verdict: map[event.FileID]event.Verdict{}, names: map[string]event.Verdict{}}
}

func (f *fakeSource) Records() <-chan []byte { return f.records }
func (f *fakeSource) PutVerdict(id event.FileID, v event.Verdict) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verdict[id] = v
	return nil
}
func (f *fakeSource) PutName(n string, v event.Verdict) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[n] = v
	return nil
}
func (f *fakeSource) PutFingerprint(event.Fingerprint, event.Verdict) error { return nil }
func (f *fakeSource) Protect(uint32, uint64) error                          { return nil }
func (f *fakeSource) Deny() error                                           { return errors.New("fake kernel without BPF LSM") }
func (f *fakeSource) Stats() (tracer.Stats, error) {
	return tracer.Stats{Execs: 10, Submitted: 3}, nil
}
func (f *fakeSource) Hook() string { return "fake" }
func (f *fakeSource) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == 0 {
		close(f.records)
	}
	f.closed++
	return nil
}

func (f *fakeSource) verdictOf(id event.FileID) (event.Verdict, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.verdict[id]
	return v, ok
}

func newFakeReceiver(t *testing.T, next consumer.Logs, src *fakeSource) *mitmexecReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.SearchPaths = []string{t.TempDir()} // keep the host's tools out of the fake
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, next,
		func(tracer.Options) (execSource, error) { return src, nil })
	if err != nil {
		t.Fatal(err)
	}
	r.bootClock = func() time.Duration { return 10 * time.Second }
	return r
}

func waitLogs(t *testing.T, sink *consumertest.LogsSink, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sink.LogRecordCount() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sink.LogRecordCount(); got != n {
		t.Fatalf("got %d records, want %d", got, n)
	}
}

func TestReceiverDetectsFromFakeSource(t *testing.T) {
	// GIVEN a started receiver on a fake kernel
	src := newFakeSource()
	sink := new(consumertest.LogsSink)
	r := newFakeReceiver(t, sink, src)
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	if v := src.names["ettercap"]; v.Kind != event.VerdictTool {
		t.Errorf("kernel name table: ettercap verdict %+v, want a tool", v)
	}

	// WHEN the kernel sends a benign exec (of a file that can be read: an
	// unread first sight is never cached), a record it cannot decode and
	// a tool exec
	ls, err := filepath.EvalSymlinks("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	lsID, err := fileid.Path(ls)
	if err != nil {
		t.Fatal(err)
	}
	benign := event.Exec{Name: "ls", Filename: "/bin/ls", ExePath: ls, File: lsID, Nlink: 1, PID: 5, Reasons: event.ReasonUnknown}
	src.records <- event.Encode(&benign)
	src.records <- []byte("garbage")
	tool := event.Exec{Name: "ettercap", Filename: "/usr/bin/ettercap", ExePath: "/usr/bin/ettercap", File: event.FileID{Dev: 1, Ino: 3},
		PID: 42, PPID: 41, BootTimeNs: uint64(9 * time.Second), Args: []string{"ettercap", "--version"}, Reasons: event.ReasonName, Nlink: 1}
	src.records <- event.Encode(&tool)

	// THEN exactly the tool is reported, the garbage is counted and both
	// identities are cached in the kernel
	waitLogs(t, sink, 1)
	lr := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if name, _ := lr.Attributes().Get("mitmexec.tool.name"); name.Str() != "ettercap" {
		t.Errorf("tool %q", name.Str())
	}
	if got := time.Since(lr.Timestamp().AsTime()); got < 900*time.Millisecond || got > 2*time.Second {
		t.Errorf("timestamp is %v ago, want about 1s (boot clock 10s, exec at 9s)", got)
	}
	if r.decodeErrors.Load() != 1 {
		t.Errorf("decode errors %d, want 1", r.decodeErrors.Load())
	}
	if v, ok := src.verdictOf(benign.File); !ok || v.Kind != event.VerdictBenign {
		t.Errorf("benign identity verdict %+v %v", v, ok)
	}
	if v, ok := src.verdictOf(tool.File); !ok || v.Kind != event.VerdictTool || v.ToolID == 0 {
		t.Errorf("tool identity verdict %+v %v", v, ok)
	}
}

// flakyConsumer fails a number of times before it accepts.
type flakyConsumer struct {
	consumertest.LogsSink
	mu       sync.Mutex
	failures int
	err      error
}

func (f *flakyConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	f.mu.Lock()
	if f.failures > 0 {
		f.failures--
		f.mu.Unlock()
		return f.err
	}
	f.mu.Unlock()
	return f.LogsSink.ConsumeLogs(ctx, ld)
}

func TestReceiverRetriesTransientErrors(t *testing.T) {
	// GIVEN a consumer that fails twice with a retryable error
	src := newFakeSource()
	next := &flakyConsumer{failures: 2, err: errors.New("backend unavailable")}
	r := newFakeReceiver(t, next, src)
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	// WHEN a tool exec arrives
	tool := event.Exec{Name: "bettercap", Filename: "/usr/bin/bettercap", ExePath: "/usr/bin/bettercap", File: event.FileID{Dev: 1, Ino: 9}, PID: 7}
	src.records <- event.Encode(&tool)
	// THEN it is delivered once the consumer recovers
	waitLogs(t, &next.LogsSink, 1)
}

func TestReceiverDropsPermanentErrors(t *testing.T) {
	src := newFakeSource()
	next := &flakyConsumer{failures: 1, err: consumererror.NewPermanent(errors.New("rejected"))}
	r := newFakeReceiver(t, next, src)
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	for i, name := range []string{"arpspoof", "macof"} {
		e := event.Exec{Name: name, Filename: "/usr/sbin/" + name, ExePath: "/usr/sbin/" + name, File: event.FileID{Dev: 1, Ino: uint64(20 + i)}, PID: 8}
		src.records <- event.Encode(&e)
	}
	waitLogs(t, &next.LogsSink, 1)
	if got := r.consumeDropped.Load(); got != 1 {
		t.Errorf("dropped %d, want 1", got)
	}
}

func TestStartErrorNamesTheReceiver(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	r, err := newReceiver(set, cfg, consumertest.NewNop(),
		func(tracer.Options) (execSource, error) {
			return nil, errors.New("loading eBPF needs root or CAP_BPF+CAP_PERFMON")
		})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background(), componenttest.NewNopHost())
	want := "mitmexec receiver mitmexec: loading eBPF needs root or CAP_BPF+CAP_PERFMON"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown after a failed start: %v", err)
	}
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	r := newFakeReceiver(t, consumertest.NewNop(), newFakeSource())
	for i := 0; i < 2; i++ {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("shutdown %d: %v", i, err)
		}
	}
}

func TestTwoReceiversCoexist(t *testing.T) {
	a, b := newFakeSource(), newFakeSource()
	sa, sb := new(consumertest.LogsSink), new(consumertest.LogsSink)
	ra, rb := newFakeReceiver(t, sa, a), newFakeReceiver(t, sb, b)
	for _, r := range []*mitmexecReceiver{ra, rb} {
		if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	e := event.Exec{Name: "ettercap", Filename: "/usr/bin/ettercap", ExePath: "/usr/bin/ettercap", File: event.FileID{Dev: 1, Ino: 3}, PID: 1}
	a.records <- event.Encode(&e)
	waitLogs(t, sa, 1)
	if sb.LogRecordCount() != 0 {
		t.Errorf("the second receiver saw the first one's record")
	}
	for _, r := range []*mitmexecReceiver{ra, rb} {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzConfig(f *testing.F) {
	f.Add(4096, "10ms", 4096, "/usr/bin", false)
	f.Add(0, "1h", -1, "bin", true)
	f.Fuzz(func(t *testing.T, queue int, poll string, maxArgs int, path string, all bool) {
		cm := confmap.NewFromStringMap(map[string]any{
			"queue_size": queue, "poll_interval": poll, "max_args_bytes": maxArgs, "search_paths": []any{path}, "submit_all": all,
		})
		cfg := createDefaultConfig().(*Config)
		if err := cm.Unmarshal(cfg); err != nil {
			return // a value of the wrong shape is refused at unmarshal
		}
		if err := cfg.Validate(); err == nil {
			if cfg.QueueSize < 1 || cfg.MaxArgsBytes > event.ArgsLen || cfg.PollInterval <= 0 {
				t.Fatalf("accepted %+v", cfg)
			}
		}
	})
}

func startFake(t *testing.T, next consumer.Logs, mutate func(*Config)) (*mitmexecReceiver, *fakeSource) {
	t.Helper()
	src := newFakeSource()
	r := newFakeReceiver(t, next, src)
	if mutate != nil {
		mutate(r.cfg)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r, src
}

func toolExec(name string, ino uint64, args ...string) event.Exec {
	return event.Exec{Name: name, Filename: "/usr/bin/" + name, ExePath: "/usr/bin/" + name, File: event.FileID{Dev: 1, Ino: ino},
		PID: uint32(1000 + ino), PPID: 77, EUID: 1001, Args: append([]string{name}, args...), Nlink: 1}
}

func attrOf(t *testing.T, sink *consumertest.LogsSink, i int, key string) any {
	t.Helper()
	var all []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for k := 0; k < lrs.Len(); k++ {
			all = append(all, lrs.At(k))
		}
	}
	v, ok := all[i].Attributes().Get(key)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

func TestReceiverFoldsRepeats(t *testing.T) {
	// GIVEN folding with a short window
	sink := new(consumertest.LogsSink)
	r, src := startFake(t, sink, func(c *Config) { c.Fold = FoldConfig{Enabled: true, Window: 300 * time.Millisecond} })
	// WHEN the same command runs four times from the same parent, and once with other arguments
	for i := 0; i < 4; i++ {
		e := toolExec("arpspoof", 5, "-i", "eth0")
		src.records <- event.Encode(&e)
	}
	other := toolExec("arpspoof", 5, "-i", "eth1")
	src.records <- event.Encode(&other)
	// THEN the first and the other go out at once, and the three repeats
	// leave as one record standing for three when the window ends
	waitLogs(t, sink, 2)
	if c := attrOf(t, sink, 0, "mitmexec.repeat_count"); c != nil {
		t.Errorf("first record carries repeat_count %v", c)
	}
	waitLogs(t, sink, 3)
	if c := attrOf(t, sink, 2, "mitmexec.repeat_count"); c != int64(3) {
		t.Errorf("folded record repeat_count = %v, want 3", c)
	}
	if r.folded.Load() != 3 {
		t.Errorf("folded counter %d, want 3", r.folded.Load())
	}
}

func TestReceiverFlushesFoldedAtShutdown(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r, src := startFake(t, sink, func(c *Config) { c.Fold = FoldConfig{Enabled: true, Window: time.Hour} })
	for i := 0; i < 2; i++ {
		e := toolExec("macof", 6)
		src.records <- event.Encode(&e)
	}
	waitLogs(t, sink, 1)
	deadline := time.Now().Add(5 * time.Second)
	for r.folded.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// WHEN the receiver shuts down with a repeat held
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// THEN the repeat is not lost
	if got := sink.LogRecordCount(); got != 2 {
		t.Fatalf("records after shutdown %d, want 2", got)
	}
}

func TestReceiverAllowList(t *testing.T) {
	// GIVEN QA may run mitmdump, and nobody else is allowed anything
	sink := new(consumertest.LogsSink)
	qa := uint32(1001)
	r, src := startFake(t, sink, func(c *Config) {
		c.Allow = []AllowConfig{{Tool: "mitmdump", UID: &qa}}
	})
	// WHEN QA runs mitmdump and ettercap
	md := toolExec("mitmdump", 7)
	ec := toolExec("ettercap", 8)
	src.records <- event.Encode(&md)
	src.records <- event.Encode(&ec)
	// THEN only ettercap is reported and the silenced one is counted
	waitLogs(t, sink, 1)
	if tool := attrOf(t, sink, 0, "mitmexec.tool.name"); tool != "ettercap" {
		t.Errorf("reported %v, want ettercap", tool)
	}
	if r.suppressed.Load() != 1 {
		t.Errorf("suppressed %d, want 1", r.suppressed.Load())
	}
}

// An allow entry by hash matches although a first sight no longer hashes
// whole files: the hash is taken for the allow-list when it needs one.
func TestReceiverAllowListBySHA256(t *testing.T) {
	// GIVEN a sanctioned build of a tool, allowed by its SHA-256
	dir := t.TempDir()
	sanctioned := filepath.Join(dir, "bettercap")
	if err := os.WriteFile(sanctioned, []byte("a sanctioned build"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a sanctioned build"))
	id, err := fileid.Path(sanctioned)
	if err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	r, src := startFake(t, sink, func(c *Config) {
		c.Allow = []AllowConfig{{SHA256: hex.EncodeToString(sum[:])}}
	})
	// WHEN it runs, and so does ettercap
	allowed := toolExec("bettercap", 0)
	allowed.ExePath, allowed.File, allowed.PID = sanctioned, id, 1<<30 // no such pid: read by path
	ec := toolExec("ettercap", 8)
	src.records <- event.Encode(&allowed)
	src.records <- event.Encode(&ec)
	// THEN only ettercap is reported
	waitLogs(t, sink, 1)
	time.Sleep(200 * time.Millisecond)
	if tool := attrOf(t, sink, 0, "mitmexec.tool.name"); tool != "ettercap" || r.suppressed.Load() != 1 {
		t.Errorf("reported %v, suppressed %d; want ettercap reported and the sanctioned build silenced", tool, r.suppressed.Load())
	}
}

func TestReceiverCatalogOverrides(t *testing.T) {
	// GIVEN macof switched off and a tool of the user's own
	sink := new(consumertest.LogsSink)
	_, src := startFake(t, sink, func(c *Config) {
		c.Tools = []ToolConfig{{Name: "macof", Disabled: true}, {Name: "mysniff", Technique: "T1557", Executables: []string{"mysniff"}}}
	})
	if v, ok := src.names["mysniff"]; !ok || v.Kind != event.VerdictTool {
		t.Errorf("kernel name table lacks the user's tool: %+v", v)
	}
	if _, ok := src.names["macof"]; ok {
		t.Error("kernel name table still has the disabled tool")
	}
	off := toolExec("macof", 9)
	own := toolExec("mysniff", 10)
	src.records <- event.Encode(&off)
	src.records <- event.Encode(&own)
	waitLogs(t, sink, 1)
	if tool := attrOf(t, sink, 0, "mitmexec.tool.name"); tool != "mysniff" {
		t.Errorf("reported %v, want mysniff", tool)
	}
}

func TestReceiverKernelActions(t *testing.T) {
	// GIVEN kill mode with an allow entry for mitmdump only
	_, src := startFake(t, consumertest.NewNop(), func(c *Config) {
		c.Action = "kill"
		c.Allow = []AllowConfig{{Tool: "mitmdump", User: "qa"}}
	})
	// THEN the kernel kills the tools no entry can silence, and leaves the
	// one an entry may silence to user space, which checks the entry first
	if v := src.names["ettercap"]; v.Action != event.ActionKill {
		t.Errorf("ettercap kernel action %d, want kill", v.Action)
	}
	if v := src.names["mitmdump"]; v.Action != event.ActionAlert {
		t.Errorf("mitmdump kernel action %d, want alert", v.Action)
	}
}

func TestShutdownDeadlineWithFailingConsumer(t *testing.T) {
	// GIVEN a consumer that never recovers and a detection waiting on it
	next := &flakyConsumer{failures: 1 << 30, err: errors.New("backend down")}
	r, src := startFake(t, next, nil)
	e := toolExec("ettercap", 11)
	src.records <- event.Encode(&e)
	time.Sleep(150 * time.Millisecond)
	// WHEN the collector shuts down with a short deadline
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// THEN Shutdown returns at the deadline and the record is counted as dropped
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if r.consumeDropped.Load() != 1 {
		t.Errorf("dropped %d, want 1", r.consumeDropped.Load())
	}
}

func TestStartErrorModeIgnore(t *testing.T) {
	// GIVEN error_mode ignore and a kernel that refuses the tracer
	cfg := createDefaultConfig().(*Config)
	cfg.ErrorMode = "ignore"
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(),
		func(tracer.Options) (execSource, error) { return nil, errors.New("no BTF") })
	if err != nil {
		t.Fatal(err)
	}
	// WHEN it starts THEN the collector goes on and shutdown is clean
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Errorf("start with error_mode ignore: %v", err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestReceiverRescansWhenFilesChange(t *testing.T) {
	// GIVEN a receiver watching an empty bin directory
	bin := t.TempDir()
	src := newFakeSource()
	sink := new(consumertest.LogsSink)
	r := newFakeReceiver(t, sink, src)
	r.cfg.SearchPaths = []string{bin}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	// WHEN a new bettercap build is installed, and a renamed copy of it runs
	build := []byte("\x7fELF a new bettercap build")
	if err := os.WriteFile(filepath.Join(bin, "bettercap"), build, 0o755); err != nil {
		t.Fatal(err)
	}
	installed, err := fileid.Path(filepath.Join(bin, "bettercap"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v, ok := src.verdictOf(installed); ok && v.Kind == event.VerdictTool {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, ok := src.verdictOf(installed); !ok || v.Kind != event.VerdictTool {
		t.Fatalf("the new build was not fingerprinted into the kernel: %+v", v)
	}
	copyPath := filepath.Join(t.TempDir(), "backup-agent")
	if err := os.WriteFile(copyPath, build, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := fileid.Path(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	e := event.Exec{Name: "backup-agent", Filename: copyPath, ExePath: copyPath, File: id, PID: 1 << 30, Nlink: 1, Reasons: event.ReasonUnknown}
	src.records <- event.Encode(&e)
	// THEN the copy is recognised by its content
	waitLogs(t, sink, 1)
	if m := attrOf(t, sink, 0, "mitmexec.match"); m != "content_hash" {
		t.Errorf("match %v, want content_hash", m)
	}
}

func TestReceiverReportsKernelActions(t *testing.T) {
	// GIVEN block mode
	sink := new(consumertest.LogsSink)
	_, src := startFake(t, sink, func(c *Config) { c.Action = "kill"; c.Fold.Enabled = false })
	// WHEN the kernel reports an exec it refused (LSM), one it killed and one whose kill failed
	for i, f := range []event.Flag{event.FlagDenied, event.FlagKilled, event.FlagKillFailed} {
		e := toolExec("ettercap", uint64(30+i))
		e.Flags = f
		src.records <- event.Encode(&e)
	}
	// THEN each record says what was done (judges run side by side: the
	// records are matched by pid, not by order)
	waitLogs(t, sink, 3)
	want := map[int64]string{1030: "denied", 1031: "killed", 1032: "kill_failed"}
	for i := range 3 {
		pid, _ := attrOf(t, sink, i, "process.pid").(int64)
		if got := attrOf(t, sink, i, "mitmexec.action"); got != want[pid] {
			t.Errorf("pid %d: mitmexec.action %v, want %s", pid, got, want[pid])
		}
	}
}
