// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChildrenOfEveryThread(t *testing.T) {
	// GIVEN a process with two threads, each with children of its own,
	// and non-numeric entries beside the processes
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"42/task/42/children": "43 44 ",
		"42/task/45/children": "46",
		"7/task/7/children":   "",
		"self/task/1/stat":    "",
		"meminfo":             "",
	})
	// WHEN the children, threads and processes are listed
	kids, err := Children(root, 42)
	tids, terr := Tasks(root, 42)
	pids, perr := Pids(root)
	slices.Sort(tids)
	slices.Sort(pids)
	// THEN every thread's children count, and only numbers are pids
	if err != nil || !reflect.DeepEqual(sorted(kids), []uint32{43, 44, 46}) {
		t.Errorf("children %v, %v", kids, err)
	}
	if terr != nil || !reflect.DeepEqual(tids, []uint32{42, 45}) {
		t.Errorf("threads %v, %v", tids, terr)
	}
	if perr != nil || !reflect.DeepEqual(pids, []uint32{7, 42}) {
		t.Errorf("pids %v, %v", pids, perr)
	}
	// a process that is gone has no children
	if kids, err := Children(root, 9); kids != nil || err != nil {
		t.Errorf("gone: %v, %v", kids, err)
	}
}

func TestChildrenOverTheBound(t *testing.T) {
	// GIVEN a thread whose children list is longer than ChildrenMax
	root := t.TempDir()
	list := strings.Repeat("1234567 ", ChildrenMax/8+10)
	writeTree(t, root, map[string]string{"42/task/42/children": list})
	// WHEN it is read
	kids, err := Children(root, 42)
	// THEN the pids read whole are returned, with an error naming the
	// file and the bound
	if !errors.Is(err, ErrBound) || !strings.Contains(err.Error(), "children of thread 42 of pid 42 is over 1048576 bytes") {
		t.Errorf("err %v", err)
	}
	if len(kids) != ChildrenMax/8 || kids[len(kids)-1] != 1234567 {
		t.Errorf("%d children read, the last %d; want %d", len(kids), kids[len(kids)-1], ChildrenMax/8)
	}
}

func TestHasChildrenFiles(t *testing.T) {
	with, without := t.TempDir(), t.TempDir()
	writeTree(t, with, map[string]string{"self/task/7/children": ""})
	writeTree(t, without, map[string]string{"self/task/7/stat": ""})
	if !HasChildrenFiles(with) || HasChildrenFiles(without) {
		t.Errorf("with %v, without %v", HasChildrenFiles(with), HasChildrenFiles(without))
	}
}

func TestReadSelfBounds(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"self/mountinfo": "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"})
	if b, err := ReadSelf(root, "mountinfo", 1<<10, time.Second); err != nil || !strings.HasPrefix(string(b), "22 1 8:1") {
		t.Errorf("%q, %v", b, err)
	}
	if _, err := ReadSelf(root, "mountinfo", 10, time.Second); !errors.Is(err, ErrBound) || !strings.Contains(err.Error(), "mountinfo of the collector is over 10 bytes") {
		t.Errorf("over the bound: %v", err)
	}
}

func TestLiveListings(t *testing.T) {
	// this test binary is a process with threads, listed under /proc
	pid := uint32(os.Getpid())
	pids, err := Pids(Root)
	if err != nil || !slices.Contains(pids, pid) {
		t.Fatalf("pids hold %d: %v (%v)", pid, slices.Contains(pids, pid), err)
	}
	tids, err := Tasks(Root, pid)
	if err != nil || !slices.Contains(tids, pid) {
		t.Errorf("threads %v, %v; want the main thread %d among them", tids, err, pid)
	}
	st, err := ReadTaskStat(Root, pid, pid)
	if err != nil || st.PID != pid || st.PPID != uint32(os.Getppid()) {
		t.Errorf("main thread stat %+v, %v", st, err)
	}
}

func sorted(s []uint32) []uint32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
