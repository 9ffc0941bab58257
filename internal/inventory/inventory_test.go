// SPDX-License-Identifier: Apache-2.0

package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/safeopen"
)

func TestScan(t *testing.T) {
	// GIVEN a bin directory with a tool binary, a tool script, a symlink to
	// the binary, an interpreter and an unrelated file
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("ettercap", "\x7fELF\x02\x01\x01 pretend ettercap")
	write("mitmdump", "#!/usr/bin/python3\nfrom mitmproxy.tools.main import mitmdump\n")
	write("python3.11", "\x7fELF pretend python")
	write("ls", "\x7fELF pretend ls")
	if err := os.Symlink(filepath.Join(dir, "ettercap"), filepath.Join(dir, "ettercap-pkexec")); err != nil {
		t.Fatal(err)
	}
	cat, err := detect.NewCatalog(detect.DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	// WHEN it is scanned
	res := Scan(cat, []string{dir, filepath.Join(dir, "missing")}, 1<<20)
	// THEN each file is taken once, binaries with a fingerprint, scripts without
	if len(res.Tools) != 2 {
		t.Fatalf("tools %+v, want ettercap and mitmdump once each", res.Tools)
	}
	for _, tl := range res.Tools {
		if tl.SHA256 == "" {
			t.Errorf("%s: no hash", tl.Path)
		}
		switch tl.Tool.Name {
		case "ettercap":
			if tl.Fingerprint == nil || *tl.Fingerprint != event.FingerprintOf([]byte("\x7fELF\x02\x01\x01 pretend ettercap")) {
				t.Errorf("ettercap fingerprint %+v", tl.Fingerprint)
			}
		case "mitmdump":
			if tl.Fingerprint != nil {
				t.Error("a script got a fingerprint: the exec hook sees its interpreter's bytes")
			}
		default:
			t.Errorf("unexpected tool %s", tl.Tool.Name)
		}
	}
	if len(res.Interpreters) != 1 || filepath.Base(res.Interpreters[0].Path) != "python3.11" {
		t.Errorf("interpreters %+v", res.Interpreters)
	}
}

func TestDefaultDirs(t *testing.T) {
	t.Setenv("PATH", "/opt/x/bin:relative:/usr/bin")
	dirs := DefaultDirs()
	if dirs[0] != "/opt/x/bin" {
		t.Errorf("PATH first: %v", dirs)
	}
	seen := map[string]int{}
	for _, d := range dirs {
		seen[d]++
		if !filepath.IsAbs(d) || seen[d] > 1 {
			t.Errorf("dir %q (seen %d)", d, seen[d])
		}
	}
}

func TestScanRefusesWhatIsNotARegularFile(t *testing.T) {
	// GIVEN tool names that are a FIFO without a writer, a link to a
	// device and a directory
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "bettercap"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "ettercap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "arpspoof"), 0o755); err != nil {
		t.Fatal(err)
	}
	cat, err := detect.NewCatalog(detect.DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	go func() { done <- Scan(cat, []string{dir}, 1<<40) }()
	select {
	case res := <-done:
		// THEN each is refused without being opened, and the scan goes on
		if len(res.Tools) != 0 || len(res.Errors) != 3 {
			t.Fatalf("tools %+v errors %v", res.Tools, res.Errors)
		}
		for _, err := range res.Errors {
			if !errors.Is(err, safeopen.ErrNotRegular) {
				t.Errorf("%v, want a refusal as not a regular file", err)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the scan blocked")
	}
}

func TestScanBoundedInTime(t *testing.T) {
	// GIVEN a tool name holding a 64 GiB sparse file under a byte bound
	// that allows it
	dir := t.TempDir()
	p := filepath.Join(dir, "ettercap")
	if err := os.WriteFile(p, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<30); err != nil {
		t.Skipf("no sparse file here: %v", err)
	}
	cat, err := detect.NewCatalog(detect.DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := ScanBounded(cat, []string{dir}, 1<<40, 50*time.Millisecond)
	// THEN the time bound ends its hashing and it is reported unhashed
	if len(res.Tools) != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "time bound") {
		t.Errorf("tools %+v errors %v", res.Tools, res.Errors)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 50 ms bound took %s", d)
	}
}
