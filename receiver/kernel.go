package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/allowlist"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/inventory"
)

// actionOf is the configured action for a tool: its own, else the receiver's.
func (r *mitmexecReceiver) actionOf(t *detect.Tool) string {
	if t.Action != "" {
		return t.Action
	}
	return r.cfg.Action
}

// anyKill reports whether some tool is to be killed.
func (r *mitmexecReceiver) anyKill(cat *detect.Catalog) bool {
	for _, t := range cat.Tools() {
		if r.actionOf(t) == actionKill {
			return true
		}
	}
	return false
}

// kernelAction is what the exec hook may do alone. It kills only where no
// allow-list entry could silence the tool: entries look at the user, the
// parent, the container, which only user space checks.
func (r *mitmexecReceiver) kernelAction(t *detect.Tool) uint8 {
	if r.actionOf(t) == actionKill && !r.allow.MayMatchTool(t.Name) {
		return event.ActionKill
	}
	return event.ActionAlert
}

// programKernel tells the kernel what it can decide alone: the catalog's
// file names, the installed tools' identities and fingerprints, and which
// files are interpreters whose arguments user space must read.
func (r *mitmexecReceiver) programKernel(cat *detect.Catalog) (int, error) {
	for name, t := range cat.Executables() {
		if len(name) >= 32 {
			continue // the kernel table keys 31 bytes; user space still matches it
		}
		if err := r.source.PutName(name, event.Verdict{Kind: event.VerdictTool, ToolID: t.ID, Action: r.kernelAction(t)}); err != nil {
			return 0, fmt.Errorf("program kernel name table: %w", err)
		}
	}
	inv := inventory.Scan(cat, r.dirs, maxHashBytes)
	for _, err := range inv.Errors {
		r.set.Logger.Debug("installed file not fingerprinted", zap.Error(err))
	}
	for _, it := range inv.Tools {
		r.rule.AddInstalled(it.Tool, it.ID, it.SHA256, it.Fingerprint)
		v := event.Verdict{Kind: event.VerdictTool, ToolID: it.Tool.ID, Action: r.kernelAction(it.Tool)}
		if err := r.source.PutVerdict(it.ID, v); err != nil {
			return 0, fmt.Errorf("program kernel verdicts: %w", err)
		}
		if it.Fingerprint != nil {
			if err := r.source.PutFingerprint(*it.Fingerprint, v); err != nil {
				return 0, fmt.Errorf("program kernel fingerprints: %w", err)
			}
		}
	}
	for _, f := range inv.Interpreters {
		r.rule.AddInterpreter(f.Kind, f.ID, f.SHA256, f.Fingerprint)
		if err := r.source.PutVerdict(f.ID, event.Verdict{Kind: detect.KernelVerdict(f.Kind)}); err != nil {
			return 0, fmt.Errorf("program kernel verdicts: %w", err)
		}
	}
	for _, pid := range r.killer.protected() {
		if err := r.source.Protect(pid); err != nil {
			return 0, fmt.Errorf("program kernel protected processes: %w", err)
		}
	}
	return len(inv.Tools), nil
}

func toolsFromConfig(cfg []ToolConfig) []detect.Tool {
	out := make([]detect.Tool, 0, len(cfg))
	for _, t := range cfg {
		out = append(out, detect.Tool{
			Name: t.Name, Technique: t.Technique, Executables: t.Executables, Scripts: t.Scripts,
			Modules: t.Modules, SHA256: t.SHA256, Action: t.Action, Disabled: t.Disabled,
		})
	}
	return out
}

func allowFromConfig(cfg []AllowConfig) []allowlist.Entry {
	out := make([]allowlist.Entry, 0, len(cfg))
	for _, a := range cfg {
		out = append(out, allowlist.Entry{
			Tool: a.Tool, ExecutablePath: a.ExecutablePath, SHA256: a.SHA256, UID: a.UID, User: a.User,
			ParentExecutable: a.ParentExecutable, ContainerID: a.ContainerID, CgroupPrefix: a.CgroupPrefix,
		})
	}
	return out
}
