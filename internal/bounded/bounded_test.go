// SPDX-License-Identifier: Apache-2.0

package bounded

import (
	"fmt"
	"sync"
	"testing"
)

func TestMapHoldsAtMostItsLimitAndCountsWhatItForgets(t *testing.T) {
	// GIVEN a map of 100 entries
	m := New[int, int](100)
	// WHEN 10,000 distinct keys go in
	for i := range 10000 {
		m.Put(i, i)
		if m.Len() > 100 {
			t.Fatalf("after %d puts: %d entries, limit 100", i+1, m.Len())
		}
	}
	// THEN it holds at most 100, the newest among them, and every other
	// entry is counted as evicted
	if v, ok := m.Get(9999); !ok || v != 9999 {
		t.Errorf("Get(9999) = %d, %v: the newest entry is gone", v, ok)
	}
	if _, ok := m.Get(0); ok {
		t.Error("Get(0): the oldest entry is still held")
	}
	if got, want := m.Evictions(), uint64(10000-m.Len()); got != want {
		t.Errorf("Evictions() = %d, want %d (10,000 put, %d held)", got, want, m.Len())
	}
}

func TestMapKeepsWhatIsInUseAcrossATurn(t *testing.T) {
	// GIVEN a map of 4 whose current generation holds a and b
	m := New[string, int](4)
	m.Put("a", 1)
	m.Put("b", 2)
	// WHEN c and d turn a and b into the old generation, a is read, and e
	// turns the generations again
	m.Put("c", 3)
	m.Put("d", 4)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v after one turn, want 1, true", v, ok)
	}
	m.Put("e", 5)
	// THEN a, read since, survives; b, never read, is gone
	if _, ok := m.Get("a"); !ok {
		t.Error("a was read in the old generation and was still evicted")
	}
	if _, ok := m.Get("b"); ok {
		t.Error("b was never read and survived two turns")
	}
	if m.Len() > 4 {
		t.Errorf("Len() = %d, limit 4", m.Len())
	}
}

func TestMapPutReplacesWithoutGrowing(t *testing.T) {
	m := New[string, int](4)
	for i := range 100 {
		m.Put("k", i)
	}
	if v, _ := m.Get("k"); v != 99 || m.Len() != 1 || m.Evictions() != 0 {
		t.Errorf("after 100 puts of one key: value %d, %d entries, %d evictions; want 99, 1, 0", v, m.Len(), m.Evictions())
	}
	// a key in the old generation is moved, not held twice
	m.Put("x", 0)
	m.Put("y", 0) // turn: k, x are old
	m.Put("k", -1)
	if m.Len() != 3 {
		t.Errorf("Len() = %d after a put of an old key, want 3", m.Len())
	}
	m.Delete("k")
	if _, ok := m.Get("k"); ok || m.Len() != 2 {
		t.Errorf("after Delete: k present %v, %d entries; want absent, 2", ok, m.Len())
	}
}

func TestWeightedMapBoundsTheTotalWeight(t *testing.T) {
	// GIVEN a map of many entries but 1,000 bytes in all
	m := NewWeighted[int, []byte](1000, 1000, func(b []byte) int { return len(b) })
	// WHEN values of 100 bytes go in
	for i := range 50 {
		m.Put(i, make([]byte, 100))
		// THEN it never holds more than 1,000 bytes
		if m.Weight() > 1000 {
			t.Fatalf("after %d puts: %d bytes held, limit 1000", i+1, m.Weight())
		}
	}
	if m.Len() == 0 || m.Len() > 10 {
		t.Errorf("Len() = %d: want between 1 and 10 values of 100 bytes", m.Len())
	}
	// AND a replaced value's weight is the new one's
	m.Put(49, make([]byte, 1))
	m.Put(49, make([]byte, 2))
	if w := m.Weight(); w%100 != 2 {
		t.Errorf("Weight() = %d after replacing a value by 2 bytes, want a multiple of 100 plus 2", w)
	}
}

func TestMapUpdateIsOneStep(t *testing.T) {
	// GIVEN a counter in the map, WHEN 8 goroutines add to it 1,000 times each
	m := New[string, int](16)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				m.Update("n", func(v int, _ bool) int { return v + 1 })
			}
		}()
	}
	wg.Wait()
	// THEN no increment is lost
	if v, _ := m.Get("n"); v != 8000 {
		t.Errorf("counter = %d, want 8000", v)
	}
	got := m.Update("new", func(v int, ok bool) int {
		if ok || v != 0 {
			t.Errorf("Update of an absent key saw %d, %v; want 0, false", v, ok)
		}
		return 7
	})
	if got != 7 {
		t.Errorf("Update returned %d, want 7", got)
	}
}

func TestMapOfLimitOneStillHoldsTheLatest(t *testing.T) {
	m := New[int, int](1)
	for i := range 10 {
		m.Put(i, i)
		if v, ok := m.Get(i); !ok || v != i {
			t.Fatalf("Get(%d) right after Put = %d, %v", i, v, ok)
		}
	}
	if m.Len() > 2 {
		t.Errorf("Len() = %d, want at most 2", m.Len())
	}
}

func BenchmarkMap(b *testing.B) {
	for _, hot := range []int{100, 100000} {
		b.Run(fmt.Sprintf("keys=%d", hot), func(b *testing.B) {
			// 4096 entries; a working set that fits, and a flood that does not
			m := New[int, int](4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := i % hot
				if _, ok := m.Get(k); !ok {
					m.Put(k, i)
				}
			}
			b.ReportMetric(float64(m.Evictions())/float64(b.N), "evictions/op")
		})
	}
}
