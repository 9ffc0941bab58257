// SPDX-License-Identifier: Apache-2.0

package modwatch

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocate(t *testing.T) {
	// GIVEN two roots holding a.b.c as a module with its caches, and
	// look-alikes that belong to other modules
	r1, r2 := t.TempDir(), t.TempDir()
	for _, p := range []string{
		"a/b/c.py",
		"a/b/__pycache__/c.cpython-311.pyc",
		"a/b/__pycache__/c.cpython-311.opt-1.pyc",
		"a/b/__pycache__/c_d.cpython-311.pyc", // module a.b.c_d
		"a/b/__pycache__/cd.cpython-311.pyc",  // module a.b.cd
		"a/b/__pycache__/c.pyc.bak",
		"a/b/cd.py",
		"a/b/c.cpython-311-x86_64-linux-gnu.so",
		"a/b/c/__init__.py",
		"a/b/c/__pycache__/__init__.cpython-311.pyc",
		"a/b/c/other.py",
	} {
		writeFile(t, filepath.Join(r1, p))
	}
	// a directory where a file could be: not a regular file
	if err := os.MkdirAll(filepath.Join(r1, "a/b/c.pyc"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(r2, "target.py"))
	if err := os.MkdirAll(filepath.Join(r2, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	// a symbolic link to a regular file counts (the interpreter follows it)
	if err := os.Symlink(filepath.Join(r2, "target.py"), filepath.Join(r2, "a/b/c.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(r2, "missing.py"), filepath.Join(r2, "a/b/c.pyc")); err != nil {
		t.Fatal(err)
	}

	// WHEN a.b.c is located
	got := Locate("a.b.c", []string{r1, r2, filepath.Join(r1, "absent")})

	// THEN its sources, caches, extension and package files are found, in
	// a stable order, and nothing of other modules
	want := []string{
		filepath.Join(r1, "a/b/c.py"),
		filepath.Join(r1, "a/b/c.cpython-311-x86_64-linux-gnu.so"),
		filepath.Join(r1, "a/b/__pycache__/c.cpython-311.opt-1.pyc"),
		filepath.Join(r1, "a/b/__pycache__/c.cpython-311.pyc"),
		filepath.Join(r1, "a/b/c/__init__.py"),
		filepath.Join(r1, "a/b/c/__pycache__/__init__.cpython-311.pyc"),
		filepath.Join(r2, "a/b/c.py"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Locate(a.b.c) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// a top-level module, and a package found by its __init__ alone
	if got := Locate("a", []string{r1}); got != nil {
		t.Errorf("Locate(a) = %v, want nil (a namespace package opens no file)", got)
	}
	writeFile(t, filepath.Join(r1, "top.py"))
	if got := Locate("top", []string{r1}); len(got) != 1 || got[0] != filepath.Join(r1, "top.py") {
		t.Errorf("Locate(top) = %v", got)
	}

	// names that are not dotted module names yield nothing, even where a
	// file of that spelling exists
	writeFile(t, filepath.Join(r1, "a/b/*.py"))
	for _, bad := range []string{"", ".", "a..b", ".a", "a.", "a/b", "a.b/..", "a\x00b"} {
		if got := Locate(bad, []string{r1}); got != nil {
			t.Errorf("Locate(%q) = %v, want nil", bad, got)
		}
	}
	// a glob character is a literal: the module a.b.* does not match c
	if got := Locate("a.b.*", []string{r1}); len(got) != 1 || got[0] != filepath.Join(r1, "a/b/*.py") {
		t.Errorf("Locate(a.b.*) = %v", got)
	}
}

func TestPythonRoots(t *testing.T) {
	// GIVEN a tree with Debian's layout, a version-specific directory
	// linked to the shared one, and directories that are no Python's
	pre := t.TempDir()
	for _, d := range []string{
		"usr/lib/python3/dist-packages",
		"usr/lib/python3.9/site-packages",
		"usr/lib/python3.11",
		"usr/lib/python3.13t",
		"usr/lib/python3.11-config/site-packages",
		"usr/lib/python2.7/dist-packages",
		"usr/local/lib/python3.11/dist-packages",
		"usr/local/lib/python3.11/site-packages",
		"usr/local/lib/python3.12", // no package directory yet
	} {
		if err := os.MkdirAll(filepath.Join(pre, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../python3/dist-packages", filepath.Join(pre, "usr/lib/python3.11/dist-packages")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pre, "usr/lib/python3.12")) // a file, not a directory

	// WHEN the roots are listed
	got := pythonRoots(pre)

	// THEN each existing package directory comes once, in version order
	want := []string{
		filepath.Join(pre, "usr/lib/python3/dist-packages"),
		filepath.Join(pre, "usr/lib/python3.9"),
		filepath.Join(pre, "usr/lib/python3.9/site-packages"),
		filepath.Join(pre, "usr/lib/python3.11"),
		filepath.Join(pre, "usr/lib/python3.13t"),
		filepath.Join(pre, "usr/local/lib/python3.11/dist-packages"),
		filepath.Join(pre, "usr/local/lib/python3.11/site-packages"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pythonRoots =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// record encodes one fanotify_event_metadata followed by extra bytes of
// information records.
func record(eventLen uint32, vers uint8, metaLen uint16, mask uint64, fd, pid int32, extra int) []byte {
	b := make([]byte, metadataLen+extra)
	binary.NativeEndian.PutUint32(b[0:], eventLen)
	b[4] = vers
	binary.NativeEndian.PutUint16(b[6:], metaLen)
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(fd))
	binary.NativeEndian.PutUint32(b[20:], uint32(pid))
	return b
}

func good(fd, pid int32) []byte {
	return record(metadataLen, metadataVersion, metadataLen, 0x20, fd, pid, 0)
}

func TestParseEvents(t *testing.T) {
	withInfo := record(metadataLen+16, metadataVersion, metadataLen, 0x20, 7, 8, 16)
	overflow := record(metadataLen, metadataVersion, metadataLen, maskQOverflow, noFD, 0, 0)
	cases := []struct {
		name    string
		buf     []byte
		want    []rawEvent
		wantErr string
	}{
		{"empty", nil, nil, ""},
		{"several per read", bytes.Join([][]byte{good(3, 100), overflow, good(4, 101)}, nil),
			[]rawEvent{{0x20, 3, 100}, {maskQOverflow, noFD, 0}, {0x20, 4, 101}}, ""},
		{"info records skipped by event_len", append(append([]byte{}, withInfo...), good(5, 6)...),
			[]rawEvent{{0x20, 7, 8}, {0x20, 5, 6}}, ""},
		{"truncated", good(3, 100)[:10], nil, "10 bytes left, metadata needs 24"},
		{"truncated second", append(good(3, 100), good(4, 101)[:23]...),
			[]rawEvent{{0x20, 3, 100}}, "offset 24 truncated: 23 bytes left"},
		{"bad version", record(metadataLen, 2, metadataLen, 0x20, 3, 100, 0), nil, "metadata version 2, want 3"},
		{"event_len zero", record(0, metadataVersion, metadataLen, 0x20, 3, 100, 0), nil, "event_len 0 is below the metadata length 24"},
		{"event_len too small", record(8, metadataVersion, metadataLen, 0x20, 3, 100, 0), nil, "event_len 8 is below"},
		{"event_len too large", append(good(3, 100), record(1000, metadataVersion, metadataLen, 0x20, 4, 101, 0)...),
			[]rawEvent{{0x20, 3, 100}}, "event_len 1000 exceeds the 24 bytes left"},
		{"event_len huge", record(^uint32(0), metadataVersion, metadataLen, 0x20, 3, 100, 0), nil, "event_len 4294967295 exceeds"},
		{"metadata_len too small", record(metadataLen, metadataVersion, 8, 0x20, 3, 100, 0), nil, "metadata_len 8 outside [24, event_len 24]"},
		{"metadata_len beyond event", record(metadataLen+8, metadataVersion, metadataLen+16, 0x20, 3, 100, 8), nil, "metadata_len 40 outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseEvents(c.buf, nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("events = %+v, want %+v", got, c.want)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good(3, 100))
	f.Add(append(good(3, 100), good(4, 101)...))
	f.Add(record(metadataLen+16, metadataVersion, metadataLen, 0x20, 7, 8, 16))
	f.Add(record(8, metadataVersion, metadataLen, 0x20, 3, 100, 0))
	f.Add(record(metadataLen, 2, metadataLen, 0x20, 3, 100, 0))
	f.Add(good(3, 100)[:23])
	f.Fuzz(func(t *testing.T, buf []byte) {
		got, err := parseEvents(buf, nil)
		// Every record takes at least the metadata's bytes; a buffer
		// parsed without error is covered by its records exactly.
		if len(got)*metadataLen > len(buf) {
			t.Fatalf("%d records from %d bytes", len(got), len(buf))
		}
		if err == nil {
			off := 0
			for range got {
				off += int(binary.NativeEndian.Uint32(buf[off:]))
			}
			if off != len(buf) {
				t.Fatalf("records cover %d of %d bytes", off, len(buf))
			}
		}
	})
}
