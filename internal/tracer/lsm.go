// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// activeLSMPath lists the kernel's active security modules (securityfs).
const activeLSMPath = "/sys/kernel/security/lsm"

// bpfLSMActive checks that the BPF LSM is among the active modules. A
// kernel built with CONFIG_BPF_LSM loads and attaches lsm/ programs even
// when the boot's lsm= list leaves bpf out; the hook is then never called,
// so an attached deny program would refuse nothing. Where securityfs is
// not mounted the list cannot be read and the attach is trusted.
func bpfLSMActive(read func(string) ([]byte, error)) error {
	b, err := read(activeLSMPath)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", activeLSMPath, err)
	}
	for _, m := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if m == "bpf" {
			return nil
		}
	}
	return fmt.Errorf("the bpf LSM is not active (%s is %q): boot with bpf in lsm=", activeLSMPath, strings.TrimSpace(string(b)))
}

// readFile is os.ReadFile, the default for bpfLSMActive.
func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
