// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"bytes"
	"encoding/binary"
)

// blockLen is the length of the blocks the matcher hashes.
const blockLen = 8

// matcher finds many needles in one pass over each window: searching for
// each needle in turn costs a pass per needle, and a catalog has dozens
// while a Go binary has megabytes of read-only data.
//
// Needles of blockLen bytes or more are found the Wu-Manber way. With m the
// shortest of them, every occurrence of a needle covers m-blockLen+1
// consecutive block starts within its first m bytes, so looking only at
// the blocks starting at every (m-blockLen+1)th position still sees one
// block of each occurrence. A bitmap of the hashes of those blocks rejects
// almost every position looked at for the price of one load; the rare hit
// is checked against the needles that hold that block. Blocks of eight
// bytes, not four: "http" or "This" start thousands of strings in any large
// binary, and every hit costs a map lookup.
type matcher struct {
	needles [][]byte
	found   []bool
	left    int   // needles not found yet
	short   []int // needles shorter than blockLen, searched one by one
	step    int
	blocks  map[uint64][]candidate
	bitmap  *[1 << 10]uint64
	maxLen  int
}

// candidate says that block starts at offset off of needle i.
type candidate struct{ i, off int }

func newMatcher(needles []string) *matcher {
	m := &matcher{found: make([]bool, len(needles))}
	minLen := 0
	for i, n := range needles {
		m.needles = append(m.needles, []byte(n))
		if n == "" {
			continue // would match everything: a catalog mistake, not a signature
		}
		m.left++
		m.maxLen = max(m.maxLen, len(n))
		if len(n) < blockLen {
			m.short = append(m.short, i)
		} else if minLen == 0 || len(n) < minLen {
			minLen = len(n)
		}
	}
	if minLen == 0 {
		return m
	}
	m.step = minLen - blockLen + 1
	m.blocks = map[uint64][]candidate{}
	m.bitmap = new([1 << 10]uint64)
	for i, n := range m.needles {
		if len(n) < blockLen {
			continue
		}
		for off := 0; off < m.step; off++ {
			k := binary.LittleEndian.Uint64(n[off:])
			h := blockHash(k)
			m.bitmap[h>>6] |= 1 << (h & 63)
			m.blocks[k] = append(m.blocks[k], candidate{i, off})
		}
	}
	return m
}

// blockHash is 16 bits: one bit of the 64 Kibit bitmap.
func blockHash(k uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> 48 }

// overlap is how many bytes of one window are kept in front of the next,
// so a needle straddling the boundary is whole in one window.
func (m *matcher) overlap() int { return max(m.maxLen-1, 0) }

// search marks the needles found in w.
func (m *matcher) search(w []byte) {
	for _, i := range m.short {
		if !m.found[i] && bytes.Contains(w, m.needles[i]) {
			m.found[i] = true
			m.left--
		}
	}
	if m.bitmap == nil {
		return
	}
	bitmap, step := m.bitmap, m.step
	for p := 0; p+blockLen <= len(w); p += step {
		k := binary.LittleEndian.Uint64(w[p:])
		h := blockHash(k)
		if bitmap[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		for _, c := range m.blocks[k] {
			s := p - c.off
			if s >= 0 && !m.found[c.i] && bytes.HasPrefix(w[s:], m.needles[c.i]) {
				m.found[c.i] = true
				if m.left--; m.left == 0 {
					return
				}
			}
		}
	}
}
