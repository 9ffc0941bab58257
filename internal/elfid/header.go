// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// header is what readHeader checked of the ELF header.
type header struct {
	class elf.Class
	bo    binary.ByteOrder
}

// sectionTable is where the ELF header says the section headers are.
type sectionTable struct {
	off, entsize, num, strndx uint64
}

// readHeader checks, before debug/elf sees the file, the counts and sizes
// from which debug/elf would size its allocations and reads.
func readHeader(r io.ReaderAt, size int64) (header, error) {
	h, hdrSize, wantShentsize, err := readIdent(r, size)
	if err != nil {
		return header{}, err
	}
	if size < hdrSize {
		return header{}, fmt.Errorf("elf file is %d bytes, shorter than its %d-byte header", size, hdrSize)
	}
	b := make([]byte, hdrSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return header{}, fmt.Errorf("elf header: %w", err)
	}
	var st sectionTable
	if h.class == elf.ELFCLASS32 {
		st.off, b = uint64(h.bo.Uint32(b[32:])), b[42:]
	} else {
		st.off, b = h.bo.Uint64(b[40:]), b[54:]
	}
	phentsize, phnum := uint64(h.bo.Uint16(b[0:])), uint64(h.bo.Uint16(b[2:]))
	st.entsize, st.num, st.strndx = uint64(h.bo.Uint16(b[4:])), uint64(h.bo.Uint16(b[6:])), uint64(h.bo.Uint16(b[8:]))

	if t := phentsize * phnum; t > maxPhdrBytes {
		return header{}, fmt.Errorf("elf program header table is %d bytes, limit %d", t, maxPhdrBytes)
	}
	if st.off == 0 {
		return h, nil
	}
	if st.entsize < uint64(wantShentsize) {
		return header{}, fmt.Errorf("elf section header size is %d, want at least %d", st.entsize, wantShentsize)
	}
	if err := checkSections(r, h, st, size); err != nil {
		return header{}, err
	}
	return h, nil
}

// readIdent reads e_ident: the magic, the class and the byte order, and
// from the class the size of the ELF header and of a section header.
func readIdent(r io.ReaderAt, size int64) (h header, hdrSize, shentsize int64, err error) {
	var ident [elf.EI_NIDENT]byte
	if size < 4 {
		return header{}, 0, 0, ErrNotELF
	}
	n, err := r.ReadAt(ident[:], 0)
	if n < 4 {
		if err == nil || err == io.EOF {
			return header{}, 0, 0, ErrNotELF
		}
		return header{}, 0, 0, err
	}
	if string(ident[:4]) != elf.ELFMAG {
		return header{}, 0, 0, ErrNotELF
	}
	switch h.class = elf.Class(ident[elf.EI_CLASS]); h.class {
	case elf.ELFCLASS32:
		hdrSize, shentsize = 52, 40
	case elf.ELFCLASS64:
		hdrSize, shentsize = 64, 64
	default:
		return header{}, 0, 0, fmt.Errorf("elf class is %d, want 1 (32-bit) or 2 (64-bit)", ident[elf.EI_CLASS])
	}
	switch ident[elf.EI_DATA] {
	case byte(elf.ELFDATA2LSB):
		h.bo = binary.LittleEndian
	case byte(elf.ELFDATA2MSB):
		h.bo = binary.BigEndian
	default:
		return header{}, 0, 0, fmt.Errorf("elf data encoding is %d, want 1 (little-endian) or 2 (big-endian)", ident[elf.EI_DATA])
	}
	return h, hdrSize, shentsize, nil
}

// checkSections checks the section header table and the section name
// table's header, which debug/elf reads whole.
func checkSections(r io.ReaderAt, h header, st sectionTable, size int64) error {
	// With SHN_LORESERVE (0xff00) sections or more, e_shnum is 0 and
	// e_shstrndx SHN_XINDEX: the real values are in section header 0.
	if st.num == 0 || st.strndx == uint64(elf.SHN_XINDEX) {
		sh, err := sectionHeader(r, h, st.off, size)
		if err != nil {
			return fmt.Errorf("elf section header 0: %w", err)
		}
		if st.num == 0 {
			st.num = sh.size
		}
		if st.strndx == uint64(elf.SHN_XINDEX) {
			st.strndx = uint64(sh.link)
		}
	}
	if st.num > maxSections {
		return fmt.Errorf("elf section count is %d, limit %d", st.num, maxSections)
	}
	if t := st.num * st.entsize; st.off > uint64(size) || t > uint64(size)-st.off {
		return fmt.Errorf("elf section header table is %d bytes at offset %d, beyond the %d-byte file", t, st.off, size)
	}
	if st.strndx == 0 || st.strndx >= st.num {
		return nil // debug/elf rejects or ignores it without reading it
	}
	sh, err := sectionHeader(r, h, st.off+st.strndx*st.entsize, size)
	if err != nil {
		return fmt.Errorf("elf section name table header: %w", err)
	}
	if sh.flags&uint64(elf.SHF_COMPRESSED) != 0 {
		return fmt.Errorf("elf section name table flags are %#x, compressed (a decompression bomb debug/elf would inflate whole)", sh.flags)
	}
	if sh.size > maxShstrtab {
		return fmt.Errorf("elf section name table is %d bytes, limit %d", sh.size, maxShstrtab)
	}
	return nil
}

type rawSection struct {
	flags, size uint64
	link        uint32
}

func sectionHeader(r io.ReaderAt, h header, off uint64, size int64) (rawSection, error) {
	n := uint64(64)
	if h.class == elf.ELFCLASS32 {
		n = 40
	}
	if off > uint64(size) || n > uint64(size)-off {
		return rawSection{}, fmt.Errorf("offset %d is beyond the %d-byte file", off, size)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, int64(off)); err != nil {
		return rawSection{}, err
	}
	if h.class == elf.ELFCLASS32 {
		return rawSection{flags: uint64(h.bo.Uint32(b[8:])), size: uint64(h.bo.Uint32(b[20:])), link: h.bo.Uint32(b[24:])}, nil
	}
	return rawSection{flags: h.bo.Uint64(b[8:]), size: h.bo.Uint64(b[32:]), link: h.bo.Uint32(b[40:])}, nil
}
