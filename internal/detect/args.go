// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"path"
	"regexp"
	"strings"
)

var (
	fromImport    = regexp.MustCompile(`(?m)(?:^|[;:])\s*from\s+([A-Za-z_][\w.]*)\s+import\s+\(?\s*([\w\s,*]+)`)
	plainImport   = regexp.MustCompile(`(?m)(?:^|[;:])\s*import\s+([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)`)
	quotedName    = regexp.MustCompile(`(?:run_module|import_module|__import__)\(\s*['"]([A-Za-z_][\w.]*)['"]`)
	scriptPath    = regexp.MustCompile(`(?:run_path|exec\(\s*open|execfile)\(\s*['"]([^'"]+)['"]`)
	consoleScript = regexp.MustCompile(`['"]console_scripts['"]\s*,\s*['"]([\w.-]+)['"]`)
)

// pythonCodeTool finds the tool that Python code starts: an import of a
// tool's entry module (from mitmproxy.tools.main import mitmdump), a module
// named in a string (runpy, importlib, __import__), or a setuptools console
// script entry point. Importing a tool's package for its library parts
// (import mitmproxy.io) is not running the tool.
func (c *Catalog) pythonCodeTool(code string) (*Tool, string) {
	var modules []string
	var names []string
	for _, m := range fromImport.FindAllStringSubmatch(code, -1) {
		modules = append(modules, m[1])
		for _, n := range strings.FieldsFunc(m[2], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			names = append(names, n)
		}
	}
	for _, m := range plainImport.FindAllStringSubmatch(code, -1) {
		for _, mod := range strings.Split(m[1], ",") {
			modules = append(modules, strings.TrimSpace(mod))
		}
	}
	for _, m := range quotedName.FindAllStringSubmatch(code, -1) {
		modules = append(modules, m[1])
	}
	for _, m := range scriptPath.FindAllStringSubmatch(code, -1) {
		if t := c.byName[path.Base(m[1])]; t != nil {
			return t, "runs " + m[1]
		}
	}
	for _, m := range consoleScript.FindAllStringSubmatch(code, -1) {
		if t := c.byName[m[1]]; t != nil && len(t.Modules) > 0 {
			return t, "console_scripts " + m[1]
		}
	}
	seen := map[string]bool{}
	for _, mod := range modules {
		if seen[mod] {
			continue
		}
		seen[mod] = true
		if t := c.moduleTool(mod, code, names); t != nil {
			return t, mod
		}
	}
	return nil, ""
}

// moduleTool returns the tool a module runs: the module itself or one of
// its submodules is in the catalog. Where tools share a module, the entry
// function named in the code decides, else the first tool listed.
func (c *Catalog) moduleTool(module, code string, names []string) *Tool {
	for m := module; m != ""; {
		if tools := c.byModule[m]; len(tools) > 0 {
			if len(tools) == 1 {
				return tools[0]
			}
			for _, t := range tools {
				for _, n := range names {
					if n == t.Entry {
						return t
					}
				}
			}
			for _, t := range tools {
				if re := c.entryCalls[t]; re != nil && re.MatchString(code) {
					return t
				}
			}
			return tools[0]
		}
		i := strings.LastIndexByte(m, '.')
		if i < 0 {
			break
		}
		m = m[:i]
	}
	return nil
}
