// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseNamespaceLink(t *testing.T) {
	for _, c := range []struct {
		kind, link string
		want       uint32
		ok         bool
	}{
		{"mnt", "mnt:[4026531841]", 4026531841, true},
		{"pid", "pid:[4026531836]", 4026531836, true},
		{"mnt", "pid:[4026531836]", 0, false},
		{"mnt", "mnt:[4026531841", 0, false},
		{"mnt", "mnt:[x]", 0, false},
		{"mnt", "mnt:[99999999999]", 0, false},
	} {
		got, err := ParseNamespaceLink(c.kind, c.link)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("%s %q: %d, %v; want %d, ok %v", c.kind, c.link, got, err, c.want, c.ok)
		}
	}
}

func TestLinksOfTheHeldProcess(t *testing.T) {
	// GIVEN this process's /proc entry, held
	pid := uint32(os.Getpid())
	st, err := ReadStat(Root, pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenStarted(Root, pid, st.StartTicks*1e7)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// WHEN its links are read
	exe, err := p.Readlink("exe")
	self, _ := os.Executable()
	var want unix.Stat_t
	if err != nil || exe != self || unix.Stat(self, &want) != nil {
		t.Fatalf("exe %q, %v; want %q", exe, err, self)
	}
	got, err := p.StatLink("exe")
	// THEN they are this process's, and the namespace numbers are the ones
	// the links' own inodes carry
	if err != nil || got.Ino != want.Ino || got.Dev != want.Dev {
		t.Errorf("exe stat inode %d, %v; want %d", got.Ino, err, want.Ino)
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &ns); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() (uint32, error){
		func() (uint32, error) { return p.Namespace("mnt") },
		func() (uint32, error) { return Namespace(Root, pid, "mnt") },
	} {
		if n, err := read(); err != nil || uint64(n) != ns.Ino {
			t.Errorf("mnt namespace %d, %v; want %d", n, err, ns.Ino)
		}
	}
	fd, err := OpenNamespace(Root, pid, pid, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var held unix.Stat_t
	if err := unix.Fstat(fd, &held); err != nil || held.Ino != ns.Ino {
		t.Errorf("opened mnt namespace inode %d, %v; want %d", held.Ino, err, ns.Ino)
	}
	// and another start is another process
	if _, err := OpenStarted(Root, pid, (st.StartTicks+50)*1e7); err == nil || !strings.Contains(err.Error(), "reused") {
		t.Errorf("another start: %v", err)
	}
}

func TestReadlinkBound(t *testing.T) {
	// GIVEN links of the longest target a file system holds, and of one
	// byte more than a bound
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	longest := strings.Repeat("x", LinkMax)
	if err := os.Symlink(longest, filepath.Join(root, "42", "cwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/tmp/x", filepath.Join(root, "42", "root")); err != nil {
		t.Fatal(err)
	}
	// THEN the longest is read whole, and one over a bound is refused,
	// naming the link and the bound
	if got, err := Readlink(root, 42, "cwd"); err != nil || got != longest {
		t.Errorf("longest link: %d bytes, %v", len(got), err)
	}
	_, err := readlink(unix.AT_FDCWD, filepath.Join(root, "42", "root"), "root of pid 42", 5)
	if !errors.Is(err, ErrBound) || !strings.Contains(err.Error(), "root of pid 42 is over 5 bytes") {
		t.Errorf("long link: %v", err)
	}
	if got, err := readlink(unix.AT_FDCWD, filepath.Join(root, "42", "root"), "root of pid 42", 6); err != nil || got != "/tmp/x" {
		t.Errorf("link of exactly the bound %q, %v", got, err)
	}
}

func TestReadBoundsAndStatusFiles(t *testing.T) {
	// GIVEN a process whose status is over its bound
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"42/stat":   statLine(42, "sh", 'S', 1, 1, 1, 500),
		"42/status": "Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nNSpid:\t42\t9\n",
		"42/cgroup": "1:name=x:/y\n0::/system.slice/x.service\n",
	})
	c, err := Status(root, 42, 500*1e7)
	want := Creds{UID: 1, EUID: 2, GID: 5, EGID: 6, VPID: 9, Cgroup: "/system.slice/x.service"}
	if err != nil || c != want {
		t.Errorf("creds %+v, %v; want %+v", c, err, want)
	}
	writeTree(t, root, map[string]string{"42/status": strings.Repeat("x", StatusMax+1)})
	if _, err := Status(root, 42, 500*1e7); !errors.Is(err, ErrBound) || !strings.Contains(err.Error(), "status of pid 42 is over 16384 bytes") {
		t.Errorf("long status: %v", err)
	}
}
