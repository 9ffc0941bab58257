// SPDX-License-Identifier: Apache-2.0

// Package bounded is the one bounded map of the project: the caches and
// memories that what local users do would otherwise grow (file verdicts,
// hashes, owners, interfaces, processes already reported) each hold at most
// a fixed number of entries, and count what they forget.
//
// The map keeps two generations. New entries go into the current one; when
// it is full it becomes the old one and the previous old one is dropped. A
// hit in the old generation moves the entry back into the current one, so
// what is still in use survives a turn, much as in the kernel's LRU maps,
// at the cost of a map operation rather than a list per access. A flood of
// throw-away keys evicts entries, and an evicted entry costs one more
// computation when it comes back: work stays proportional to the events that
// caused it. Dropping the older half, never all at once, means a flood does
// not take with it what was just learnt.
package bounded

import "sync"

// Map is a map of at most Limit entries (and, when weighted, of at most
// MaxWeight total weight, give or take one entry). It is safe for
// concurrent use; operations that must read and write as one take Update.
type Map[K comparable, V any] struct {
	mu        sync.Mutex
	half      int         // entries per generation
	halfCost  int         // weight per generation; 0 leaves weight unchecked
	weight    func(V) int // nil when unweighted
	cur, old  map[K]V
	curCost   int
	oldCost   int
	evictions uint64
}

// New returns a map of at most limit entries (at least 2).
func New[K comparable, V any](limit int) *Map[K, V] {
	half := max(limit/2, 1)
	return &Map[K, V]{half: half, cur: make(map[K]V), old: make(map[K]V)}
}

// NewWeighted returns a map of at most limit entries whose values weigh,
// together, at most maxWeight (as weight counts them, bytes say). A value
// heavier than half of maxWeight is still held, alone in its generation.
func NewWeighted[K comparable, V any](limit, maxWeight int, weight func(V) int) *Map[K, V] {
	m := New[K, V](limit)
	m.halfCost, m.weight = max(maxWeight/2, 1), weight
	return m
}

// Get returns the value of k; a hit in the old generation moves it into
// the current one.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.getLocked(k)
}

func (m *Map[K, V]) getLocked(k K) (V, bool) {
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	if ok {
		m.putLocked(k, v) // still in use: keep it past the next turn
	}
	return v, ok
}

// Put sets the value of k.
func (m *Map[K, V]) Put(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLocked(k, v)
}

// Update sets the value of k to what f makes of the present one (ok false
// and v zero when there is none), in one step, and returns it.
func (m *Map[K, V]) Update(k K, f func(v V, ok bool) V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.getLocked(k)
	v = f(v, ok)
	m.putLocked(k, v)
	return v
}

func (m *Map[K, V]) putLocked(k K, v V) {
	w := m.weigh(v)
	if prev, ok := m.cur[k]; ok {
		m.curCost += w - m.weigh(prev)
		m.cur[k] = v
		return
	}
	if prev, ok := m.old[k]; ok {
		delete(m.old, k)
		m.oldCost -= m.weigh(prev)
	}
	if len(m.cur) >= m.half || (m.halfCost > 0 && len(m.cur) > 0 && m.curCost+w > m.halfCost) {
		m.evictions += uint64(len(m.old))
		m.old, m.oldCost = m.cur, m.curCost
		m.cur, m.curCost = make(map[K]V, len(m.old)), 0
	}
	m.cur[k] = v
	m.curCost += w
}

func (m *Map[K, V]) weigh(v V) int {
	if m.weight == nil {
		return 0
	}
	return m.weight(v)
}

// Delete forgets k.
func (m *Map[K, V]) Delete(k K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cur[k]; ok {
		delete(m.cur, k)
		m.curCost -= m.weigh(v)
	}
	if v, ok := m.old[k]; ok {
		delete(m.old, k)
		m.oldCost -= m.weigh(v)
	}
}

// Len is the number of entries held.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cur) + len(m.old)
}

// Weight is the total weight of the values held (0 when unweighted).
func (m *Map[K, V]) Weight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.curCost + m.oldCost
}

// Evictions counts the entries the map forgot to stay within its bounds.
func (m *Map[K, V]) Evictions() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evictions
}
