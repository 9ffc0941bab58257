// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
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
	"github.com/mitmexec/mitmexec/internal/inventory"
	"github.com/mitmexec/mitmexec/internal/kill"
	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// execSource is the kernel side as the receiver sees it: raw exec records
// coming up, verdicts going down. *tracer.Tracer is one on Linux; tests use
// a fake.
type execSource interface {
	Records() <-chan []byte
	PutVerdict(id event.FileID, v event.Verdict) error
	PutName(name string, v event.Verdict) error
	PutFingerprint(fp event.Fingerprint, v event.Verdict) error
	Protect(pid uint32, startTicks uint64) error
	Stats() (tracer.Stats, error)
	// Deny is nil when the kernel refuses tool execs itself (BPF LSM),
	// else why it does not.
	Deny() error
	Hook() string
	Close() error
}

type openSourceFunc func(tracer.Options) (execSource, error)

// moduleWatch is the watch on the opens of tools' module files as the
// receiver sees it; *modwatch.Watcher is one on Linux, tests use a fake.
type moduleWatch interface {
	Events() <-chan modwatch.Event
	Set(marks []modwatch.Mark) (int, error)
	Stats() modwatch.Stats
	Close() error
}

// maxHashBytes bounds a file the receiver hashes: a huge binary costs
// bounded time and memory and is judged by name and fingerprint instead.
const maxHashBytes = 512 << 20

type mitmexecReceiver struct {
	set        receiver.Settings
	cfg        *Config
	next       consumer.Logs
	openSource openSourceFunc
	// openModules watches the opens of tools' module files (fanotify);
	// nil leaves them unwatched (tests of the pipeline with a fake source).
	openModules func(queue int) (moduleWatch, error)
	newEnricher func(procRoot, passwd string, h enrich.Hasher) processEnricher
	obsrecv     *receiverhelper.ObsReport
	procRoot    string
	passwd      string
	bootClock   func() time.Duration // CLOCK_BOOTTIME now
	hostMntNS   uint32               // the host's mount namespace: paths in it are the ones config names

	source    execSource
	rule      *detect.Rule
	allow     *allowlist.List
	killer    *kill.Killer
	enricher  processEnricher
	hasher    *filehash.Hasher
	resource  resourceInfo
	telemetry *metadata.TelemetryBuilder
	catalog   *detect.Catalog
	dirs      []string
	watcher   *inventory.Watcher
	modules   moduleWatch
	// The behaviour tier (behaviour.go): nil interfaces leaves it off.
	interfaces  interfaceLookup
	frameCounts *frameCounts
	claims      *claimsSeen
	execTools   *execTools

	// Judging runs beside the ring-buffer reader: a slow file delays only
	// the judge reading it. Records the kernel already named as a tool go
	// on the urgent queue, which one judge serves alone, so they overtake
	// pending unknowns.
	urgent, normal chan judgeJob
	out            *outbox
	recent         *recentExecs

	cancel       context.CancelFunc
	loops        sync.WaitGroup // reader loop and judges
	emitter      sync.WaitGroup
	shutdownOnce sync.Once

	decodeErrors   atomic.Uint64
	detections     atomic.Uint64
	suppressed     atomic.Uint64
	folded         atomic.Uint64
	consumeDropped atomic.Uint64
	judgeDropped   atomic.Uint64
	moduleLoads    atomic.Uint64
	summarized     atomic.Uint64
	originUnread   atomic.Uint64 // origin.go
}

// judgeJob is one exec record, or one open of a tool's module file.
type judgeJob struct {
	exec   event.Exec
	module *modwatch.Event
}

// judges is how many goroutines judge records that need reading files;
// one more serves the urgent queue alone.
const judges = 3

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
		procRoot: procfs.Root, passwd: "/etc/passwd", bootClock: bootClock, newEnricher: newEnricher,
	}, nil
}

// Start loads and attaches the tracer before it returns, so that a
// collector that reports ready is already watching; the reading runs on its
// own context. Each step is a stage of its own: the configuration, the
// kernel side, the stages a detection goes through (pipeline.go), what the
// kernel can decide alone, telemetry, then the goroutines.
func (r *mitmexecReceiver) Start(_ context.Context, host component.Host) error {
	cat, err := r.configure()
	if err != nil {
		return err
	}
	src, err := r.openSource(tracer.Options{QueueSize: r.cfg.QueueSize, PollInterval: r.cfg.PollInterval,
		SubmitAll: r.cfg.SubmitAll, Deny: r.anyKill(cat), Frames: r.cfg.NetworkBehaviour.Enabled && r.interfaces != nil,
		FrameDeny: r.behaviourAction() == actionKill})
	if err != nil {
		return r.sourceFailed(host, err)
	}
	r.source = src
	r.buildStages(cat)
	r.watchModules()
	fingerprinted, err := r.programKernel(cat)
	if err != nil {
		r.closeSources()
		return fmt.Errorf("mitmexec receiver %s: %w", r.set.ID, err)
	}
	// The scan read every installed tool and interpreter: hand that memory
	// back now rather than through the runtime's background scavenger,
	// which would otherwise be most of an idle collector's CPU for a while.
	debug.FreeOSMemory()
	if err := r.registerTelemetry(); err != nil {
		r.closeSources()
		return fmt.Errorf("mitmexec receiver %s: telemetry: %w", r.set.ID, err)
	}
	r.logStart(cat, fingerprinted)
	r.watchInstalled()
	r.run(host)
	return nil
}

// configure reads the catalog and the allow-list from the configuration.
func (r *mitmexecReceiver) configure() (*detect.Catalog, error) {
	cat, err := detect.NewCatalog(detect.Merge(detect.DefaultTools(), toolsFromConfig(r.cfg.Tools)))
	if err != nil {
		return nil, fmt.Errorf("mitmexec receiver %s: tools: %w", r.set.ID, err)
	}
	r.allow = allowlist.New(allowFromConfig(r.cfg.Allow))
	r.killer = kill.New(r.procRoot)
	r.hostMntNS, _ = procfs.Namespace(r.procRoot, uint32(os.Getpid()), "mnt")
	return cat, nil
}

// sourceFailed is Start's answer when the tracer cannot be loaded.
func (r *mitmexecReceiver) sourceFailed(host component.Host, err error) error {
	err = fmt.Errorf("mitmexec receiver %s: %w", r.set.ID, err)
	if r.cfg.ErrorMode != errorModeIgnore {
		return err
	}
	// The collector runs on without this receiver; the health check and
	// the log say why.
	r.set.Logger.Error("mitmexec receiver disabled (error_mode: ignore)", zap.Error(err))
	componentstatus.ReportStatus(host, componentstatus.NewPermanentErrorEvent(err))
	return nil
}

// buildStages makes the stages a detection goes through (pipeline.go).
func (r *mitmexecReceiver) buildStages(cat *detect.Catalog) {
	r.frameCounts, r.claims = newFrameCounts(), newClaimsSeen()
	r.execTools = newExecTools()
	r.hasher = filehash.New(r.procRoot, maxHashBytes, filehash.WithHostMountNamespace(r.hostMntNS))
	r.rule = detect.NewRule(cat, hostFiles{Hasher: r.hasher, procRoot: r.procRoot, needles: cat.Needles()}, r.source, r.kernelActions(cat))
	r.enricher = r.newEnricher(r.procRoot, r.passwd, r.hasher)
	r.resource = nodeResource(hostResource(), r.set.Logger)
	r.recent = newRecentExecs(recentInterpreterExecs)
	r.catalog = cat
	r.dirs = r.cfg.SearchPaths
	if len(r.dirs) == 0 {
		r.dirs = inventory.DefaultDirs()
	}
}

// watchModules watches the opens of tools' module files where it can.
func (r *mitmexecReceiver) watchModules() {
	if r.openModules == nil {
		return
	}
	m, err := r.openModules(r.cfg.QueueSize)
	if err != nil {
		r.set.Logger.Warn("module loads are not watched: interpreter code that hides a tool's name is judged by its argv only", zap.Error(err))
		return
	}
	r.modules = m
}

func (r *mitmexecReceiver) logStart(cat *detect.Catalog, fingerprinted int) {
	if r.anyKill(cat) {
		if err := r.source.Deny(); err != nil {
			r.set.Logger.Info("block mode: BPF LSM unavailable, tools are killed from the exec hook instead", zap.Error(err))
		} else {
			r.set.Logger.Info("block mode: BPF LSM attached, tools are denied before they run")
		}
	}
	r.set.Logger.Info("mitmexec watching execs",
		zap.String("hook", r.source.Hook()),
		zap.Int("tools", len(cat.Tools())),
		zap.Int("installed_binaries_fingerprinted", fingerprinted),
		zap.String("action", r.cfg.Action),
		zap.Int("allow_entries", r.allow.Len()))
}

// watchInstalled rescans when installed files change (upgrades, a tool
// dropped into /usr/local/bin), so renamed copies of new builds are known
// too.
func (r *mitmexecReceiver) watchInstalled() {
	w, err := inventory.Watch(r.dirs)
	if err != nil {
		r.set.Logger.Warn("installed tools are fingerprinted at start only", zap.Error(err))
		return
	}
	r.watcher = w
}

// run starts the reader, the judges, the frame judge and the emitter on a
// context of their own.
func (r *mitmexecReceiver) run(host component.Host) {
	window := time.Duration(0)
	if r.cfg.Fold.Enabled {
		window = r.cfg.Fold.Window
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.urgent = make(chan judgeJob, r.cfg.QueueSize)
	r.normal = make(chan judgeJob, r.cfg.QueueSize)
	r.out = newOutbox(r, window)
	r.emitter.Add(1)
	go func() {
		defer r.emitter.Done()
		r.out.run(ctx, host)
	}()
	r.loops.Add(2 + judges)
	go func() {
		defer r.loops.Done()
		r.process()
	}()
	go func() {
		defer r.loops.Done()
		r.judge(true)
	}()
	for range judges {
		go func() {
			defer r.loops.Done()
			r.judge(false)
		}()
	}
	r.startFrames()
	// When the reader and every judge are done, what is held leaves.
	go func() {
		r.loops.Wait()
		r.out.close()
	}()
}

func (r *mitmexecReceiver) closeSources() {
	if r.modules != nil {
		_ = r.modules.Close()
		r.modules = nil
	}
	if r.source != nil {
		_ = r.source.Close()
		r.source = nil
	}
}

// process reads the kernel's records and module loads and hands them to
// the judges without ever waiting on one: a full queue drops and counts.
func (r *mitmexecReceiver) process() {
	defer close(r.urgent)
	defer close(r.normal)
	records := r.source.Records()
	var changes <-chan struct{}
	if r.watcher != nil {
		changes = r.watcher.Changes()
	}
	var loads <-chan modwatch.Event
	if r.modules != nil {
		loads = r.modules.Events()
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
		case ev, ok := <-loads:
			if !ok {
				loads = nil
				continue
			}
			r.moduleLoads.Add(1)
			r.enqueue(r.urgent, judgeJob{module: &ev})
		case raw, ok := <-records:
			if !ok {
				return
			}
			e, err := event.Decode(raw)
			if err != nil {
				r.decodeErrors.Add(1)
				r.set.Logger.Debug("undecodable exec record", zap.Error(err))
				continue
			}
			q := r.normal
			if e.KernelToolID != 0 || e.Has(event.FlagDenied) {
				q = r.urgent
			}
			r.enqueue(q, judgeJob{exec: e})
		}
	}
}

func (r *mitmexecReceiver) enqueue(q chan judgeJob, j judgeJob) {
	select {
	case q <- j:
	default:
		r.judgeDropped.Add(1)
	}
}

// judge serves the urgent queue first; the urgent judge serves nothing else.
func (r *mitmexecReceiver) judge(urgentOnly bool) {
	urgent, normal := r.urgent, r.normal
	if urgentOnly {
		normal = nil
	}
	for urgent != nil || normal != nil {
		j, fromUrgent, ok := take(urgent, normal)
		switch {
		case ok:
			r.judgeOne(j)
		case fromUrgent:
			urgent = nil // closed: the reader stopped
		default:
			normal = nil
		}
	}
}

// take returns the next job, an urgent one whenever one waits; ok is false
// when the queue it came from is closed. A nil queue is never read.
func take(urgent, normal <-chan judgeJob) (j judgeJob, fromUrgent, ok bool) {
	select {
	case j, ok = <-urgent:
		return j, true, ok
	default:
	}
	select {
	case j, ok = <-urgent:
		return j, true, ok
	case j, ok = <-normal:
		return j, false, ok
	}
}

func (r *mitmexecReceiver) judgeOne(j judgeJob) {
	if j.module != nil {
		r.handleModule(j.module)
		return
	}
	r.handle(&j.exec)
}

func (r *mitmexecReceiver) emit(ctx context.Context, host component.Host, rec detectionRecord) {
	logs, sl := newLogs(r.resource.forRecord(ctx, &rec))
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
		if r.modules != nil {
			_ = r.modules.Close()
		}
		if r.source != nil {
			err = r.source.Close()
		}
		// The emitter ends once the reader and the judges are done and
		// what they held has left. A judge stuck on a hostile file does not
		// hold shutdown past its deadline: its record is lost and counted.
		done := make(chan struct{})
		go func() {
			r.emitter.Wait()
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
