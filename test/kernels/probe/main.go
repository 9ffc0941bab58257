// SPDX-License-Identifier: Apache-2.0

// Command probe is the part of the kernel suite (test/kernels) that needs no
// installed tool, so it also runs on arm64 where the host's amd64 userland
// cannot: it loads and attaches the tracer with the BPF LSM program
// requested, prints which exec hook attached and whether the LSM deny path
// is on, then marks a name as a tool to kill and execs a copy of itself under
// that name. Printed: "probe: hook=... lsm_deny=<nil>|reason" and
// "probe: block=denied|killed|ran records=N". It exits non-zero when the
// copy ran, or was stopped by the path the kernel should not have used.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		fmt.Println("child ran")
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}
