// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// runStats holds BPF run-time statistics on while the BPF figures are
// taken, and off while throughput is (they add their own ~0.2 us to every
// program run on the machine, and a deployed collector runs without them).
type runStats struct{ closer io.Closer }

// on enables the statistics (BPF_ENABLE_STATS, held until off).
func (s *runStats) on() error {
	if s.closer != nil {
		return nil
	}
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	s.closer = c
	return nil
}

// off gives this process's hold on them up (another holder keeps them on).
func (s *runStats) off() {
	if s.closer != nil {
		s.closer.Close()
		s.closer = nil
	}
}
