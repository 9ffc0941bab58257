package inventory

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mitmexec/mitmexec/internal/detect"
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
			if tl.Fingerprint == nil || tl.Fingerprint.Size != uint64(len("\x7fELF\x02\x01\x01 pretend ettercap")) || tl.Fingerprint.Head[0] != 0x7f {
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
