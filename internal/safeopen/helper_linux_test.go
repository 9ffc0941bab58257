// SPDX-License-Identifier: Apache-2.0

//go:build linux

package safeopen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mitmexec/mitmexec/internal/testenv"
	"golang.org/x/sys/unix"
)

// The tests need processes whose root and working directory are what they
// set up; the test binary plays them, re-executed with helperEnv set.
const helperEnv = "SAFEOPEN_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		if err := runHelper(h); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper sets up its process as asked, says "ready" and waits for its
// stdin to close.
//
//	chroot:DIR     mount a procfs at DIR/proc (in its own mount namespace) and chroot to DIR
//	cwd:DIR:A/B/C  chdir to DIR, then into A, B, C one at a time (deeper than PATH_MAX is fine)
//	open:P1:P2     OpenRegular each path, which must fail, and exit at once
func runHelper(h string) error {
	kind, arg, _ := strings.Cut(h, ":")
	switch kind {
	case "chroot":
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make mounts private: %w", err)
		}
		if err := unix.Mount("proc", filepath.Join(arg, "proc"), "proc", 0, ""); err != nil {
			return fmt.Errorf("mount proc: %w", err)
		}
		if err := unix.Chroot(arg); err != nil {
			return err
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	case "cwd":
		dir, rel, _ := strings.Cut(arg, ":")
		if err := unix.Chdir(dir); err != nil {
			return err
		}
		for _, c := range strings.Split(rel, "/") {
			if err := unix.Chdir(c); err != nil {
				return fmt.Errorf("chdir %q: %w", c, err)
			}
		}
	case "open":
		for _, p := range strings.Split(arg, ":") {
			f, _, err := OpenRegular(p)
			if err == nil {
				f.Close()
				return fmt.Errorf("%s was opened", p)
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown helper %q", h)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// startHelper starts the helper and returns its pid once it is set up.
func startHelper(t *testing.T, h string, attr *syscall.SysProcAttr) uint32 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+h)
	cmd.SysProcAttr = attr
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		t.Fatalf("helper %q did not get ready: %q %v", h, line, err)
	}
	return uint32(cmd.Process.Pid)
}

// requireRoot skips a privileged test for an ordinary user, except under
// CI=true, where a missing privilege must fail rather than pass silently.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
}
