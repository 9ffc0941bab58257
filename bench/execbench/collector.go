// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The collector under measurement: otelcol-custom with the receiver,
// exporting to the benchmark's sink.

import (
	"path/filepath"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
)

// startCollector starts a fresh collector, waits until it is ready and has
// loaded its programs, and opens its counters map.
//
// Its config has no batch processor, and the exporter's sending queue does
// not batch (exporterhelper's queue batching is off by default at v0.165.0),
// so each detection is sent as soon as a queue consumer picks it up.
func (b *bench) startCollector() (*tracerProc, error) {
	return b.startCollectorWith(b.o.receiverCfg)
}

// latencyReceiverConfig switches folding and the records-per-second ceiling
// off for the latency measurement: its 50 runs of one tool from one parent
// are a flood by the receiver's rules, and folded repeats leave at the end
// of their window by design; the latency asked is the receiver's per record.
const latencyReceiverConfig = "{fold: {enabled: false}, max_records_per_second: 0}"

func (b *bench) startCollectorWith(receiverCfg string) (*tracerProc, error) {
	dir, err := b.tracerDir("collector")
	if err != nil {
		return nil, err
	}
	cfgPath, err := harness.WriteConfig(dir, harness.ExportConfig(receiverCfg, b.sinkURL, true))
	if err != nil {
		return nil, err
	}
	p, err := harness.StartCollector(harness.CollectorSpec{
		Bin:          b.o.otelcol,
		ConfigPath:   cfgPath,
		LogPath:      filepath.Join(dir, "collector.log"),
		ReadyTimeout: startTimeout,
		StopGrace:    stopGrace,
		SysProcAttr:  dieWithUs(),
	})
	if err != nil {
		return nil, err
	}
	tp := b.track("collector", p)
	if err := tp.findPrograms(5 * time.Second); err != nil {
		b.stop(tp)
		return nil, err
	}
	tp.counters = findCountersMap(tp.progs, "counters")
	tp.frameCtrs = findCountersMap(tp.progs, "frame_counters")
	return tp, nil
}
