// SPDX-License-Identifier: Apache-2.0

package safeopen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadBoundedSparseTebibyteStopsAtTheByteBound(t *testing.T) {
	// GIVEN a 1 TiB sparse file: stat says 1 TiB, reading it costs no disk
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("the temp file system cannot hold a 1 TiB sparse file: %v", err)
	}
	// WHEN it is read with a 1 MiB bound
	start := time.Now()
	var seen int64
	n, complete, err := ReadBounded(f, 1<<20, time.Now().Add(10*time.Second), func(b []byte) { seen += int64(len(b)) })
	// THEN exactly 1 MiB is read, quickly, and the cut is reported
	if err != nil || complete || n != 1<<20 || seen != n {
		t.Fatalf("n %d seen %d complete %v err %v", n, seen, complete, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1 MiB of a sparse file took %s", d)
	}
}

func TestReadBoundedDeadlineCutsAnEndlessFile(t *testing.T) {
	// GIVEN a 1 TiB sparse file and no practical byte bound (the "grown to
	// a petabyte while read" case)
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("the temp file system cannot hold a 1 TiB sparse file: %v", err)
	}
	// WHEN it is read with a 100 ms deadline
	start := time.Now()
	n, complete, err := ReadBounded(f, 1<<62, start.Add(100*time.Millisecond), nil)
	// THEN the deadline ends it soon after, as a cut
	if err != nil || complete || n <= 0 || n >= 1<<40 {
		t.Fatalf("n %d complete %v err %v", n, complete, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a 100 ms deadline ended the read after %s", d)
	}
}

func TestReadBoundedGrowthDoesNotExtendTheWork(t *testing.T) {
	// GIVEN a 1 MiB file that grows to 1 TiB once the reader started
	p := filepath.Join(t.TempDir(), "growing")
	if err := os.WriteFile(p, bytes.Repeat([]byte{'a'}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	grown := false
	n, complete, err := ReadBounded(f, 2<<20, time.Now().Add(10*time.Second), func([]byte) {
		if !grown {
			grown = true
			if err := os.Truncate(p, 1<<40); err != nil {
				t.Skipf("cannot grow the file: %v", err)
			}
		}
	})
	// THEN the reader stops at its own bound, not at the new end
	if err != nil || complete || n != 2<<20 {
		t.Fatalf("n %d complete %v err %v", n, complete, err)
	}
}

func TestReadBoundedExactSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	body := bytes.Repeat([]byte("x"), 100)
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max      int64
		n        int64
		complete bool
	}{{100, 100, true}, {101, 100, true}, {99, 99, false}, {0, 0, false}} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		n, complete, err := ReadBounded(f, tc.max, time.Time{}, func(b []byte) { got = append(got, b...) })
		f.Close()
		if err != nil || n != tc.n || complete != tc.complete || int64(len(got)) != tc.n {
			t.Errorf("max %d: n %d complete %v got %d bytes err %v, want n %d complete %v", tc.max, n, complete, len(got), err, tc.n, tc.complete)
		}
	}
	// an empty file is complete even with no byte allowed
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(empty)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, complete, err := ReadBounded(f, 0, time.Time{}, nil); n != 0 || !complete || err != nil {
		t.Errorf("empty file: n %d complete %v err %v", n, complete, err)
	}
}

func TestReadBoundedDeadlineInterruptsAWaitingPipe(t *testing.T) {
	// GIVEN a pipe whose writer stays silent: a plain read waits forever
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// WHEN it is read with a deadline
	start := time.Now()
	n, complete, err := ReadBounded(r, 1<<20, start.Add(100*time.Millisecond), nil)
	// THEN SetReadDeadline ends the waiting read
	if err != nil || complete || n != 0 {
		t.Fatalf("n %d complete %v err %v", n, complete, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the read waited %s", d)
	}
}
