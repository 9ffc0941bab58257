// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// The built collector, asking a given CRI socket, exporting to a sink of
// the test and exposing its own metrics.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/mitmexec/mitmexec/test/harness"
)

const (
	collectorEnv     = "MITMEXEC_OTELCOL"
	defaultCollector = "../../_build/otelcol-custom"
	criSocketEnv     = "MITMEXEC_CRI_SOCKET" // what the DaemonSet sets
	nodeNameEnv      = "K8S_NODE_NAME"
	recordTimeout    = 20 * time.Second
	// lookupFailures is the receiver's counter of detections whose pod
	// the runtime did not name.
	lookupFailures = "otelcol_receiver_mitmexec_pod_lookup_failures"
)

// collectorBinary is $MITMEXEC_OTELCOL or the one `make otelcol` builds.
func collectorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(collectorEnv)
	if bin == "" {
		bin = defaultCollector
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.SkipOrFail(t, "collector binary %s not found (%v): run `make otelcol` (or set %s)", bin, err, collectorEnv)
	}
	return bin
}

// collector is a running collector and where its output goes.
type collector struct {
	name    string
	sink    *harness.Sink
	metrics string // its Prometheus endpoint
	proc    *harness.Process
}

// startCollector runs the collector with the CRI socket socket.
func startCollector(t *testing.T, name, socket string) *collector {
	t.Helper()
	bin := collectorBinary(t)
	snk := harness.NewSink()
	srv, err := harness.Serve("127.0.0.1:0", snk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Every detection on its own: the machine is shared, and another
	// suite's burst of tools must not fold or summarize this test's
	// records away (each marker is looked for in its own record).
	cfg, err := harness.WriteConfig(dir, fmt.Sprintf(`receivers:
  mitmexec: {fold: {enabled: false}, max_records_per_second: 0}
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    encoding: proto
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, srv.URL, port))
	if err != nil {
		t.Fatal(err)
	}
	// The collector inherits the environment it starts with.
	t.Setenv(criSocketEnv, socket)
	t.Setenv(nodeNameEnv, "cri-test-node")
	p, err := harness.StartCollector(harness.CollectorSpec{Bin: bin, ConfigPath: cfg, LogPath: filepath.Join(dir, name+".log"),
		ReadyTimeout: 30 * time.Second, StopGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{name: name, sink: snk, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), proc: p}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("collector %s log tail:\n%s", name, p.LogTail())
		}
	})
	return col
}

// records waits until a record with marker arrived (or the timeout
// passed) and returns every record with it.
func (col *collector) records(t *testing.T, marker string) []harness.Record {
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	for {
		recs, errs := col.sink.Records()
		if len(errs) > 0 {
			t.Fatalf("collector %s: sink refused requests: %v", col.name, errs)
		}
		if mine := harness.WithMarker(recs, marker); len(mine) > 0 || time.Now().After(deadline) {
			// a moment for a second record of the same exec, which would be a defect
			if len(mine) > 0 {
				time.Sleep(300 * time.Millisecond)
				recs, _ = col.sink.Records()
				mine = harness.WithMarker(recs, marker)
			}
			return mine
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counter reads one of the collector's own counters.
func (col *collector) counter(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(col.metrics)
	if err != nil {
		t.Fatalf("scraping %s: %v", col.metrics, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"_total") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", col.metrics, line, err)
			}
			return v
		}
	}
	return 0
}
