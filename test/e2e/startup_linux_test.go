// SPDX-License-Identifier: Apache-2.0

//go:build linux

package e2e

// The collector refuses to run with a bad mitmexec config or without the
// privilege to load eBPF: it exits non-zero and says why.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	exitTimeout = 30 * time.Second
	nobodyID    = 65534
	// What the receiver says when it may not load eBPF (its error text).
	privilegeError = "loading eBPF needs root or CAP_BPF+CAP_PERFMON"
)

// runToExit runs cmd with its combined output captured and fails the test
// unless it exits non-zero within exitTimeout. It returns the output.
func runToExit(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	require.NoError(t, cmd.Start(), "starting %v", cmd.Args)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(exitTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after %s; output:\n%s", cmd.Args, exitTimeout, out.String())
	}
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "%v: want a non-zero exit, got %v; output:\n%s", cmd.Args, err, out.String())
	assert.NotZero(t, exitErr.ExitCode(), "exit code")
	t.Logf("%v exited: %v", cmd.Args, err)
	return out.String()
}

func TestEndToEndBadConfigExits(t *testing.T) {
	// Config validation comes before eBPF is loaded: this needs no root.
	bin := collectorBinary(t, false)
	for _, tc := range []struct {
		name     string
		receiver string
		want     []string
	}{
		{name: "misspelled key", receiver: "{queue_sise: 10}", want: []string{"queue_sise"}},
		{name: "out of range", receiver: "{queue_size: 0}", want: []string{"queue_size: 0 is out of range", "mitmexec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a config whose mitmexec receiver is wrong.
			dir := t.TempDir()
			cfg := writeConfig(t, dir, debugConfig(tc.receiver))
			// WHEN the collector is run with it.
			cmd := exec.Command(bin, "--config", cfg)
			cmd.Dir = dir
			out := runToExit(t, cmd)
			// THEN it exits non-zero and names the problem.
			for _, w := range tc.want {
				assert.Contains(t, out, w, "output:\n%s", out)
			}
		})
	}
}

func TestEndToEndUnprivilegedStartExits(t *testing.T) {
	// GIVEN root (to run the collector as nobody) and the collector.
	bin := collectorBinary(t, true)

	// GIVEN a directory nobody can traverse and read, with a copy of the
	// collector (its build directory need not be reachable by nobody) and a
	// valid config.
	dir, err := os.MkdirTemp("", "mitmexec-e2e-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	nbin := filepath.Join(dir, "otelcol-custom")
	copyExecutable(t, bin, nbin)
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(debugConfig("{}")), 0o644))
	require.NoError(t, os.Chmod(cfg, 0o644))

	// WHEN it is run as nobody (uid and gid 65534, no supplementary groups,
	// and so no capabilities).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, nbin, "--config", cfg)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
	out := runToExit(t, cmd)

	// THEN it exits non-zero, and the error names the receiver and the
	// privilege it lacks.
	assert.Contains(t, out, privilegeError, "output:\n%s", out)
	assert.Contains(t, out, "mitmexec", "output:\n%s", out)
	assert.NotContains(t, out, harness.ReadyLine, "output:\n%s", out)
}

// debugConfig is a collector config with the given mitmexec receiver section
// and a debug exporter, the collector's own metrics off.
func debugConfig(receiver string) string {
	return `receivers:
  mitmexec: ` + receiver + `
exporters:
  debug: {}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [mitmexec]
      exporters: [debug]
`
}
