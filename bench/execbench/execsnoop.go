// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The peer under measurement: libbpf-tools execsnoop.

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/test/harness"
)

// startExecsnoop starts execsnoop and waits until its programs are loaded
// and attached.
func (b *bench) startExecsnoop() (*tracerProc, error) {
	dir, err := b.tracerDir("execsnoop")
	if err != nil {
		return nil, err
	}
	// execsnoop prints its events to stdout, which goes to /dev/null; its
	// stderr goes to the log.
	p, err := harness.StartProcess(harness.ProcessSpec{
		Name:          "execsnoop",
		Bin:           b.o.execsnoop,
		Dir:           dir,
		LogPath:       filepath.Join(dir, "execsnoop.log"),
		DiscardStdout: true,
		SysProcAttr:   dieWithUs(),
	})
	if err != nil {
		return nil, err
	}
	tp := b.track("execsnoop", p)
	// It says nothing when attached: wait for its programs, then a second
	// for the attach.
	if err := tp.findPrograms(10 * time.Second); err != nil {
		b.stop(tp)
		return nil, err
	}
	time.Sleep(time.Second)
	if tp.exited() {
		b.stop(tp)
		return nil, fmt.Errorf("execsnoop exited: %v; log:\n%s", tp.proc.WaitErr(), tp.proc.LogTail())
	}
	// Programs loaded after the first look (libbpf loads them together, but
	// be sure).
	if err := tp.findPrograms(time.Second); err != nil {
		b.stop(tp)
		return nil, err
	}
	return tp, nil
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing when it is not there
// (as .ci/run does): libbpf resolves tracepoint ids through it.
func ensureTracefs() error {
	const dir = "/sys/kernel/tracing"
	if _, err := os.Stat(filepath.Join(dir, "events")); err == nil {
		return nil
	}
	if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mount tracefs on %s: %w", dir, err)
	}
	fmt.Fprintf(os.Stderr, "execbench: mounted tracefs on %s\n", dir)
	return nil
}
