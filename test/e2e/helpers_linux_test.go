// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// Helpers shared by the end-to-end tests beyond TestEndToEnd: a collector
// started from any config (and restarted), a sink that can be down and come
// up on a fixed port, free ports, markers and the collector's Prometheus
// metrics. They build on the helpers of e2e_linux_test.go (sink, collector,
// run, execRun, withMarker, skipOrFail).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// collectorBinary applies the privilege rule (euid != 0: skip, or fail under
// CI=true) when privileged is set, and returns the absolute path of the
// collector binary ($MITMEXEC_OTELCOL or ../../_build/otelcol-custom).
func collectorBinary(t *testing.T, privileged bool) string {
	t.Helper()
	if privileged && os.Geteuid() != 0 {
		skipOrFail(t, "needs root to load eBPF programs (euid %d)", os.Geteuid())
	}
	bin := os.Getenv(collectorEnvName)
	if bin == "" {
		bin = defaultCollector
	}
	bin, err := filepath.Abs(bin)
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "collector binary %s not found (%v): run `make otelcol` (or set %s)", bin, err, collectorEnvName)
	}
	return bin
}

// requireTools skips (or fails under CI=true) when a tool is not installed.
func requireTools(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "tool %s not installed: %v", p, err)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// writeConfig writes cfg as config.yaml into dir and returns its path.
func writeConfig(t *testing.T, dir, cfg string) string {
	t.Helper()
	p := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

var launches atomic.Int64

// launchCollector runs bin with the config at cfgPath (working directory:
// the config's directory), logging into a file of its own, and waits until
// the collector is ready. The collector is stopped at the end of the test.
func launchCollector(t *testing.T, bin, cfgPath string) *collector {
	t.Helper()
	dir := filepath.Dir(cfgPath)
	logPath := filepath.Join(dir, fmt.Sprintf("collector-%d.log", launches.Add(1)))
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })

	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = dir
	require.NoError(t, cmd.Start(), "starting %s", bin)
	c := &collector{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() && !c.tailed {
			t.Logf("collector log tail (%s):\n%s", logPath, tail(logPath, logTailLines))
		}
	})

	deadline := time.Now().Add(startTimeout)
	for {
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, []byte(readyLine)) {
			return c
		}
		if c.exited() {
			c.tailed = true
			t.Fatalf("collector exited before %q (%v); log tail:\n%s", readyLine, c.waitErr, tail(logPath, logTailLines))
		}
		if time.Now().After(deadline) {
			c.tailed = true
			t.Fatalf("collector not ready after %s; log tail:\n%s", startTimeout, tail(logPath, logTailLines))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logContains reports whether the collector's log contains s.
func (c *collector) logContains(s string) bool {
	b, _ := os.ReadFile(c.logPath)
	return bytes.Contains(b, []byte(s))
}

// switchableSink is an OTLP/HTTP sink on a fixed port that starts down
// (nothing listens: connections are refused) and can be brought up.
type switchableSink struct {
	*sink
	addr string
	srv  *http.Server
}

// newDownSink reserves a port and leaves it closed.
func newDownSink(t *testing.T) *switchableSink {
	t.Helper()
	s := &switchableSink{sink: newSink(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	t.Cleanup(func() {
		if s.srv != nil {
			_ = s.srv.Close()
		}
	})
	return s
}

func (s *switchableSink) url() string { return "http://" + s.addr }

// up starts serving on the reserved port (retrying briefly should the port
// be taken for a moment).
func (s *switchableSink) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "bringing the sink up on %s", s.addr)
	s.srv = &http.Server{Handler: s.sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
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
func waitForMarkers(s *sink, runs []*run, timeout time.Duration) []record {
	deadline := time.Now().Add(timeout)
	for {
		recs, _ := s.records()
		missing := 0
		for _, r := range runs {
			if len(withMarker(recs, r.marker)) == 0 {
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
