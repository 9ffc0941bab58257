// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"fmt"
	"os"
	"time"
)

// results is everything one run measured; a part not run is nil.
type results struct {
	started time.Time
	steady  *steadyResult
	alt     *alternation
	peer    []sample
	lat     *latencyResult
	storm   *stormResult
	ciBuild *ciBuildResult
	wall    time.Duration
}

// run measures every part in turn and writes the report to stdout.
func (b *bench) run() error {
	res := results{started: time.Now()}
	fmt.Printf("execbench: %s\n", hostInfo())
	fmt.Printf("execbench: workload %s (fork+exec loop), warm-up %d execs, started %s\n",
		b.o.binary, b.o.warmup, res.started.UTC().Format(time.RFC3339))
	var err error
	if res.steady, err = b.steady(); err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	b.stats.off()
	res.alt, err = b.alternate()
	if serr := b.stats.on(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	if b.o.execsnoop != "" {
		if res.peer, err = b.peerRounds(); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}
	if res.lat, err = b.latency(); err != nil {
		return fmt.Errorf("detection latency: %w", err)
	}
	if b.o.storm {
		if res.storm, err = b.stormCheck(); err != nil {
			return fmt.Errorf("storm check: %w", err)
		}
	}
	if b.o.ciBuildDir != "" {
		if res.ciBuild, err = b.ciBuild(); err != nil {
			return fmt.Errorf("CI build: %w", err)
		}
	}
	res.wall = time.Since(res.started)
	b.report(os.Stdout, res)
	return nil
}
