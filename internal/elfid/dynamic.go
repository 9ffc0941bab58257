// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"bytes"
	"debug/elf"
)

// needed reads DT_NEEDED the way ld.so does: from PT_DYNAMIC and DT_STRTAB
// as addresses in the loaded segments, not from the section headers, which
// the loader never looks at (sstrip deletes them and the program still runs).
// It reports whether a bound cut the list short.
func needed(f *elf.File, h header, r *boundedReader) ([]string, bool) {
	b, cut, ok := dynamicSegment(f, r)
	if !ok {
		return nil, false
	}
	d, ended := dynamicEntries(b, h)
	partial := (cut && !ended) || d.tooMany // cut is only a bound if DT_NULL is not within it
	if !d.haveStrtab {
		return nil, partial
	}
	return libNames(f, r, d), partial || r.exceeded
}

// dynamicSegment reads PT_DYNAMIC where the loaded segments map it, at
// most maxDynamic bytes, and reports whether that bound cut it. ok is
// false for a static program: the kernel maps it and jumps, no loader.
func dynamicSegment(f *elf.File, r *boundedReader) (b []byte, cut, ok bool) {
	var dyn *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC {
			dyn = p
			break
		}
	}
	if dyn == nil {
		return nil, false, false
	}
	off, avail, ok := fileOffset(f, dyn.Vaddr)
	if !ok {
		return nil, false, false
	}
	n := min(avail, dyn.Filesz)
	cut = n > maxDynamic
	n = min(n, maxDynamic)
	b = make([]byte, n)
	m, _ := r.ReadAt(b, int64(off))
	return b[:m], cut, true
}

// dynamic is what needed takes from the dynamic table.
type dynamic struct {
	neededOffs            []uint64 // DT_NEEDED: offsets in DT_STRTAB
	strtab, strsz         uint64
	haveStrtab, haveStrsz bool
	tooMany               bool // more DT_NEEDED than maxNeeded
}

// dynamicEntries reads the dynamic table's entries up to DT_NULL, and
// reports whether it found DT_NULL (the table ends, however long the
// segment).
func dynamicEntries(b []byte, h header) (d dynamic, ended bool) {
	entSize := 16
	if h.class == elf.ELFCLASS32 {
		entSize = 8
	}
	for ; len(b) >= entSize; b = b[entSize:] {
		var tag elf.DynTag
		var val uint64
		if h.class == elf.ELFCLASS32 {
			tag, val = elf.DynTag(int32(h.bo.Uint32(b))), uint64(h.bo.Uint32(b[4:]))
		} else {
			tag, val = elf.DynTag(int64(h.bo.Uint64(b))), h.bo.Uint64(b[8:])
		}
		switch tag {
		case elf.DT_NULL:
			return d, true
		case elf.DT_NEEDED:
			if len(d.neededOffs) == maxNeeded {
				d.tooMany = true
				continue
			}
			d.neededOffs = append(d.neededOffs, val)
		case elf.DT_STRTAB:
			d.strtab, d.haveStrtab = val, true
		case elf.DT_STRSZ:
			d.strsz, d.haveStrsz = val, true
		}
	}
	return d, false
}

// libNames reads the DT_NEEDED names from DT_STRTAB, once each, skipping
// those out of the table or of the loaded segments.
func libNames(f *elf.File, r *boundedReader, d dynamic) []string {
	var libs []string
	for _, o := range d.neededOffs {
		if d.haveStrsz && o >= d.strsz {
			continue
		}
		if d.strtab+o < d.strtab {
			continue
		}
		at, avail, ok := fileOffset(f, d.strtab+o)
		if !ok {
			continue
		}
		n := min(avail, maxLibName)
		if d.haveStrsz {
			n = min(n, d.strsz-o)
		}
		b := make([]byte, n)
		m, _ := r.ReadAt(b, int64(at))
		i := bytes.IndexByte(b[:m], 0)
		if i <= 0 {
			continue
		}
		if lib := string(b[:i]); !contains(libs, lib) {
			libs = append(libs, lib)
		}
	}
	return libs
}

// fileOffset maps a virtual address to the file offset the kernel's PT_LOAD
// mapping gives it, and the file bytes that follow it in that segment.
func fileOffset(f *elf.File, vaddr uint64) (off, avail uint64, ok bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || vaddr < p.Vaddr || vaddr-p.Vaddr >= p.Filesz {
			continue
		}
		d := vaddr - p.Vaddr
		if p.Off+d < p.Off || p.Off+d > 1<<62 {
			continue
		}
		return p.Off + d, p.Filesz - d, true
	}
	return 0, 0, false
}
