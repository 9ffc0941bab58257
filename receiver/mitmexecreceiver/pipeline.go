// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"time"

	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/allowlist"
	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/fileid"
	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/record"
)

// A detection's way through the receiver is one pass of stages, in order:
//
//	judge    handle (an exec), handleModule (a module file opened),
//	         handleFrame (a lie on the wire): is it a tool, which, and why
//	enrich   once: what the allow-list decides on and the record says
//	decide   the allow-list, one report per process, the action
//	complete what may wait until the tool has been acted on
//	fold     the outbox: repeats folded, the ceiling, the pipeline
//
// Each stage reads only what the stages before it wrote on the record.

// processEnricher is the enrich stage's seam: internal/enrich reads /proc
// and the user database; tests count its calls with a fake.
type processEnricher interface {
	// Process is what the host says of the process: owner, container,
	// parent and ancestors' executables.
	Process(e *event.Exec) enrich.Context
	// FileSHA256 hashes the executable into c where c has no hash yet.
	FileSHA256(e *event.Exec, c *enrich.Context)
}

func newEnricher(procRoot, passwd string, h enrich.Hasher) processEnricher {
	return enrich.New(procRoot, passwd, h)
}

// handle judges one exec record and reports a detection.
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

// report takes a judged detection through the other stages.
func (r *mitmexecReceiver) report(rec detectionRecord, moduleLoad bool) {
	r.detections.Add(1)
	rec.Time = r.wallTime(rec.Exec.BootTimeNs)
	r.enrich(&rec)
	if !r.decide(&rec, moduleLoad) {
		return
	}
	r.complete(&rec)
	r.out.offer(rec)
}

// enrich reads, once, what the host says of the process: the allow-list
// decides on it and the record carries it. The executable's hash is read
// here only when an allow entry needs it (the rule has it already for a
// file it read): a kill never waits on hashing a file.
func (r *mitmexecReceiver) enrich(rec *detectionRecord) {
	rec.Context = r.enricher.Process(&rec.Exec)
	rec.Context.SHA256 = rec.SHA256
	if r.allow.NeedsSHA256() {
		r.enricher.FileSHA256(&rec.Exec, &rec.Context) // bounded; "" when the file is gone
	}
}

// decide applies the allow-list, keeps one report per process and carries
// out the action before anything else is read (the tool is running). It
// reports whether the detection goes on to a record.
func (r *mitmexecReceiver) decide(rec *detectionRecord, moduleLoad bool) bool {
	if r.allow.Match(r.allowSubject(rec)) >= 0 {
		r.suppressed.Add(1)
		return false
	}
	// A behaviour record is one per process and claim (claimsSeen): a
	// tool reported at its exec is reported again when it lies on the wire.
	if rec.Wire == nil && !r.out.claim(rec, moduleLoad) {
		r.folded.Add(1) // the same process, reported already
		return false
	}
	if rec.Wire == nil && r.execTools != nil {
		r.execTools.put(&rec.Exec, rec.Detection.Tool)
	}
	rec.Outcome, rec.ActionDelay = r.act(rec)
	return true
}

// complete reads what waited for the action: the executable's hash where
// no allow entry needed it, the CI job and the origin.
func (r *mitmexecReceiver) complete(rec *detectionRecord) {
	r.enricher.FileSHA256(&rec.Exec, &rec.Context)
	r.readCI(rec)
	r.readOrigin(rec)
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
	c := &rec.Context // the enrich stage's, which the record carries too
	return allowlist.Subject{
		Tool: rec.Detection.Tool.Name, ExecutablePaths: paths, SHA256: c.SHA256,
		UID: e.EUID, User: c.Owner, ParentExecutable: c.ParentExecutable,
		ContainerID: c.ContainerID, Cgroup: cgroup,
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
