// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// fixtureBytes builds the alpha program and returns its bytes.
func fixtureBytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(buildC(tb, tb.TempDir(), "alpha", progAlpha))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sectionHeaderBytes returns the 64-byte header of the named section of a
// 64-bit little-endian ELF file, to patch.
func sectionHeaderBytes(tb testing.TB, b []byte, name string) []byte {
	tb.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	shoff := binary.LittleEndian.Uint64(b[40:])
	for i, s := range f.Sections {
		if s.Name == name {
			o := int(shoff) + i*64
			return b[o : o+64]
		}
	}
	tb.Fatalf("no section %s", name)
	return nil
}

// hostile runs Read on b and fails on a panic or an unbounded run; it
// returns the result for further checks.
func hostile(tb testing.TB, what string, b []byte, o Options) (Identity, error) {
	tb.Helper()
	start := time.Now()
	id, err := readBytes(b, o)
	if errors.Is(err, errPanic) {
		tb.Fatalf("%s: %v", what, err)
	}
	if d := time.Since(start); d > 30*time.Second {
		tb.Errorf("%s: Read took %v", what, d)
	}
	return id, err
}

func TestTruncated(t *testing.T) {
	b := fixtureBytes(t)
	for n := 0; n < len(b); n += 1 + n/64 {
		id, err := hostile(t, "truncated", b[:n], Options{Needles: []string{"GCC"}})
		if err == nil && !id.Partial {
			t.Errorf("truncated to %d of %d bytes: no error and not partial: %+v", n, len(b), id)
		}
	}
}

func TestRandomBytesWithMagic(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	fixture := fixtureBytes(t)
	for i := 0; i < 3000; i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rnd.Intn(8192))
			rnd.Read(b)
			if len(b) >= 7 {
				copy(b, "\x7fELF")
				b[4], b[5], b[6] = byte(1+rnd.Intn(2)), byte(1+rnd.Intn(2)), 1
			}
		} else {
			// The real file with a few bytes changed: gets past the
			// checks that random bytes fail.
			b = slices.Clone(fixture)
			for k := 1 + rnd.Intn(8); k > 0; k-- {
				at := rnd.Intn(len(b))
				if rnd.Intn(2) == 0 {
					at = rnd.Intn(64) // the ELF header
				}
				b[at] = byte(rnd.Intn(256))
			}
		}
		hostile(t, "random", b, Options{MaxBytes: 1 << 20, Needles: []string{"GCC", "needle-alpha"}})
	}
}

func TestHugeSectionCount(t *testing.T) {
	b := fixtureBytes(t)

	many := slices.Clone(b)
	binary.LittleEndian.PutUint16(many[60:], 0xfeff)
	_, err := hostile(t, "e_shnum 0xfeff", many, Options{})
	if err == nil || !strings.Contains(err.Error(), "elf section count is 65279, limit 4096") {
		t.Errorf("e_shnum 0xfeff: err %v", err)
	}

	// Extended numbering: e_shnum 0, the count in section 0's sh_size.
	ext := slices.Clone(b)
	binary.LittleEndian.PutUint16(ext[60:], 0)
	shoff := binary.LittleEndian.Uint64(ext[40:])
	binary.LittleEndian.PutUint64(ext[shoff+32:], 70000)
	_, err = hostile(t, "extended count", ext, Options{})
	if err == nil || !strings.Contains(err.Error(), "elf section count is 70000, limit 4096") {
		t.Errorf("extended count: err %v", err)
	}

	// A section header table past the end of the file.
	far := slices.Clone(b)
	binary.LittleEndian.PutUint64(far[40:], 1<<40)
	if _, err := hostile(t, "far e_shoff", far, Options{}); err == nil {
		t.Error("e_shoff past the end accepted")
	}

	phdrs := slices.Clone(b)
	binary.LittleEndian.PutUint16(phdrs[56:], 0xffff)
	_, err = hostile(t, "e_phnum 0xffff", phdrs, Options{})
	if err == nil || !strings.Contains(err.Error(), "elf program header table is 3669960 bytes, limit 65536") {
		t.Errorf("e_phnum 0xffff: err %v", err)
	}
}

func TestHugeSectionSizes(t *testing.T) {
	b := fixtureBytes(t)
	orig, err := readBytes(b, Options{})
	if err != nil {
		t.Fatal(err)
	}

	// .text claiming 1 TiB: beyond the file, skipped, the rest still read.
	big := slices.Clone(b)
	binary.LittleEndian.PutUint64(sectionHeaderBytes(t, big, ".text")[32:], 1<<40)
	id, err := hostile(t, "huge .text", big, Options{Needles: []string{"needle-alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	if !id.Partial || id.SectionHash(".text") != "" || id.SectionHash(".rodata") != orig.SectionHash(".rodata") || len(id.Found) != 1 {
		t.Errorf("huge .text: %+v", id)
	}

	// A compressed section name table would be inflated whole by debug/elf.
	z := slices.Clone(b)
	shstrndx := binary.LittleEndian.Uint16(z[62:])
	shoff := binary.LittleEndian.Uint64(z[40:])
	flags := z[shoff+uint64(shstrndx)*64+8:]
	binary.LittleEndian.PutUint64(flags, binary.LittleEndian.Uint64(flags)|uint64(elf.SHF_COMPRESSED))
	if _, err := hostile(t, "compressed shstrtab", z, Options{}); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("compressed shstrtab: err %v", err)
	}

	huge := slices.Clone(b)
	binary.LittleEndian.PutUint64(huge[shoff+uint64(shstrndx)*64+32:], 1<<30)
	if _, err := hostile(t, "huge shstrtab", huge, Options{}); err == nil || !strings.Contains(err.Error(), "elf section name table is 1073741824 bytes, limit 1048576") {
		t.Errorf("huge shstrtab: err %v", err)
	}
}

// sparseFile is a file of size bytes: b, then zeros. It counts the bytes
// read and fails the test on a read at or past size.
type sparseFile struct {
	tb   testing.TB
	b    []byte
	size int64
	n    int64
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.size {
		s.tb.Errorf("read of %d bytes at %d past the %d-byte file", len(p), off, s.size)
		return 0, io.EOF
	}
	s.n += int64(len(p))
	clear(p)
	if off < int64(len(s.b)) {
		copy(p, s.b[off:])
	}
	return len(p), nil
}

func TestMaxBytes(t *testing.T) {
	b := fixtureBytes(t)
	const maxBytes = 1 << 20

	// .rodata claims 64 GiB of a 128 GiB file: the file size allows it,
	// MaxBytes does not.
	big := slices.Clone(b)
	binary.LittleEndian.PutUint64(sectionHeaderBytes(t, big, ".rodata")[32:], 64<<30)
	f := &sparseFile{tb: t, b: big, size: 128 << 30}
	start := time.Now()
	id, err := Read(f, f.size, Options{MaxBytes: maxBytes, Needles: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !id.Partial || id.SectionHash(".rodata") != "" || id.SectionHash(".text") == "" {
		t.Errorf("64 GiB .rodata: %+v", id)
	}
	if f.n > maxBytes+int64(len(b)) {
		t.Errorf("read %d bytes, MaxBytes %d, headers at most %d", f.n, maxBytes, len(b))
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v", d)
	}

	// Every read stays below the size given, whatever follows in r.
	f = &sparseFile{tb: t, b: append(slices.Clone(b), bytes.Repeat([]byte{0xff}, 4096)...), size: int64(len(b))}
	if _, err := Read(f, f.size, Options{}); err != nil {
		t.Fatal(err)
	}

	// A tiny budget: the sections are skipped, not half read.
	id, err = readBytes(b, Options{MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !id.Partial || len(id.Code) != 0 {
		t.Errorf("MaxBytes 100: %+v", id)
	}
}

func FuzzRead(f *testing.F) {
	if _, err := exec.LookPath("gcc"); err == nil || testenv.UnderCI() {
		b := fixtureBytes(f)
		f.Add(b[:4096])
		f.Add(b)
		f.Add(dropSectionHeaders(b))
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("\x7fELF\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, chunk := range []int{7, defaultChunk} {
			id, err := read(bytes.NewReader(b), int64(len(b)), Options{MaxBytes: 1 << 20, Needles: []string{"GCC", "needle-alpha-0123456789"}}, chunk)
			if errors.Is(err, errPanic) {
				t.Fatal(err)
			}
			if err != nil && (id.GoModule != "" || id.Code != nil || id.Found != nil || id.Needed != nil) {
				t.Fatalf("an error with a result: %v %+v", err, id)
			}
		}
	})
}
