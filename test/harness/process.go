// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TailLines is how many lines of a process's log an error quotes.
const TailLines = 40

// logPoll is how often WaitForLog reads the log again.
const logPoll = 50 * time.Millisecond

// ProcessSpec says how to start a supervised process.
type ProcessSpec struct {
	Name    string   // in messages: "collector", "execsnoop"
	Bin     string   // absolute path
	Args    []string // without Bin
	Dir     string   // working directory
	LogPath string   // receives stderr, and stdout unless DiscardStdout
	// DiscardStdout sends stdout to /dev/null: a tracer that prints every
	// event would otherwise fill the log (and disk) during a benchmark.
	DiscardStdout bool
	SysProcAttr   *syscall.SysProcAttr
}

// Process is a started process whose output goes to a log file; it is
// reaped in the background so that Exited can be asked at any time.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	once    sync.Once
	killed  bool
}

// StartProcess starts spec's process.
func StartProcess(spec ProcessSpec) (*Process, error) {
	logFile, err := os.Create(spec.LogPath)
	if err != nil {
		return nil, err
	}
	// The child holds its own descriptor once started.
	defer logFile.Close()
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Stderr = logFile
	if !spec.DiscardStdout {
		cmd.Stdout = logFile
	}
	cmd.SysProcAttr = spec.SysProcAttr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Bin, err)
	}
	p := &Process{Name: spec.Name, LogPath: spec.LogPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitErr is what waiting for the process returned; nil while it runs.
func (p *Process) WaitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// WaitForLog waits until the log contains line. It fails, quoting the log's
// tail, when the process exits first or timeout passes.
func (p *Process) WaitForLog(line string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.LogContains(line) {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before %q (%v); log tail:\n%s", p.Name, line, p.waitErr, p.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; log tail:\n%s", p.Name, timeout, p.LogTail())
		}
		time.Sleep(logPoll)
	}
}

// LogContains reports whether the process's log contains s.
func (p *Process) LogContains(s string) bool {
	b, _ := os.ReadFile(p.LogPath)
	return bytes.Contains(b, []byte(s))
}

// LogTail is the last TailLines lines of the process's log.
func (p *Process) LogTail() string { return Tail(p.LogPath, TailLines) }

// Stop sends SIGTERM (a collector flushes its exporters on it), waits up to
// grace, then SIGKILLs. It reports whether the kill was needed. Safe to call
// again: later calls report the first call's outcome.
func (p *Process) Stop(grace time.Duration) (killed bool) {
	p.once.Do(func() {
		if p.Exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.killed = true
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p.killed
}

// Tail is the last n lines of the file at path (or why it cannot be read).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
