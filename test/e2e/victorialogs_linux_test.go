// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// A detection reaches a real log store: VictoriaLogs (Apache-2.0) through its
// OTLP/HTTP logs endpoint, and is found there with LogsQL.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	victoriaLogsEnvName = "MITMEXEC_VICTORIALOGS"
	victoriaLogsInstall = "go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1"
	victoriaLogsStart   = 30 * time.Second
	victoriaLogsQueryTO = 30 * time.Second
)

// victoriaLogsBinary finds victoria-logs: $MITMEXEC_VICTORIALOGS, else
// $(go env GOPATH)/bin/victoria-logs, else $PATH. Missing: skip, or fail
// under CI=true.
func victoriaLogsBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(victoriaLogsEnvName); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", victoriaLogsEnvName, p, err)
		}
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "victoria-logs")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("victoria-logs"); err == nil {
		return p
	}
	msg := fmt.Sprintf("victoria-logs not found ($%s, $(go env GOPATH)/bin, $PATH): .ci/run must install it: `%s`",
		victoriaLogsEnvName, victoriaLogsInstall)
	testenv.SkipOrFail(t, "%s", msg)
	return ""
}

// startVictoriaLogs runs victoria-logs on a free port with its storage in a
// temporary directory, waits until /health answers and returns its base URL.
func startVictoriaLogs(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vl, err := harness.StartProcess(harness.ProcessSpec{
		Name:    "victoria-logs",
		Bin:     bin,
		Args:    []string{"-storageDataPath=" + filepath.Join(dir, "data"), "-httpListenAddr=" + addr},
		Dir:     dir,
		LogPath: filepath.Join(dir, "victoria-logs.log"),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		vl.Stop(stopGrace)
		if t.Failed() {
			t.Logf("victoria-logs log tail (%s):\n%s", vl.LogPath, vl.LogTail())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(victoriaLogsStart)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if vl.Exited() {
			t.Fatalf("victoria-logs exited (%v); log tail:\n%s", vl.WaitErr(), vl.LogTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("victoria-logs not healthy after %s; log tail:\n%s", victoriaLogsStart, vl.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logsQL runs a LogsQL query and returns the raw JSON lines.
func logsQL(ctx context.Context, base, query string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/select/logsql/query",
		strings.NewReader(url.Values{"query": {query}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("query %q: %s: %s", query, resp.Status, b)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

func TestEndToEndVictoriaLogs(t *testing.T) {
	// GIVEN root, the collector, ettercap and victoria-logs.
	bin := collectorBinary(t, true)
	requireTools(t, "/usr/bin/ettercap")
	vlBin := victoriaLogsBinary(t)

	// GIVEN VictoriaLogs running.
	base := startVictoriaLogs(t, vlBin)

	// GIVEN the collector exporting to its OTLP/HTTP logs endpoint.
	col := launchCollector(t, bin, writeConfig(t, t.TempDir(), fmt.Sprintf(`receivers:
  mitmexec: {}
exporters:
  otlphttp:
    logs_endpoint: %s/insert/opentelemetry/v1/logs
    encoding: proto
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [otlphttp]
`, base)))

	// WHEN ettercap is exec'd with a marker.
	r := &run{name: "ettercap", tool: "ettercap", argv: []string{"/usr/bin/ettercap", "--version"}}
	markRuns(t, []*run{r})
	execRun(t, r, t.TempDir())

	// ... and the store is queried for it (dotted field names need no
	// quoting in LogsQL; a bare phrase would only search _msg, so the marker
	// is looked for in process.command_line).
	query := fmt.Sprintf(`mitmexec.tool.name:ettercap AND process.command_line:%q`, r.marker)
	ctx, cancel := context.WithTimeout(context.Background(), victoriaLogsQueryTO)
	defer cancel()
	var lines []string
	var err error
	for {
		lines, err = logsQL(ctx, base, query)
		if err == nil && len(lines) > 0 {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if errors.Is(err, context.DeadlineExceeded) || (err == nil && len(lines) == 0) {
		t.Fatalf("no record for %s in VictoriaLogs after %s (query %q)", r.marker, victoriaLogsQueryTO, query)
	}
	require.NoError(t, err)
	// A late duplicate would show up now.
	time.Sleep(settleTime)
	qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer qcancel()
	lines, err = logsQL(qctx, base, query)
	require.NoError(t, err)
	for _, l := range lines {
		t.Logf("VictoriaLogs: %s", l)
	}

	// THEN exactly one record is stored, with the detection's fields under
	// their OTLP names.
	require.Len(t, lines, 1, "records for %s", r.marker)
	assert.Contains(t, lines[0], `"mitmexec.tool.name":"ettercap"`)
	var fields map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &fields))
	assert.Equal(t, "ettercap", fields[attrToolName], attrToolName)
	assert.Equal(t, ruleName, fields[attrRuleName], attrRuleName)
	assert.Equal(t, ruleName, fields["event_name"], "event_name")
	assert.Equal(t, techniqueID, fields[attrTechniqueID], attrTechniqueID)
	assert.Equal(t, severityText, fields["severity_text"], "severity_text")
	assert.Equal(t, serviceName, fields[resAttrSvcName], resAttrSvcName)
	assert.Contains(t, fields["process.command_line"], r.marker, "process.command_line")
	assert.Equal(t, fmt.Sprint(r.pid), fields[attrPID], attrPID)
	msg, _ := fields["_msg"].(string)
	assert.True(t, strings.HasPrefix(msg, bodyPrefix), "_msg %q", msg)

	col.stop()
	assert.NoError(t, col.WaitErr(), "collector exit after SIGTERM")
}
