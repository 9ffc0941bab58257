// SPDX-License-Identifier: Apache-2.0

// Package testenv holds the one rule of this project's privileged and
// tool-dependent tests: outside CI they may skip when root or a tool is
// missing; under CI=true a skip would hide the kernel tests, so it fails.
package testenv

import (
	"os"
	"testing"
)

// UnderCI reports whether the tests run under CI (CI=true).
func UnderCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test outside CI and fails it under CI.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if UnderCI() {
		tb.Fatalf(format+" (CI=true forbids skipping)", args...)
	}
	tb.Skipf(format, args...)
}

// RequireRoot skips or fails a test that needs root: loading eBPF,
// fanotify, pidfd signals to other users' processes, namespaces.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(tb, "privileged test needs root (euid %d); run make test as root", os.Geteuid())
	}
}
