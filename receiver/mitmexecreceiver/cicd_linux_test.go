// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ciStepEnv is a GitHub Actions step's environment; the tool's own
// environment differs only in GITHUB_JOB, so a record tells which process's
// environment served: the tool's ("tool-own") or its step shell's.
func ciStepEnv() []string {
	return append(os.Environ(), "GITHUB_ACTIONS=true", "GITHUB_WORKFLOW=CI", "GITHUB_RUN_ID=4242",
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=octo/app", "GITHUB_JOB=step-shell",
		"RUNNER_NAME=r", "GITHUB_SHA=abc", "GITHUB_REF=refs/pull/7/merge", "GITHUB_TOKEN=ghs_mitmexecRaceSecret")
}

// sourceCounts counts which environment served each marker's record.
func sourceCounts(t *testing.T, l *liveReceiver, markers []string) (own, shell, none int) {
	t.Helper()
	l.waitFor(t, markers)
	for _, m := range markers {
		got := l.withMarker(m)
		if len(got) != 1 {
			t.Errorf("%s: %d detections, want 1", m, len(got))
			continue
		}
		for k, v := range got[0].attrs {
			if s, ok := v.(string); ok && strings.Contains(s, "mitmexecRaceSecret") {
				t.Errorf("%s: %s carries the job's token", m, k)
			}
		}
		switch got[0].attrs["cicd.pipeline.task.name"] {
		case "tool-own":
			own++
		case "step-shell":
			shell++
		default:
			none++
		}
	}
	return own, shell, none
}

// TestPrivilegedCIContextSources measures how often each path serves a
// short-lived tool (arpspoof -h exits at once): its own environ, its step
// shell's, or neither. README "In CI" quotes the figures (run with -v).
func TestPrivilegedCIContextSources(t *testing.T) {
	l := startLive(t, nil)
	arpspoof := lookPath(t, "arpspoof")
	const n = 50
	dir := t.TempDir()

	// A: the tool in the middle of a step: the shell goes on after it. Each
	// run has its own parent (a bash that exits right after the tool, as
	// make or a test runner would be): runs from one parent would be folded
	// into one record.
	markers := runMidStep(t, filepath.Join(dir, "mid.sh"), "ci-mid", arpspoof, n)
	own, shell, none := sourceCounts(t, l, markers)
	t.Logf("tool mid-step, %d runs: own environ %d, an ancestor's %d, none %d", n, own, shell, none)
	if none != 0 {
		t.Errorf("a tool mid-step lost its CI context %d times of %d: the living step shell should serve", none, n)
	}

	// B: the tool as the step's last command: the shell exits right after
	// the tool, so both may be gone when the receiver reads.
	markers = nil
	for i := 0; i < n; i++ {
		m := newMarker(fmt.Sprintf("ci-last-%d", i))
		markers = append(markers, m)
		p := filepath.Join(dir, fmt.Sprintf("last-%d.sh", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("GITHUB_JOB=tool-own %s -h %s\n", arpspoof, m)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-e", p)
		cmd.Env = ciStepEnv()
		_ = cmd.Run() // arpspoof -h exits 1
	}
	own, shell, none = sourceCounts(t, l, markers)
	t.Logf("tool as the step's last command, %d runs: own environ %d, an ancestor's %d, none %d", n, own, shell, none)
}

// TestPrivilegedCIContextBlockMode: a tool killed at its exec is mostly
// gone when the receiver reads (its environ is still readable while the
// kernel tears it down), so its step's shell must serve the rest.
func TestPrivilegedCIContextBlockMode(t *testing.T) {
	l := startLive(t, func(c *Config) { c.Action = "kill" })
	arpspoof := lookPath(t, "arpspoof")
	const n = 30
	dir := t.TempDir()
	markers := runMidStep(t, filepath.Join(dir, "kill.sh"), "ci-kill", arpspoof, n)
	own, shell, none := sourceCounts(t, l, markers)
	t.Logf("tool killed at exec (block mode), %d runs: own environ %d, an ancestor's %d, none %d", n, own, shell, none)
	if none != 0 {
		t.Errorf("a killed tool lost its CI context %d times of %d: the living step shell should serve", none, n)
	}
}

// runMidStep runs one CI step (a bash script with the job's environment)
// that runs tool -h n times, each from a bash of its own, then goes on for
// a second, and returns the runs' markers.
func runMidStep(t *testing.T, path, prefix, tool string, n int) []string {
	t.Helper()
	var script strings.Builder
	var markers []string
	for i := 0; i < n; i++ {
		m := newMarker(fmt.Sprintf("%s-%d", prefix, i))
		markers = append(markers, m)
		fmt.Fprintf(&script, "bash -c 'GITHUB_JOB=tool-own %s -h %s || true'\n", tool, m)
	}
	script.WriteString("sleep 1\n")
	if err := os.WriteFile(path, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", path)
	cmd.Env = ciStepEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step: %v\n%s", err, out)
	}
	return markers
}
