// SPDX-License-Identifier: Apache-2.0

package detect

import "github.com/mitmexec/mitmexec/internal/event"

// boundedCache remembers verdicts on file identities in two generations:
// a full current generation becomes the old one and the oldest is dropped,
// so memory stays bounded and recently used entries survive, as in the
// kernel's LRU map of the same capacity. A flood of throw-away files
// evicts entries, and an evicted file costs one more read when it comes
// back: work stays proportional to the execs that caused it.
type boundedCache struct {
	limit    int
	cur, old map[event.FileID]identity
}

func newBoundedCache(limit int) *boundedCache {
	return &boundedCache{limit: max(limit/2, 1), cur: map[event.FileID]identity{}, old: map[event.FileID]identity{}}
}

func (c *boundedCache) get(k event.FileID) (identity, bool) {
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.put(k, v) // still in use: keep it past the next turn
	}
	return v, ok
}

func (c *boundedCache) put(k event.FileID, v identity) {
	if len(c.cur) >= c.limit {
		c.old, c.cur = c.cur, make(map[event.FileID]identity, c.limit)
	}
	c.cur[k] = v
}

func (c *boundedCache) len() int { return len(c.cur) + len(c.old) }
