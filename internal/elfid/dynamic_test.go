// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"
)

// dropSectionHeaders zeroes e_shoff, e_shnum and e_shstrndx of a 64-bit
// little-endian ELF file: the kernel and ld.so only use program headers,
// so the program runs the same.
func dropSectionHeaders(b []byte) []byte {
	b = slices.Clone(b)
	binary.LittleEndian.PutUint64(b[40:], 0)
	binary.LittleEndian.PutUint16(b[60:], 0)
	binary.LittleEndian.PutUint16(b[62:], 0)
	return b
}

func TestNeeded(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "libm", progLibm, "-lm")
	id := readPath(t, bin, Options{})
	for _, lib := range []string{"libm.so.6", "libc.so.6"} {
		if !slices.Contains(id.Needed, lib) {
			t.Errorf("Needed %q lacks %s", id.Needed, lib)
		}
	}

	// ld.so reads DT_NEEDED through PT_DYNAMIC; section headers are not
	// needed to find it.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readBytes(dropSectionHeaders(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Needed, id.Needed) {
		t.Errorf("without section headers Needed %q, want %q", got.Needed, id.Needed)
	}

	if _, err := os.Stat("/usr/bin/ettercap"); err == nil {
		id := readPath(t, "/usr/bin/ettercap", Options{})
		if !slices.Contains(id.Needed, "libettercap.so.0") {
			t.Errorf("/usr/bin/ettercap Needed %q lacks libettercap.so.0", id.Needed)
		}
	}
}

// sectionIndex returns where s is within the named section of the file.

// synthELF returns a minimal 64-bit little-endian executable with no
// section headers: one PT_LOAD mapping the whole file and a PT_DYNAMIC
// holding a DT_NEEDED for each lib, as ld.so would find them.
func synthELF(libs []string) []byte {
	const base = 0x400000
	le := binary.LittleEndian
	strtab := []byte{0}
	var offs []uint64
	for _, l := range libs {
		offs = append(offs, uint64(len(strtab)))
		strtab = append(append(strtab, l...), 0)
	}
	strOff := 64 + 2*56
	dynOff := (strOff + len(strtab) + 7) &^ 7
	var dyn []byte
	entry := func(tag elf.DynTag, val uint64) {
		dyn = le.AppendUint64(dyn, uint64(tag))
		dyn = le.AppendUint64(dyn, val)
	}
	for _, o := range offs {
		entry(elf.DT_NEEDED, o)
	}
	entry(elf.DT_STRTAB, base+uint64(strOff))
	entry(elf.DT_STRSZ, uint64(len(strtab)))
	entry(elf.DT_NULL, 0)
	size := dynOff + len(dyn)

	b := make([]byte, size)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], base)
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[56:], 2)  // e_phnum
	ph := func(at int, typ elf.ProgType, off, n uint64) {
		le.PutUint32(b[at:], uint32(typ))
		le.PutUint32(b[at+4:], uint32(elf.PF_R))
		le.PutUint64(b[at+8:], off)
		le.PutUint64(b[at+16:], base+off)
		le.PutUint64(b[at+24:], base+off)
		le.PutUint64(b[at+32:], n)
		le.PutUint64(b[at+40:], n)
		le.PutUint64(b[at+48:], 8)
	}
	ph(64, elf.PT_LOAD, 0, uint64(size))
	ph(64+56, elf.PT_DYNAMIC, uint64(dynOff), uint64(len(dyn)))
	copy(b[strOff:], strtab)
	copy(b[dynOff:], dyn)
	return b
}

func TestNeededFromProgramHeaders(t *testing.T) {
	id, err := readBytes(synthELF([]string{"libpcap.so.0.8", "libnet.so.1", "libpcap.so.0.8", "libc.so.6"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"libpcap.so.0.8", "libnet.so.1", "libc.so.6"}; !slices.Equal(id.Needed, want) || id.Partial {
		t.Errorf("Needed %q partial %v, want %q", id.Needed, id.Partial, want)
	}

	var libs []string
	for i := range maxNeeded + 44 {
		libs = append(libs, "lib"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+".so."+string(rune('0'+i/26%10))+string(rune('0'+i/260)))
	}
	id, err = readBytes(synthELF(libs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Needed) != maxNeeded || !id.Partial {
		t.Errorf("%d DT_NEEDED: kept %d, partial %v; want %d kept and partial", len(libs), len(id.Needed), id.Partial, maxNeeded)
	}
}
