// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"io/fs"
	"strings"
	"testing"
)

func TestBPFLSMActive(t *testing.T) {
	for _, c := range []struct {
		name, list string
		err        error
		want       string // "" for active
	}{
		{"bpf listed", "lockdown,capability,landlock,yama,apparmor,bpf\n", nil, ""},
		{"bpf left out", "lockdown,capability,landlock,yama,apparmor\n", nil, "the bpf LSM is not active"},
		{"a module named like it", "bpfx,apparmor", nil, "the bpf LSM is not active"},
		{"securityfs not mounted", "", fs.ErrNotExist, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := bpfLSMActive(func(string) ([]byte, error) { return []byte(c.list), c.err })
			if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
