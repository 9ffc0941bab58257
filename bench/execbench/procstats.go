// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// What /proc and the cgroup file system say about processes: the machine's
// fork count, a process's CPU time (cpuacct cgroup, or schedstat) and its
// peak RSS. utime and stime in /proc/PID/stat are not used: they are tick
// samples (10 ms at CLK_TCK 100), too coarse for the few ms a run costs.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuacctRoot is the cgroup-v1 cpuacct hierarchy; without it CPU time
// comes from schedstat.
const cpuacctRoot = "/sys/fs/cgroup/cpuacct"

// forkCount is the machine's fork count so far (/proc/stat "processes").
func forkCount() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "processes "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuacctUsage is the CPU time of every task that was ever in the cgroup
// at dir (cpuacct.usage, ns).
func cpuacctUsage(dir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(n), err
}

// schedstatCPU sums the run times of the process's live threads
// (/proc/PID/task/*/schedstat, ns); exited threads are not counted.
func schedstatCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		total += n
	}
	return time.Duration(total), nil
}

// joinCPUAcct moves pid into a fresh cgroup-v1 cpuacct group, for exact CPU
// accounting of all its threads.
func joinCPUAcct(pid int, name string) (string, string) {
	if _, err := os.Stat(filepath.Join(cpuacctRoot, "cpuacct.usage")); err != nil {
		return "", "schedstat"
	}
	dir := filepath.Join(cpuacctRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", "schedstat"
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		_ = os.Remove(dir)
		return "", "schedstat"
	}
	return dir, "cpuacct"
}

// vmHWM is the process's peak RSS in KiB (VmHWM in /proc/PID/status).
func vmHWM(pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
