// SPDX-License-Identifier: Apache-2.0

package safeopen

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRefuseUntrusted(t *testing.T) {
	pidDir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(pidDir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pidDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mountinfo", `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /mnt/fuse rw,nosuid shared:5 - fuse.sshfs host: rw
31 22 0:41 / /mnt/with\040space rw shared:6 - fuse /dev/fuse rw
32 30 0:42 / /mnt/fuse/tmp rw shared:7 - tmpfs tmpfs rw
`)
	write("fdinfo/3", "pos:\t0\nflags:\t0100000\nmnt_id:\t30\n")
	write("fdinfo/4", "pos:\t0\nflags:\t0100000\nmnt_id:\t22\n")
	for _, c := range []struct {
		p       string
		refused bool
	}{
		{"/usr/bin/mitmdump", false},
		{"/mnt/fuse/tool.py", true},
		{"/mnt/fuse", true},
		{"/mnt/fusex/tool.py", false},
		{"/mnt/with space/x", true},
		{"/mnt/fuse/tmp/x.py", false}, // a tmpfs mounted over part of it
		{"/mnt/fuse/./../fuse/x", true},
		{"/dev/fd/3", true},
		{"/dev/fd/4", false},
		{"/proc/self/fd/4/x.py", true}, // below a descriptor: not told
		{"/proc/self/exe", true},
		{"tool.py", true}, // relative while FUSE is mounted
	} {
		entry, own, err := ownEntry(c.p)
		if err != nil {
			t.Fatal(err)
		}
		err = refuseUntrusted(pidDir, c.p, own, entry)
		if got := errors.Is(err, ErrUntrustedFS); got != c.refused {
			t.Errorf("%q: refused %v (%v), want %v", c.p, got, err, c.refused)
		}
	}
	// without a FUSE mount nothing is refused
	write("mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
	if err := refuseUntrusted(pidDir, "tool.py", false, ""); err != nil {
		t.Errorf("no FUSE mount: %v", err)
	}
}
