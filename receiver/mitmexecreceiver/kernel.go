// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/allowlist"
	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/inventory"
	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/safeopen"
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

// kernelActions says, per tool, what the exec hook may do alone. It kills
// only where no allow-list entry could silence the tool: entries look at
// the user, the parent, the container, which only user space checks.
func (r *mitmexecReceiver) kernelActions(cat *detect.Catalog) map[string]uint8 {
	out := map[string]uint8{}
	for _, t := range cat.Tools() {
		if r.actionOf(t) == actionKill && !r.allow.MayMatchTool(t.Name) {
			out[t.Name] = event.ActionKill
		}
	}
	return out
}

// programKernel tells the kernel what it can decide alone: the catalog's
// file names, the installed tools' identities and fingerprints, and which
// files are interpreters whose arguments user space must read.
func (r *mitmexecReceiver) programKernel(cat *detect.Catalog) (int, error) {
	for name, t := range cat.Executables() {
		if len(name) >= 32 {
			continue // the kernel table keys 31 bytes; user space still matches it
		}
		if err := r.source.PutName(name, r.rule.ToolVerdict(t)); err != nil {
			return 0, fmt.Errorf("program kernel name table: %w", err)
		}
	}
	inv := inventory.Scan(cat, r.dirs, maxHashBytes)
	for _, err := range inv.Errors {
		r.set.Logger.Debug("installed file not fingerprinted", zap.Error(err))
	}
	for _, it := range inv.Tools {
		var structure *elfid.Identity
		if it.Fingerprint != nil { // a binary, not a script
			if st, err := installedStructure(it.Path); err == nil {
				structure = &st
			} else {
				r.set.Logger.Debug("installed tool's structure not read", zap.String("path", it.Path), zap.Error(err))
			}
		}
		if err := r.rule.AddInstalled(it.Tool, it.ID, it.SHA256, it.Fingerprint, structure); err != nil {
			return 0, fmt.Errorf("program kernel with installed %s: %w", it.Path, err)
		}
	}
	for _, f := range inv.Interpreters {
		// the structure names a patched copy (a header byte changed) that
		// neither the hash nor the fingerprint recognises any more
		var structure *elfid.Identity
		if f.Fingerprint != nil {
			if st, err := installedStructure(f.Path); err == nil {
				structure = &st
			}
		}
		if err := r.rule.AddInterpreter(f.Kind, f.ID, f.SHA256, f.Fingerprint, structure); err != nil {
			return 0, fmt.Errorf("program kernel with interpreter %s: %w", f.Path, err)
		}
	}
	for _, f := range inventory.Compilers(maxHashBytes) {
		r.rule.AddCompiler(f.SHA256)
	}
	if r.modules != nil {
		n, err := r.modules.Set(moduleMarks(cat))
		if err != nil {
			r.set.Logger.Debug("some tool module files are not watched", zap.Error(err))
		}
		r.set.Logger.Debug("tool module files watched", zap.Int("files", n))
	}
	for _, p := range r.killer.Protected() {
		if err := r.source.Protect(p.PID, p.StartTicks); err != nil {
			return 0, fmt.Errorf("program kernel protected processes: %w", err)
		}
	}
	return len(inv.Tools), nil
}

// installedStructure reads the structure of an installed tool's build, so
// that a modified copy of it (bytes appended, a section added) is known by
// its code and constant data.
func installedStructure(p string) (elfid.Identity, error) {
	f, st, err := safeopen.OpenRegular(p)
	if err != nil {
		return elfid.Identity{}, err
	}
	defer f.Close()
	return elfid.Read(f, st.Size, elfid.Options{MaxBytes: maxStructureBytes, HashSegments: true})
}

// moduleMarks lists the files of every catalog module that starts a tool:
// whatever a Python program's argv says, running the tool opens one of them.
func moduleMarks(cat *detect.Catalog) []modwatch.Mark {
	roots := modwatch.PythonRoots()
	var marks []modwatch.Mark
	seen := map[string]bool{}
	for _, t := range cat.Tools() {
		for _, m := range t.Modules {
			if seen[m] {
				continue
			}
			seen[m] = true
			for _, p := range modwatch.Locate(m, roots) {
				marks = append(marks, modwatch.Mark{Path: p, Tag: m})
			}
		}
	}
	return marks
}

func toolsFromConfig(cfg []ToolConfig) []detect.Tool {
	out := make([]detect.Tool, 0, len(cfg))
	for _, t := range cfg {
		out = append(out, detect.Tool{
			Name: t.Name, Technique: t.Technique, Executables: t.Executables, Scripts: t.Scripts,
			Modules: t.Modules, SHA256: t.SHA256, Action: t.Action, Disabled: t.Disabled,
			GoModules: t.GoModules, SectionSHA256: t.SectionSHA256, Strings: t.Strings, Libraries: t.Libraries,
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
