// SPDX-License-Identifier: Apache-2.0

//go:build !linux

// Command execbench measures the exec-path cost of the mitmexec receiver;
// it runs on Linux only (see main.go).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "execbench: Linux only (the receiver traces execs with eBPF)")
	os.Exit(1)
}
