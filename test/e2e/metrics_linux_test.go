// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// The receiver's own metrics reach the collector's Prometheus endpoint.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const metricsTimeout = 10 * time.Second

// scrape GETs a Prometheus endpoint.
func scrape(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

func TestEndToEndMetricsEndpoint(t *testing.T) {
	// GIVEN root, the collector and ettercap.
	bin := collectorBinary(t, true)
	requireTools(t, "/usr/bin/ettercap")

	// GIVEN an OTLP/HTTP sink.
	snk, sinkURL := serveSink(t)

	// GIVEN the collector with its telemetry on a Prometheus pull endpoint.
	port := freePort(t)
	col := launchCollector(t, bin, writeConfig(t, t.TempDir(), fmt.Sprintf(`receivers:
  mitmexec: {}
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
`, sinkURL, port)))

	// WHEN a tool is exec'd and its detection has left the collector.
	r := &run{name: "ettercap", tool: "ettercap", argv: []string{"/usr/bin/ettercap", "--version"}}
	markRuns(t, []*run{r})
	execRun(t, r, t.TempDir())
	recs := waitForMarkers(snk, []*run{r}, recordTimeout)
	require.Len(t, harness.WithMarker(recs, r.marker), 1, "detection of %s", r.marker)

	// ... and the metrics endpoint is scraped (until the counters show it:
	// the reader is pulled, so this is at most a moment).
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var samples []promSample
	var body string
	var err error
	deadline := time.Now().Add(metricsTimeout)
	for {
		body, err = scrape(metricsURL)
		if err == nil {
			samples, err = parseProm(strings.NewReader(body))
		}
		if err == nil {
			if v, ok := promValue(samples, "otelcol_receiver_mitmexec_detections"); ok && v >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			require.NoError(t, err, "scraping %s", metricsURL)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "mitmexec") && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	t.Logf("mitmexec metrics:\n%s", strings.Join(lines, "\n"))

	// THEN the receiver's counters are there: it saw execs, made a
	// detection, lost nothing in the kernel; and the collector counted the
	// record it accepted.
	execs, ok := promValue(samples, "otelcol_receiver_mitmexec_execs")
	assert.True(t, ok, "otelcol_receiver_mitmexec_execs missing")
	assert.GreaterOrEqual(t, execs, 1.0, "otelcol_receiver_mitmexec_execs")
	det, ok := promValue(samples, "otelcol_receiver_mitmexec_detections")
	assert.True(t, ok, "otelcol_receiver_mitmexec_detections missing")
	assert.GreaterOrEqual(t, det, 1.0, "otelcol_receiver_mitmexec_detections")
	rrf, ok := promValue(samples, "otelcol_receiver_mitmexec_ring_reserve_failures")
	assert.True(t, ok, "otelcol_receiver_mitmexec_ring_reserve_failures missing")
	assert.Zero(t, rrf, "otelcol_receiver_mitmexec_ring_reserve_failures")
	acc, ok := promValue(samples, "otelcol_receiver_accepted_log_records", `receiver="mitmexec"`)
	assert.True(t, ok, `otelcol_receiver_accepted_log_records{receiver="mitmexec"} missing`)
	assert.GreaterOrEqual(t, acc, 1.0, "otelcol_receiver_accepted_log_records")

	col.stop()
	assert.NoError(t, col.WaitErr(), "collector exit after SIGTERM")
}
