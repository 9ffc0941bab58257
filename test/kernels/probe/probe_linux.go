// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/tracer"
)

// toolName is the name the probe marks in the kernel's name table.
const toolName = "mxprobetool"

func run() error {
	t, err := tracer.New(tracer.Options{Deny: true})
	if err != nil {
		return fmt.Errorf("load the tracer: %w", err)
	}
	defer t.Close()
	denyErr := t.Deny()
	// An lsm/ program loads and attaches even where bpf is not in the
	// active LSM list (lsm=); it then never runs. Only the list says.
	lsms, _ := os.ReadFile("/sys/kernel/security/lsm")
	active := false
	for _, l := range strings.Split(strings.TrimSpace(string(lsms)), ",") {
		active = active || l == "bpf"
	}
	fmt.Printf("probe: hook=%s lsm_deny=%v bpf_lsm_active=%v\n", t.Hook(), denyErr, active)

	if err := t.PutName(toolName, event.Verdict{Kind: event.VerdictTool, Action: event.ActionKill, ToolID: 1}); err != nil {
		return fmt.Errorf("mark the name: %w", err)
	}
	dir, err := os.MkdirTemp("", "probe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, toolName)
	if err := copySelf(copyPath); err != nil {
		return err
	}

	cmd := exec.Command(copyPath, "-child")
	out, runErr := cmd.CombinedOutput()
	block := "ran"
	switch {
	case errors.Is(runErr, syscall.EPERM):
		block = "denied"
	case cmd.ProcessState != nil:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			block = "killed"
		}
	}
	records := 0
	timeout := time.After(3 * time.Second)
wait:
	for {
		select {
		case <-t.Records():
			records++
		case <-timeout:
			break wait
		}
	}
	fmt.Printf("probe: block=%s records=%d (exec: %v, output %q)\n", block, records, runErr, out)
	switch {
	case denyErr == nil && active && block != "denied":
		return fmt.Errorf("LSM deny attached and bpf LSM active but the marked copy was %s", block)
	case !(denyErr == nil && active) && block != "killed":
		return fmt.Errorf("no working LSM deny: want the exec hook's SIGKILL, got %s", block)
	case records == 0:
		return errors.New("no record came up for the marked copy")
	}
	return nil
}

func copySelf(dst string) error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
