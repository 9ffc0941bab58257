// SPDX-License-Identifier: Apache-2.0

package argv

import "strings"

// Interpreter classifies a program by its base name: python3.11 is
// Python, ld-linux-riscv64-lp64d.so.1 the glibc loader. A name says what a
// file is only where its content said nothing (internal/detect judges the
// content first); redaction has nothing else to go by.
func Interpreter(name string) Kind {
	if k := interpreterNamed(name); k != NotInterpreter {
		return k
	}
	// versioned names: python3.11, perl5.36.0, ruby3.1
	if trimmed := strings.TrimRight(name, "0123456789."); trimmed != name {
		if k := interpreterNamed(trimmed); k != NotInterpreter {
			return k
		}
	}
	// the loaders of every architecture: ld-linux-<arch>.so.N, ld-musl-<arch>.so.1
	switch {
	case strings.HasPrefix(name, "ld-linux") && strings.Contains(name, ".so."):
		return Loader
	case strings.HasPrefix(name, "ld-musl-") && strings.Contains(name, ".so."):
		return MuslLoader
	}
	return NotInterpreter
}

func interpreterNamed(name string) Kind {
	switch name {
	case "python", "python2", "python3", "pypy", "pypy3":
		return Python
	case "sh", "bash", "dash", "zsh", "ksh", "mksh", "busybox", "ash":
		return Shell
	case "perl":
		return Perl
	case "ruby":
		return Ruby
	case "ld.so":
		return Loader
	}
	return NotInterpreter
}
