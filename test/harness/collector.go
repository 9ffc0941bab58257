// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ReadyLine is what the collector logs once every component has started.
const ReadyLine = "Everything is ready"

// WriteConfig writes cfg as config.yaml into dir and returns its path.
func WriteConfig(dir, cfg string) (string, error) {
	p := filepath.Join(dir, "config.yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o600)
}

// ExportConfig is a collector config with the mitmexec receiver (receiver
// is its YAML flow mapping; "" for its defaults) exporting every record over
// OTLP/HTTP, uncompressed protobuf, to endpoint, and the collector's own
// metrics off. sendingQueue writes the exporter's sending queue out
// explicitly (on, without batching, as it is by default at v0.165.0), so a
// reader of the benchmark's config sees that each detection is sent as
// soon as a queue consumer picks it up.
func ExportConfig(receiver, endpoint string, sendingQueue bool) string {
	if receiver == "" {
		receiver = "{}"
	}
	queue := ""
	if sendingQueue {
		queue = "    sending_queue:\n      enabled: true\n"
	}
	return fmt.Sprintf(`receivers:
  mitmexec: %s
exporters:
  otlphttp:
    endpoint: %s
    compression: none
    encoding: proto
%sservice:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, receiver, endpoint, queue)
}

// CollectorSpec says how to run the collector.
type CollectorSpec struct {
	Bin        string // the built collector, _build/otelcol-custom
	ConfigPath string // its working directory is the config's directory
	LogPath    string // "" for collector.log next to the config
	// ReadyTimeout bounds the wait for ReadyLine; StopGrace the wait after
	// SIGTERM when the start fails.
	ReadyTimeout time.Duration
	StopGrace    time.Duration
	SysProcAttr  *syscall.SysProcAttr
}

// StartCollector runs the collector and waits until it is ready. When it
// exits first or is not ready in time, it is stopped and the error quotes
// its log's tail.
func StartCollector(spec CollectorSpec) (*Process, error) {
	dir := filepath.Dir(spec.ConfigPath)
	logPath := spec.LogPath
	if logPath == "" {
		logPath = filepath.Join(dir, "collector.log")
	}
	p, err := StartProcess(ProcessSpec{
		Name:        "collector",
		Bin:         spec.Bin,
		Args:        []string{"--config", spec.ConfigPath},
		Dir:         dir,
		LogPath:     logPath,
		SysProcAttr: spec.SysProcAttr,
	})
	if err != nil {
		return nil, err
	}
	if err := p.WaitForLog(ReadyLine, spec.ReadyTimeout); err != nil {
		p.Stop(spec.StopGrace)
		return nil, err
	}
	return p, nil
}
