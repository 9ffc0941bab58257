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
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/inventory"
	"github.com/mitmexec/mitmexec/internal/kill"
	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/internal/wire"
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
	openModules func(queue int) (*modwatch.Watcher, error)
	obsrecv     *receiverhelper.ObsReport
	procRoot    string
	passwd      string
	bootClock   func() time.Duration // CLOCK_BOOTTIME now
	hostMntNS   uint32               // the host's mount namespace: paths in it are the ones config names

	source    execSource
	rule      *detect.Rule
	allow     *allowlist.List
	killer    *kill.Killer
	enricher  *enrich.Enricher
	hasher    *filehash.Hasher
	resource  resourceInfo
	telemetry *metadata.TelemetryBuilder
	catalog   *detect.Catalog
	dirs      []string
	watcher   *inventory.Watcher
	modules   *modwatch.Watcher
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
		procRoot: procfs.Root, passwd: "/etc/passwd", bootClock: bootClock,
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
	r.killer = kill.New(r.procRoot)
	r.hostMntNS, _ = procfs.Namespace(r.procRoot, uint32(os.Getpid()), "mnt")

	src, err := r.openSource(tracer.Options{QueueSize: r.cfg.QueueSize, PollInterval: r.cfg.PollInterval,
		SubmitAll: r.cfg.SubmitAll, Deny: r.anyKill(cat), Frames: r.cfg.NetworkBehaviour.Enabled && r.interfaces != nil,
		FrameDeny: r.behaviourAction() == actionKill})
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
	r.frameCounts, r.claims = newFrameCounts(), newClaimsSeen()
	r.execTools = &execTools{tools: map[processKey]reportedExec{}}
	r.hasher = filehash.New(r.procRoot, maxHashBytes, filehash.WithHostMountNamespace(r.hostMntNS))
	r.rule = detect.NewRule(cat, hostFiles{Hasher: r.hasher, procRoot: r.procRoot, needles: cat.Needles()}, src, r.kernelActions(cat))
	r.enricher = enrich.New(r.procRoot, r.passwd, r.hasher)
	r.resource = nodeResource(hostResource(), r.set.Logger)
	r.recent = newRecentExecs(recentInterpreterExecs)

	r.catalog = cat
	r.dirs = r.cfg.SearchPaths
	if len(r.dirs) == 0 {
		r.dirs = inventory.DefaultDirs()
	}
	if r.openModules != nil {
		if m, err := r.openModules(r.cfg.QueueSize); err == nil {
			r.modules = m
		} else {
			r.set.Logger.Warn("module loads are not watched: interpreter code that hides a tool's name is judged by its argv only", zap.Error(err))
		}
	}
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
	return nil
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

// foldKey groups repeats: the same tool started by the same parent as the
// same user from the same file. The command line is not part of it: a
// flood whose arguments vary is still one flood (fold.MaxVariants of its
// distinct command lines go out on their own).
type foldKey struct {
	claim wire.Class // a behaviour record's class of claim, "" for an exec
	tool  string
	ppid  uint32
	uid   uint32
	file  event.FileID
	exe   string
}

func foldKeyOf(rec *detectionRecord) foldKey {
	e := &rec.Exec
	k := foldKey{tool: rec.Detection.Tool.Name, ppid: e.PPID, uid: e.EUID, file: e.File, exe: e.ExePath}
	if rec.Wire != nil {
		k.claim = rec.Wire.Claim.Class
	}
	return k
}

// handle runs one record through detect -> allow -> act -> enrich -> out.
func (r *mitmexecReceiver) handle(e *event.Exec) {
	res := r.rule.Judge(e)
	if !res.Detected {
		if res.Interpreter {
			r.recent.put(e) // what it loads may still name a tool
		}
		return
	}
	r.report(detectionRecord{Exec: *e, Detection: res.Detection, SHA256: res.SHA256}, false)
}

// handleModule reports a process that opened a tool's own module file,
// with the context of its exec where the kernel sent that up.
func (r *mitmexecReceiver) handleModule(ev *modwatch.Event) {
	d, ok := r.rule.JudgeModule(ev.Tag, ev.Path)
	if !ok {
		return
	}
	e := r.execOf(ev.PID)
	// Only an interpreter running the module is a run of the tool: cat,
	// grep, a backup or an editor opening the same file is not, and
	// neither is python byte-compiling it (py_compile, compileall).
	if !r.rule.IsPython(&e) || r.rule.CompileOnly(&e) {
		return
	}
	r.report(detectionRecord{Exec: e, Detection: d}, true)
}

// report carries out the action before anything else (the tool is running),
// then enriches and hands the record out.
func (r *mitmexecReceiver) report(rec detectionRecord, moduleLoad bool) {
	r.detections.Add(1)
	rec.Time = r.wallTime(rec.Exec.BootTimeNs)
	if rec.SHA256 == "" && r.allow.NeedsSHA256() {
		rec.SHA256, _ = r.hasher.ExecSHA256(&rec.Exec) // bounded; "" when the file is gone
	}
	if r.allow.Match(r.allowSubject(&rec)) >= 0 {
		r.suppressed.Add(1)
		return
	}
	// A behaviour record is one per process and claim (claimsSeen): a
	// tool reported at its exec is reported again when it lies on the wire.
	if rec.Wire == nil && !r.out.claim(&rec, moduleLoad) {
		r.folded.Add(1) // the same process, reported already
		return
	}
	if rec.Wire == nil && r.execTools != nil {
		r.execTools.put(&rec.Exec, rec.Detection.Tool)
	}
	rec.Outcome, rec.ActionDelay = r.act(&rec)
	r.readCI(&rec)
	r.readOrigin(&rec)
	rec.Context = r.enricher.Enrich(&rec.Exec, rec.SHA256)
	r.out.offer(rec)
}

// allowSubject is what an allow-list entry may match: only facts the
// kernel vouches for. A path counts only where the process sees the
// collector's files (its mount namespace) and names the very file that
// ran: a user who mounts a tmpfs over an allowed directory in a namespace
// of their own gets no allowed path.
func (r *mitmexecReceiver) allowSubject(rec *detectionRecord) allowlist.Subject {
	e := &rec.Exec
	var paths []string
	// A path the kernel cut shows only its innermost components: it would
	// name another place. It never satisfies an entry.
	if r.hostMntNS != 0 && e.MntNS == r.hostMntNS && e.ExePath != "" && !e.Has(event.FlagExePathTruncated) {
		if id, err := fileid.Path(e.ExePath); err == nil && id.Dev == e.File.Dev && id.Ino == e.File.Ino {
			paths = append(paths, e.ExePath)
		}
	}
	cgroup := e.Cgroup
	if e.Has(event.FlagCgroupTruncated) {
		cgroup = ""
	}
	return allowlist.Subject{
		Tool: rec.Detection.Tool.Name, ExecutablePaths: paths, SHA256: rec.SHA256,
		UID: e.EUID, User: r.enricher.Owner(e.EUID), ParentExecutable: r.enricher.ParentExecutable(e),
		ContainerID: enrich.ContainerIDOf(e), Cgroup: cgroup,
	}
}

// act carries out the configured action. The kernel has already killed
// what it could decide alone; what only user space could decide (scripts,
// interpreter arguments, first sight of a copy) is killed here, late.
func (r *mitmexecReceiver) act(rec *detectionRecord) (record.Outcome, time.Duration) {
	e := &rec.Exec
	switch {
	case e.Has(event.FlagDenied):
		return record.OutcomeDenied, 0
	case rec.Wire != nil && rec.Wire.Denied:
		// the kernel refused the frame; the process that tried goes too
		if _, err := r.killer.Kill(e.PID, e.StartBootTimeNs); err != nil {
			r.set.Logger.Warn("kill after a refused frame failed", zap.Uint32("pid", e.PID), zap.Error(err))
		}
		return record.OutcomeDenied, 0
	case e.Has(event.FlagKilled):
		return record.OutcomeKilled, 0
	case e.Has(event.FlagKillFailed):
		return record.OutcomeKillFailed, 0
	case r.actionOf(rec.Detection.Tool) != actionKill:
		return record.OutcomeAlerted, 0
	}
	res, err := r.killer.Kill(e.PID, e.StartBootTimeNs)
	if err != nil {
		r.set.Logger.Warn("kill failed", zap.Uint32("pid", e.PID), zap.String("tool", rec.Detection.Tool.Name), zap.Error(err))
		return record.OutcomeKillFailed, 0
	}
	if res.Capped {
		r.set.Logger.Warn("killed the tool, but its process tree was larger than the walk's bound: some descendants live on",
			zap.Uint32("pid", e.PID), zap.String("tool", rec.Detection.Tool.Name), zap.Int("descendants_killed", res.Descendants))
	}
	return record.OutcomeKilledLate, max(time.Since(rec.Time), time.Microsecond)
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
