// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The CI-build cost (-cibuild DIR): a collector watches `go test` of a Go
// module with a warm build cache, the setting of a pull request's build.
// Every test binary is linked anew and run once, so each is a first sight
// the receiver judges; the figure is the collector's CPU as a share of the
// build's.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ciBuildResult is what the CI-build measurement found.
type ciBuildResult struct {
	dir          string
	buildCPU     time.Duration // user+system of `go test` and everything it ran
	collectorCPU time.Duration
	wall         time.Duration
}

// ciBuildArgs builds and runs every test binary of the module, and runs
// no test: what is measured is the judging of new binaries, not the tests.
var ciBuildArgs = []string{"test", "-count=1", "-run", "^$", "./..."}

func (b *bench) ciBuild() (*ciBuildResult, error) {
	dir, err := filepath.Abs(b.o.ciBuildDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return nil, fmt.Errorf("-cibuild %s: not a Go module: %w", dir, err)
	}
	fmt.Fprintln(os.Stderr, "  CI build ...")
	// Warm the build cache first, unwatched: a CI runner restores it.
	if out, err := b.goCmd(dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %v in %s: %w\n%s", ciBuildArgs, dir, err, out)
	}
	tp, err := b.startCollector()
	if err != nil {
		return nil, err
	}
	defer b.stop(tp)
	time.Sleep(warmSettle)
	c0, err := tp.cpuTime()
	if err != nil {
		return nil, err
	}
	cmd := b.goCmd(dir)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %v in %s: %w\n%s", ciBuildArgs, dir, err, out)
	}
	res := &ciBuildResult{dir: dir, wall: time.Since(start)}
	time.Sleep(warmSettle) // the receiver's straggler look
	c1, err := tp.cpuTime()
	if err != nil {
		return nil, err
	}
	res.collectorCPU = c1 - c0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		// wait4's usage of the go command includes every child it waited
		// for: the compiler, the linker and the test binaries
		res.buildCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return res, nil
}

func (b *bench) goCmd(dir string) *exec.Cmd {
	cmd := exec.Command("go", ciBuildArgs...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CI=") // the module's privileged tests are not run here
	return cmd
}
