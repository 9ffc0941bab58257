// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"path"

	"github.com/mitmexec/mitmexec/internal/argv"
)

// ScriptOf returns the script file argv runs, read with the same option
// grammar the rule uses, when argv[0] names an interpreter of the catalog
// (a shell, Python, Perl, Ruby). The dynamic loader runs programs, not
// scripts, and is not one here. internal/origin names an ancestor's script
// with it.
func (c *Catalog) ScriptOf(args []string) (script string, isInterpreter bool) {
	if len(args) == 0 {
		return "", false
	}
	k := c.Interpreter(path.Base(args[0]))
	if k == NotInterpreter || k == Loader || k == MuslLoader {
		return "", false
	}
	inv := argv.Parse(k, args)
	if inv.Script == argv.Elided {
		return "", true
	}
	return inv.Script, true
}
