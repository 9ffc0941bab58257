package procstat

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	// GIVEN a stat line whose comm holds spaces and parentheses
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := "42 (a (weird) name) S 7 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n"
	if err := os.WriteFile(filepath.Join(root, "42", "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Read(root, 42)
	if err != nil || st.PPID != 7 || st.StartTicks != 500 {
		t.Fatalf("got %+v, %v", st, err)
	}
	if !st.SameStart(500*1e7) || !st.SameStart(501*1e7) || st.SameStart(600*1e7) {
		t.Error("start time comparison")
	}
	if _, err := Read(root, 43); err == nil {
		t.Error("a missing process was read")
	}
}
