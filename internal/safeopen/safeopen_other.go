// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package safeopen

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenRegular needs O_PATH and /proc/self/fd (Linux).
func OpenRegular(path string) (*os.File, unix.Stat_t, error) {
	return nil, unix.Stat_t{}, fmt.Errorf("open %q: %w", path, errors.ErrUnsupported)
}

// OpenRegularNoFollow needs O_PATH and /proc/self/fd (Linux).
func OpenRegularNoFollow(path string) (*os.File, unix.Stat_t, error) {
	return nil, unix.Stat_t{}, fmt.Errorf("open %q: %w", path, errors.ErrUnsupported)
}

// OpenInProcess needs openat2 and /proc (Linux).
func OpenInProcess(procRoot string, pid uint32, p string) (*os.File, unix.Stat_t, error) {
	return nil, unix.Stat_t{}, fmt.Errorf("open %q of pid %d: %w", p, pid, errors.ErrUnsupported)
}

// RefuseUntrusted is Linux-only; elsewhere nothing is refused.
func RefuseUntrusted(string, uint32, string) error { return nil }
