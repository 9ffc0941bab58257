// SPDX-License-Identifier: Apache-2.0

package detect

import "path"

// ScriptOf returns the script file argv runs, read with the same option
// grammar the rule uses, when argv[0] names an interpreter of the catalog
// (a shell, Python, Perl, Ruby). The dynamic loader runs programs, not
// scripts, and is not one here. internal/origin names an ancestor's script
// with it.
func (c *Catalog) ScriptOf(argv []string) (script string, isInterpreter bool) {
	if len(argv) == 0 {
		return "", false
	}
	k := c.Interpreter(path.Base(argv[0]))
	if k == NotInterpreter || k == Loader || k == MuslLoader {
		return "", false
	}
	inv := parseInterpreterArgs(k, argv)
	if inv.script == elided {
		return "", true
	}
	return inv.script, true
}
