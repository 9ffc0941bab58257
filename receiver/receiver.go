package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/allowlist"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/filehash"
	"github.com/mitmexec/mitmexec/internal/fold"
	"github.com/mitmexec/mitmexec/internal/inventory"
	"github.com/mitmexec/mitmexec/receiver/internal/metadata"
)

// execSource is the kernel side as the receiver sees it: raw exec records
// coming up, verdicts going down. internal/tracer implements it on Linux;
// tests use a fake.
type execSource interface {
	Records() <-chan []byte
	PutVerdict(id event.FileID, v event.Verdict) error
	PutName(name string, v event.Verdict) error
	PutFingerprint(fp event.Fingerprint, v event.Verdict) error
	Protect(pid uint32) error
	Counters() (sourceCounters, error)
	// Deny is nil when the kernel refuses tool execs itself (BPF LSM),
	// else why it does not.
	Deny() error
	Hook() string
	Close() error
}

// sourceCounters are the kernel side's own counts.
type sourceCounters struct {
	Execs         uint64 // execs the kernel filter saw
	Submitted     uint64 // records sent up
	ReserveFailed uint64 // records lost in the kernel: ring buffer full
	Kills         uint64 // SIGKILLs from the exec hook
	QueueDropped  uint64 // records dropped between reader and pipeline
}

type sourceOptions struct {
	QueueSize    int
	PollInterval time.Duration
	SubmitAll    bool
	Deny         bool
}

type openSourceFunc func(sourceOptions) (execSource, error)

// maxHashBytes bounds a file the receiver hashes: a huge binary costs
// bounded time and memory and is judged by name and fingerprint instead.
const maxHashBytes = 512 << 20

type mitmexecReceiver struct {
	set        receiver.Settings
	cfg        *Config
	next       consumer.Logs
	openSource openSourceFunc
	obsrecv    *receiverhelper.ObsReport
	procRoot   string
	passwd     string
	bootClock  func() time.Duration // CLOCK_BOOTTIME now

	source    execSource
	rule      *detect.Rule
	allow     *allowlist.List
	folder    *fold.Folder[foldKey, detectionRecord]
	killer    *killer
	enricher  *enrich.Enricher
	hasher    *filehash.Hasher
	resource  resourceInfo
	telemetry *metadata.TelemetryBuilder
	catalog   *detect.Catalog
	dirs      []string
	watcher   *inventory.Watcher

	cancel       context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once

	decodeErrors   atomic.Uint64
	verdictErrors  atomic.Uint64
	detections     atomic.Uint64
	suppressed     atomic.Uint64
	folded         atomic.Uint64
	consumeDropped atomic.Uint64
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs, open openSourceFunc) (*mitmexecReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "ebpf",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &mitmexecReceiver{
		set: set, cfg: cfg, next: next, openSource: open, obsrecv: obsrecv,
		procRoot: "/proc", passwd: "/etc/passwd", bootClock: bootClock,
	}, nil
}

// Start loads and attaches the tracer before it returns, so that a
// collector that reports ready is already watching; the reading runs on its
// own context.
func (r *mitmexecReceiver) Start(_ context.Context, host component.Host) error {
	cat, err := detect.NewCatalog(detect.Merge(detect.DefaultTools(), toolsFromConfig(r.cfg.Tools)))
	if err != nil {
		return fmt.Errorf("mitmexec receiver %s: tools: %w", r.set.ID, err)
	}
	r.allow = allowlist.New(allowFromConfig(r.cfg.Allow))
	window := time.Duration(0)
	if r.cfg.Fold.Enabled {
		window = r.cfg.Fold.Window
	}
	r.folder = fold.New[foldKey, detectionRecord](window)
	r.killer = newKiller(r.procRoot)

	src, err := r.openSource(sourceOptions{QueueSize: r.cfg.QueueSize, PollInterval: r.cfg.PollInterval,
		SubmitAll: r.cfg.SubmitAll, Deny: r.anyKill(cat)})
	if err != nil {
		err = fmt.Errorf("mitmexec receiver %s: %w", r.set.ID, err)
		if r.cfg.ErrorMode == errorModeIgnore {
			// The collector runs on without this receiver; the health check
			// and the log say why.
			r.set.Logger.Error("mitmexec receiver disabled (error_mode: ignore)", zap.Error(err))
			componentstatus.ReportStatus(host, componentstatus.NewPermanentErrorEvent(err))
			return nil
		}
		return err
	}
	r.source = src
	r.hasher = filehash.New(r.procRoot, maxHashBytes)
	r.rule = detect.NewRule(cat, r.hasher, r.kernelAction)
	r.enricher = enrich.New(r.procRoot, r.passwd, r.hasher)
	r.resource = hostResource()

	r.catalog = cat
	r.dirs = r.cfg.SearchPaths
	if len(r.dirs) == 0 {
		r.dirs = inventory.DefaultDirs()
	}
	fingerprinted, err := r.programKernel(cat)
	if err != nil {
		_ = src.Close()
		r.source = nil
		return fmt.Errorf("mitmexec receiver %s: %w", r.set.ID, err)
	}
	if err := r.registerTelemetry(); err != nil {
		_ = src.Close()
		r.source = nil
		return fmt.Errorf("mitmexec receiver %s: telemetry: %w", r.set.ID, err)
	}
	if r.anyKill(cat) {
		if err := src.Deny(); err != nil {
			r.set.Logger.Info("block mode: BPF LSM unavailable, tools are killed from the exec hook instead", zap.Error(err))
		} else {
			r.set.Logger.Info("block mode: BPF LSM attached, tools are denied before they run")
		}
	}
	r.set.Logger.Info("mitmexec watching execs",
		zap.String("hook", src.Hook()),
		zap.Int("tools", len(cat.Tools())),
		zap.Int("installed_binaries_fingerprinted", fingerprinted),
		zap.String("action", r.cfg.Action),
		zap.Int("allow_entries", r.allow.Len()))

	// Installed files change (upgrades, a tool dropped into /usr/local/bin):
	// the scan runs again so renamed copies of new builds are known too.
	if w, err := inventory.Watch(r.dirs); err == nil {
		r.watcher = w
	} else {
		r.set.Logger.Warn("installed tools are fingerprinted at start only", zap.Error(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.process(ctx, host)
	}()
	return nil
}

func (r *mitmexecReceiver) process(ctx context.Context, host component.Host) {
	records := r.source.Records()
	tick := time.NewTicker(foldTick(r.cfg.Fold.Window))
	defer tick.Stop()
	// At shutdown the source closes its channel once the reader stopped; what
	// was queued is still handled, and the held repeats leave with their
	// counts. Once Shutdown's deadline passes ctx is cancelled and whatever
	// is left is dropped and counted, never silently.
	defer func() { r.emitFolded(ctx, host, r.folder.Flush()) }()
	var changes <-chan struct{}
	if r.watcher != nil {
		changes = r.watcher.Changes()
	}
	// Changes come in bursts (a package upgrade writes many files): scan
	// once the burst is over.
	rescan := time.NewTimer(time.Hour)
	rescan.Stop()
	for {
		select {
		case <-changes:
			rescan.Reset(time.Second)
		case <-rescan.C:
			if _, err := r.programKernel(r.catalog); err != nil {
				r.set.Logger.Warn("rescan of installed tools failed", zap.Error(err))
			}
		case now := <-tick.C:
			r.emitFolded(ctx, host, r.folder.Expired(now))
		case raw, ok := <-records:
			if !ok {
				return
			}
			r.handle(ctx, host, raw)
		}
	}
}

func foldTick(window time.Duration) time.Duration {
	return max(min(window/4, time.Second), 25*time.Millisecond)
}

// foldKey groups repeats: the same tool started by the same parent as the
// same user, from the same file with the same command line. A different
// command line is new information for the analyst, not a repeat.
type foldKey struct {
	tool     string
	ppid     uint32
	uid      uint32
	exe      string
	filename string
	argv     string
}

func foldKeyOf(rec *detectionRecord) foldKey {
	e := &rec.Exec
	return foldKey{
		tool: rec.Detection.Tool.Name, ppid: e.PPID, uid: e.EUID,
		exe: e.ExePath, filename: e.Filename, argv: strings.Join(e.Args, "\x00"),
	}
}

// handle runs one record through decode -> detect -> enrich -> allow ->
// act -> fold -> translate -> consume.
func (r *mitmexecReceiver) handle(ctx context.Context, host component.Host, raw []byte) {
	e, err := event.Decode(raw)
	if err != nil {
		r.decodeErrors.Add(1)
		r.set.Logger.Debug("undecodable exec record", zap.Error(err))
		return
	}
	res := r.rule.Judge(&e)
	if res.NewIdentity {
		if err := r.source.PutVerdict(e.File, res.Identity); err != nil {
			r.verdictErrors.Add(1)
		}
	}
	if !res.Detected {
		return
	}
	r.detections.Add(1)
	rec := detectionRecord{
		Exec:      e,
		Detection: res.Detection,
		Context:   r.enricher.Enrich(&e, res.SHA256),
		Time:      r.wallTime(e.BootTimeNs),
	}
	if r.allow.Match(r.allowSubject(&rec)) >= 0 {
		r.suppressed.Add(1)
		return
	}
	rec.Action, rec.ActionDelay = r.act(&rec)
	if !r.folder.Offer(foldKeyOf(&rec), rec, time.Now()) {
		r.folded.Add(1)
		return
	}
	r.emit(ctx, host, rec)
}

func (r *mitmexecReceiver) allowSubject(rec *detectionRecord) allowlist.Subject {
	e := &rec.Exec
	paths := []string{e.ExePath}
	if e.Filename != "" {
		paths = append(paths, e.Filename)
	}
	if rec.Detection.Script != "" {
		paths = append(paths, rec.Detection.Script)
	}
	return allowlist.Subject{
		Tool: rec.Detection.Tool.Name, ExecutablePaths: paths, SHA256: rec.Context.SHA256,
		UID: e.EUID, User: rec.Context.Owner, ParentExecutable: rec.Context.ParentExecutable,
		ContainerID: rec.Context.ContainerID, Cgroup: e.Cgroup,
	}
}

// act carries out the configured action. The kernel has already killed
// what it could decide alone; what only user space could decide (scripts,
// interpreter arguments, first sight of a copy) is killed here, late.
func (r *mitmexecReceiver) act(rec *detectionRecord) (string, time.Duration) {
	e := &rec.Exec
	switch {
	case e.Has(event.FlagDenied):
		return "denied", 0
	case e.Has(event.FlagKilled):
		return "killed", 0
	case e.Has(event.FlagKillFailed):
		return "kill_failed", 0
	case r.actionOf(rec.Detection.Tool) != actionKill:
		return "alerted", 0
	}
	if err := r.killer.kill(e.PID, e.StartBootTimeNs); err != nil {
		r.set.Logger.Warn("kill failed", zap.Uint32("pid", e.PID), zap.String("tool", rec.Detection.Tool.Name), zap.Error(err))
		return "kill_failed", 0
	}
	return "killed_late", max(time.Since(rec.Time), time.Microsecond)
}

func (r *mitmexecReceiver) emitFolded(ctx context.Context, host component.Host, folded []fold.Folded[detectionRecord]) {
	for _, f := range folded {
		rec := f.Record
		rec.RepeatCount = f.Count
		r.emit(ctx, host, rec)
	}
}

func (r *mitmexecReceiver) emit(ctx context.Context, host component.Host, rec detectionRecord) {
	logs, sl := newLogs(r.resource)
	appendDetection(sl, &rec, time.Now(), r.cfg.MaxArgsBytes)
	r.consume(ctx, host, logs.LogRecordCount(), func(ctx context.Context) error { return r.next.ConsumeLogs(ctx, logs) })
}

// consume hands records to the next consumer, retrying errors that are not
// permanent with backoff until the receiver shuts down. A permanent error
// drops the records; both are counted by obsreport as refused.
func (r *mitmexecReceiver) consume(ctx context.Context, _ component.Host, n int, send func(context.Context) error) {
	backoff := 100 * time.Millisecond
	for {
		opCtx := r.obsrecv.StartLogsOp(ctx)
		err := send(opCtx)
		r.obsrecv.EndLogsOp(opCtx, metadata.Type.String(), n, err)
		if err == nil {
			return
		}
		if consumererror.IsPermanent(err) {
			r.consumeDropped.Add(uint64(n))
			r.set.Logger.Error("detection dropped: the next consumer refused it permanently", zap.Error(err))
			return
		}
		select {
		case <-ctx.Done():
			r.consumeDropped.Add(uint64(n))
			r.set.Logger.Error("detection dropped at shutdown while the next consumer kept failing", zap.Error(err))
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// wallTime converts the kernel's CLOCK_BOOTTIME stamp to wall time at the
// moment of conversion, so suspend and clock steps are accounted for.
func (r *mitmexecReceiver) wallTime(bootNs uint64) time.Time {
	now := time.Now()
	ago := r.bootClock() - time.Duration(bootNs)
	if ago < 0 {
		ago = 0
	}
	return now.Add(-ago)
}

// Shutdown stops reading and detaches, then lets the pipeline finish what
// was queued until ctx's deadline. Safe without Start and twice.
func (r *mitmexecReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.shutdownOnce.Do(func() {
		if r.watcher != nil {
			_ = r.watcher.Close()
		}
		if r.source != nil {
			err = r.source.Close()
		}
		done := make(chan struct{})
		go func() {
			r.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			if r.cancel != nil {
				r.cancel()
			}
			<-done
		}
		if r.cancel != nil {
			r.cancel()
		}
		if r.telemetry != nil {
			r.telemetry.Shutdown()
		}
	})
	return err
}

func hostResource() resourceInfo {
	res := resourceInfo{OSType: runtime.GOOS, ServiceName: metadata.Type.String()}
	res.HostName, _ = os.Hostname()
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		res.HostID = strings.TrimSpace(string(b))
	}
	return res
}
