// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// What a test's containerd may leave behind, looked for after teardown:
// processes (the daemon, shims, containers), mounts (rootfs overlays, the
// pods' network namespaces, shm), cgroups under the test's parent in every
// hierarchy, the network namespace, the shims' sockets.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// shimSocketDir is where containerd's runc shims put their sockets,
// whatever the daemon's state directory.
const shimSocketDir = "/run/containerd/s"

type leakSnapshot struct {
	shimSockets map[string]bool
}

func snapshotLeaks(*containerd) leakSnapshot {
	return leakSnapshot{shimSockets: dirSet(shimSocketDir)}
}

func dirSet(dir string) map[string]bool {
	set := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		set[e.Name()] = true
	}
	return set
}

// leak kinds, the prefix of each finding
const (
	leakProcess = "process "
	leakMount   = "mount "
	leakCgroup  = "cgroup "
	leakNetns   = "netns "
	leakSocket  = "shim socket "
)

// findLeaks removes what the kubelet would remove after its pods are gone
// (the pods' cgroup parents, deepest first) and the test's network
// namespace, and returns whatever of the test's is still there.
func findLeaks(c *containerd, before leakSnapshot) []string {
	var leaks []string
	for _, pid := range ownProcesses(c) {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		leaks = append(leaks, leakProcess+strconv.Itoa(pid)+": "+strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	for _, m := range ownMounts(c) {
		leaks = append(leaks, leakMount+m)
	}
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, c.cgroup)
		removeTree(root)
		if _, err := os.Stat(root); err == nil {
			leaks = append(leaks, leakCgroup+root)
		}
	}
	if _, err := os.Stat("/run/netns/" + c.netns); err == nil {
		if out, err := exec.Command("ip", "netns", "del", c.netns).CombinedOutput(); err != nil {
			leaks = append(leaks, leakNetns+c.netns+": "+strings.TrimSpace(string(out)))
		}
	}
	for name := range dirSet(shimSocketDir) {
		if !before.shimSockets[name] {
			leaks = append(leaks, leakSocket+filepath.Join(shimSocketDir, name))
		}
	}
	sort.Strings(leaks)
	return leaks
}

// ownProcesses are the processes whose command line names the test's
// directory (the daemon, the shims: -address <dir>/containerd.sock) or
// that run in one of its cgroups (the containers).
func ownProcesses(c *containerd) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if strings.Contains(string(cmd), c.dir) || strings.Contains(string(cg), c.cgroup+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ownMounts are the mount points under the test's directory (overlay
// rootfs, shm, the pods' network namespaces under the state directory).
func ownMounts(c *containerd) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], c.dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// cgroupHierarchies are the mounted cgroup hierarchies: v1 controllers,
// the named systemd one and the unified v2 one on this hybrid machine, or
// just the v2 root elsewhere.
func cgroupHierarchies() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, " - "); i > 0 {
			f, rest := strings.Fields(line[:i]), strings.Fields(line[i+3:])
			if len(f) > 4 && len(rest) > 0 && (rest[0] == "cgroup" || rest[0] == "cgroup2") {
				out = append(out, f[4])
			}
		}
	}
	return out
}

// removeTree removes an empty cgroup tree, deepest first; a cgroup that
// still holds a process stays (rmdir fails with EBUSY).
func removeTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

// cleanupLeaks kills, unmounts and removes what teardown found, so that a
// failed run does not burden the next: only what is the test's own.
func cleanupLeaks(t *testing.T, c *containerd, leaks []string) {
	if len(leaks) == 0 {
		return
	}
	for _, pid := range ownProcesses(c) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts := ownMounts(c)
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	for _, h := range cgroupHierarchies() {
		removeTree(filepath.Join(h, c.cgroup))
		_ = os.Remove(filepath.Join(h, filepath.Dir(c.cgroup))) // /kubepods, when no other test's is left
	}
	_ = exec.Command("ip", "netns", "del", c.netns).Run()
	for _, l := range leaks {
		if s, ok := strings.CutPrefix(l, leakSocket); ok {
			_ = os.Remove(s)
		}
	}
	t.Logf("teardown cleaned up after the leaks above")
}
