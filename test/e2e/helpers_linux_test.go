// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// Helpers shared by the end-to-end tests: the collector binary and the tools
// they need (skip or fail by internal/testenv), the shared harness
// (test/harness: sink, collector runner) tied to a test's lifetime, a sink
// that can be down and come up on a fixed port, markers and the collector's
// Prometheus metrics. run and execRun are in e2e_linux_test.go.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/require"
)

// collectorBinary applies the privilege rule (euid != 0: skip, or fail under
// CI=true) when privileged is set, and returns the absolute path of the
// collector binary ($MITMEXEC_OTELCOL or ../../_build/otelcol-custom).
func collectorBinary(t *testing.T, privileged bool) string {
	t.Helper()
	if privileged {
		testenv.RequireRoot(t)
	}
	bin := os.Getenv(collectorEnvName)
	if bin == "" {
		bin = defaultCollector
	}
	bin, err := filepath.Abs(bin)
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		testenv.SkipOrFail(t, "collector binary %s not found (%v): run `make otelcol` (or set %s)", bin, err, collectorEnvName)
	}
	return bin
}

// requireTools skips (or fails under CI=true) when a tool is not installed.
func requireTools(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			testenv.SkipOrFail(t, "tool %s not installed: %v", p, err)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := harness.FreePort()
	require.NoError(t, err)
	return port
}

// writeConfig writes cfg as config.yaml into dir and returns its path.
func writeConfig(t *testing.T, dir, cfg string) string {
	t.Helper()
	p, err := harness.WriteConfig(dir, cfg)
	require.NoError(t, err)
	return p
}

// serveSink serves a new sink on a free port until the end of the test and
// returns it with its base URL.
func serveSink(t *testing.T) (*harness.Sink, string) {
	t.Helper()
	snk := harness.NewSink()
	srv, err := harness.Serve("127.0.0.1:0", snk)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return snk, srv.URL
}

// collector is a running collector that the test stops (or its cleanup).
type collector struct {
	*harness.Process
	t *testing.T
}

// stop sends SIGTERM, waits up to stopGrace, then SIGKILLs. Safe to call twice.
func (c *collector) stop() {
	if c.Stop(stopGrace) {
		c.t.Logf("collector did not stop %s after SIGTERM, killed it", stopGrace)
	}
}

var launches atomic.Int64

// launchCollector runs bin with the config at cfgPath (working directory:
// the config's directory), logging into a file of its own (a restart logs
// next to the first run), and waits until the collector is ready. It is
// stopped at the end of the test, and its log's tail shown if the test failed.
func launchCollector(t *testing.T, bin, cfgPath string) *collector {
	t.Helper()
	p, err := harness.StartCollector(harness.CollectorSpec{
		Bin:          bin,
		ConfigPath:   cfgPath,
		LogPath:      filepath.Join(filepath.Dir(cfgPath), fmt.Sprintf("collector-%d.log", launches.Add(1))),
		ReadyTimeout: startTimeout,
		StopGrace:    stopGrace,
	})
	require.NoError(t, err)
	c := &collector{Process: p, t: t}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("collector log tail (%s):\n%s", p.LogPath, p.LogTail())
		}
	})
	return c
}

// switchableSink is an OTLP/HTTP sink on a fixed port that starts down
// (nothing listens: connections are refused) and can be brought up.
type switchableSink struct {
	*harness.Sink
	addr string
	srv  *harness.Server
}

// newDownSink reserves a port and leaves it closed.
func newDownSink(t *testing.T) *switchableSink {
	t.Helper()
	s := &switchableSink{Sink: harness.NewSink(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	t.Cleanup(func() {
		if s.srv != nil {
			_ = s.srv.Close()
		}
	})
	return s
}

func (s *switchableSink) url() string { return "http://" + s.addr }

// up starts serving on the reserved port (Serve retries briefly should the
// port be taken for a moment).
func (s *switchableSink) up(t *testing.T) {
	t.Helper()
	srv, err := harness.Serve(s.addr, s.Sink)
	require.NoError(t, err, "bringing the sink up on %s", s.addr)
	s.srv = srv
}

// markRuns gives each run its unique marker.
func markRuns(t *testing.T, runs []*run) {
	t.Helper()
	for _, r := range runs {
		r.marker = fmt.Sprintf("e2e-%d-%s-%s", os.Getpid(), t.Name(), r.name)
	}
}

// waitForMarkers polls snk until every run has at least one record with its
// marker or timeout passes, then returns everything received.
func waitForMarkers(s *harness.Sink, runs []*run, timeout time.Duration) []harness.Record {
	deadline := time.Now().Add(timeout)
	for {
		recs, _ := s.Records()
		missing := 0
		for _, r := range runs {
			if len(harness.WithMarker(recs, r.marker)) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promSample is one sample of the Prometheus text format.
type promSample struct {
	name   string
	labels string // the raw label set, without braces
	value  float64
}

// parseProm reads the Prometheus text exposition format (no HELP/TYPE).
func parseProm(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var name, labels, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed line %q", line)
			}
			name, labels, rest = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				return nil, fmt.Errorf("malformed line %q", line)
			}
			name, rest = f[0], strings.Join(f[1:], " ")
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", line, err)
		}
		out = append(out, promSample{name: name, labels: labels, value: v})
	}
	return out, sc.Err()
}

// promValue sums the samples of metric name (or name_total, the counter
// suffix some exporter settings add) whose label set contains every one of
// labels ("k=\"v\""). found is false when there is no such sample.
func promValue(samples []promSample, name string, labels ...string) (sum float64, found bool) {
	for _, s := range samples {
		if s.name != name && s.name != name+"_total" {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(s.labels, l) {
				ok = false
				break
			}
		}
		if ok {
			sum += s.value
			found = true
		}
	}
	return sum, found
}
