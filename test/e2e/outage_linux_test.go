// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// Detections made while the backend is down arrive once it is back: the
// otlphttp exporter's sending queue and retries hold them (in memory), and
// with the queue on file_storage they also survive a restart of the
// collector during the outage.

import (
	"fmt"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	outageLength    = 30 * time.Second // how long the backend stays down
	deliveryTimeout = 30 * time.Second // after it is back
	queuedWait      = 3 * time.Second  // for detections to reach the sending queue
	// The exporter's log line for a failed attempt that it will retry, and
	// the error an attempt against the closed port gives.
	retryLogLine   = "Will retry"
	refusedLogLine = "connection refused"
)

// outageConfig exports to endpoint with retries that never give up and a
// sending queue, on storage when storageDir is set.
func outageConfig(endpoint, storageDir string) string {
	ext, queueStorage, svcExt := "", "", ""
	if storageDir != "" {
		ext = fmt.Sprintf(`extensions:
  file_storage:
    directory: %s
`, storageDir)
		queueStorage = "\n      storage: file_storage"
		svcExt = "  extensions: [file_storage]\n"
	}
	return fmt.Sprintf(`%sreceivers:
  mitmexec: {}
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    encoding: proto
    retry_on_failure:
      enabled: true
      initial_interval: 1s
      max_interval: 5s
      max_elapsed_time: 0
    sending_queue:
      enabled: true%s
service:
%s  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, ext, endpoint, queueStorage, svcExt)
}

// checkDelivered asserts exactly one record per run's marker, each a
// detection of the expected tool.
func checkDelivered(t *testing.T, s *harness.Sink, runs []*run) {
	t.Helper()
	recs, sinkErrs := s.Records()
	assert.Empty(t, sinkErrs, "sink errors")
	for _, r := range runs {
		mine := harness.WithMarker(recs, r.marker)
		for _, rec := range mine {
			t.Logf("%s (pid %d): %s", r.name, r.pid, describe(rec))
		}
		// The sink was down (connections refused) until it came up: no
		// request can have been delivered and retried, so exactly one.
		if assert.Len(t, mine, 1, "%s: want exactly one record with marker %s", r.name, r.marker) {
			checkRecord(t, r, mine[0])
		}
	}
}

func TestEndToEndBackendOutage(t *testing.T) {
	// Mostly waiting for the outage to pass: runs alongside the other outage
	// test (each has its own collector, sink and markers).
	t.Parallel()
	// GIVEN root, the collector and the tools.
	bin := collectorBinary(t, true)
	requireTools(t, "/usr/bin/ettercap", "/usr/bin/bettercap", "/usr/sbin/arpspoof")

	// GIVEN the backend down: nothing listens on its port.
	snk := newDownSink(t)
	outageStart := time.Now()

	// GIVEN the collector exporting there with retries and a sending queue.
	col := launchCollector(t, bin, writeConfig(t, t.TempDir(), outageConfig(snk.url(), "")))

	// WHEN three tools are exec'd early in the outage.
	scratch := t.TempDir()
	runs := []*run{
		{name: "ettercap", tool: "ettercap", argv: []string{"/usr/bin/ettercap", "--version"}},
		{name: "bettercap", tool: "bettercap", argv: []string{"/usr/bin/bettercap", "-version"}},
		{name: "arpspoof", tool: "arpspoof", argv: []string{"/usr/sbin/arpspoof", "-h"}},
	}
	markRuns(t, runs)
	for _, r := range runs {
		execRun(t, r, scratch)
	}
	// ... the backend stays down for the rest of the outage (the exporter
	// tries and fails meanwhile) ...
	time.Sleep(time.Until(outageStart.Add(outageLength)))
	require.False(t, col.Exited(), "collector exited during the outage: %v", col.WaitErr())
	assert.True(t, col.LogContains(retryLogLine) && col.LogContains(refusedLogLine),
		"the exporter never tried and failed during the outage (no %q / %q in its log)", retryLogLine, refusedLogLine)
	recs, _ := snk.Records()
	require.Empty(t, recs, "the sink received records while it was down")

	// ... and then comes back on the same port.
	up := time.Now()
	snk.up(t)
	waitForMarkers(snk.Sink, runs, deliveryTimeout)
	t.Logf("outage %s; waited %s for delivery after the backend came back", up.Sub(outageStart).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	time.Sleep(settleTime) // a duplicate would show up now

	// THEN each detection arrived, exactly once.
	checkDelivered(t, snk.Sink, runs)
	col.stop()
	assert.NoError(t, col.WaitErr(), "collector exit after SIGTERM")
}

func TestEndToEndRestartDuringOutage(t *testing.T) {
	// Mostly waiting for the outage to pass: runs alongside the other outage
	// test (each has its own collector, sink and markers).
	t.Parallel()
	// GIVEN root, the collector and the tools.
	bin := collectorBinary(t, true)
	requireTools(t, "/usr/bin/ettercap", "/usr/bin/bettercap")

	// GIVEN the backend down.
	snk := newDownSink(t)
	outageStart := time.Now()

	// GIVEN the collector with its sending queue on file_storage.
	storage := t.TempDir()
	cfgPath := writeConfig(t, t.TempDir(), outageConfig(snk.url(), storage))
	first := launchCollector(t, bin, cfgPath)

	// WHEN two tools are exec'd during the outage and have reached the queue ...
	scratch := t.TempDir()
	runs := []*run{
		{name: "ettercap", tool: "ettercap", argv: []string{"/usr/bin/ettercap", "--version"}},
		{name: "bettercap", tool: "bettercap", argv: []string{"/usr/bin/bettercap", "-version"}},
	}
	markRuns(t, runs)
	for _, r := range runs {
		execRun(t, r, scratch)
	}
	time.Sleep(queuedWait)
	assert.True(t, first.LogContains(retryLogLine), "the first collector never tried to export (no %q in its log)", retryLogLine)

	// ... the collector is stopped (SIGTERM) and a new one started with the
	// same config and storage while the backend is still down ...
	stopStart := time.Now()
	first.stop()
	t.Logf("first collector stopped in %s: %v", time.Since(stopStart).Round(time.Millisecond), first.WaitErr())
	assert.NoError(t, first.WaitErr(), "first collector exit after SIGTERM")
	second := launchCollector(t, bin, cfgPath)

	// ... and the backend comes back after the outage.
	time.Sleep(time.Until(outageStart.Add(outageLength)))
	require.False(t, second.Exited(), "second collector exited during the outage: %v", second.WaitErr())
	assert.True(t, second.LogContains(retryLogLine),
		"the second collector never tried to export the persisted records (no %q in its log)", retryLogLine)
	recs, _ := snk.Records()
	require.Empty(t, recs, "the sink received records while it was down")
	up := time.Now()
	snk.up(t)
	waitForMarkers(snk.Sink, runs, deliveryTimeout)
	t.Logf("outage %s; waited %s for delivery after the backend came back", up.Sub(outageStart).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	time.Sleep(settleTime)

	// THEN both detections arrived, from the second collector, exactly once.
	checkDelivered(t, snk.Sink, runs)
	second.stop()
	assert.NoError(t, second.WaitErr(), "second collector exit after SIGTERM")
}
