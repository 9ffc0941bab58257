// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"strings"

	"github.com/mitmexec/mitmexec/internal/elfid"
)

// cpythonUsage is CPython's usage line (Python/initconfig.c), in the
// read-only data of every statically linked python. Hex-encoded like the
// catalog's signatures, so that this collector's own binary does not carry
// it.
var cpythonUsage = signature("75736167653a20256c73205b6f7074696f6e5d202e2e2e205b2d6320636d64207c202d6d206d6f64207c2066696c65207c202d5d205b6172675d202e2e2e")[0]

// InterpreterNeedles are the byte strings the ELF reader looks for to know
// an interpreter the host never had by its structure.
func InterpreterNeedles() []string { return []string{cpythonUsage} }

// pythonByStructure reports whether an ELF structure is a Python
// interpreter's, whatever the file is called and whether or not the host
// has it installed: a python that links libpython or pypy's library, or
// one that holds CPython's usage line. A Go program holding the line is a
// program about Python (this collector), not python.
func pythonByStructure(st *elfid.Identity) bool {
	if st == nil || st.GoModule != "" {
		return false
	}
	for _, n := range st.Needed {
		if strings.HasPrefix(n, "libpython3") || strings.HasPrefix(n, "libpython2") || strings.HasPrefix(n, "libpypy") {
			return true
		}
	}
	for _, f := range st.Found {
		if f == cpythonUsage {
			return true
		}
	}
	return false
}
