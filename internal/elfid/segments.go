// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"debug/elf"
	"fmt"
)

// segments hashes the loadable segments, naming each PT_LOAD#i with its
// permissions, and searches them for needles when search is set (a file
// without sections: the read-only data sits in one of them).
func (s *scanner) segments(f *elf.File, id *Identity, search bool) error {
	var buf []byte
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz < minHashed {
			continue
		}
		if p.Off > uint64(s.size) || p.Filesz > uint64(s.size)-p.Off || p.Filesz > uint64(s.r.remaining()) {
			id.Partial = true
			continue
		}
		if buf == nil {
			buf = make([]byte, s.m.overlap()+s.chunk)
		}
		s.mask = headerMask(f.Class)
		sum, err := s.stream(buf, int64(p.Off), int64(p.Filesz), search && s.m.left > 0)
		s.mask = nil
		if err != nil {
			return fmt.Errorf("elf segment %d (%d bytes at offset %d): %w", i, p.Filesz, p.Off, err)
		}
		id.Code = append(id.Code, Section{Name: fmt.Sprintf("PT_LOAD#%d %s", i, p.Flags), Size: p.Filesz, SHA256: sum})
	}
	return nil
}

// headerMask marks the ELF header bytes a segment's hash leaves out, as the
// kernel's fingerprint does: e_ident's OS ABI, ABI version and padding,
// and the fields that only locate the section headers. The loader reads
// none of them, so a copy that changes them runs as the original.
func headerMask(class elf.Class) []bool {
	m := make([]bool, 64)
	for i := 7; i < 16; i++ {
		m[i] = true
	}
	spans := [][2]int{{0x28, 8}, {0x3a, 6}} // e_shoff; e_shentsize, e_shnum, e_shstrndx
	if class == elf.ELFCLASS32 {
		spans = [][2]int{{0x20, 4}, {0x2e, 6}}
	}
	for _, sp := range spans {
		for i := sp[0]; i < sp[0]+sp[1]; i++ {
			m[i] = true
		}
	}
	return m
}

// masked returns b, read at file offset off, with the masked header bytes
// zeroed (a copy; b is left as it is for the needle search).
func masked(b []byte, off int64, mask []bool) []byte {
	out := append([]byte(nil), b...)
	for i := range out {
		if o := off + int64(i); o < int64(len(mask)) && mask[o] {
			out[i] = 0
		}
	}
	return out
}
