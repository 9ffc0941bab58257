// SPDX-License-Identifier: Apache-2.0

//go:build linux

package main

// The machine the numbers were taken on, for the report's first line.

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hostInfo names the kernel, CPUs, memory and Go version.
func hostInfo() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseUint(f[0], 10, 64)
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/1024/1024)
				}
			}
		}
	}
	return fmt.Sprintf("Linux %s, %d CPUs (%s), %s RAM, %s", rel, runtime.NumCPU(), model, mem, runtime.Version())
}
