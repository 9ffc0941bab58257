// SPDX-License-Identifier: Apache-2.0

// Package elfid reads the structural identity of an ELF executable: the
// hashes of its code and constant sections, its DT_NEEDED libraries, the Go
// module it was built from and which known byte strings its read-only data
// holds. None of these change when the file is renamed, has bytes appended,
// gets extra non-loaded sections or is stripped, so a modified copy of a
// known tool is still recognised.
//
// The file is hostile (whoever can write it chose every byte): every offset,
// size and count in it is checked against the file size and against fixed
// limits before it is used, and the work done is bounded by Options.
package elfid

import (
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrNotELF means the file does not start with the ELF magic.
var ErrNotELF = errors.New("not an elf file")

// errPanic marks a panic recovered inside the parsers: a bug (ours or the
// standard library's) that a hostile file reached, turned into an error.
var errPanic = errors.New("elf parser panicked")

const (
	// DefaultMaxBytes bounds the section bytes read when Options.MaxBytes
	// is not positive.
	DefaultMaxBytes = 64 << 20

	// maxSections bounds the section header count. Linked executables and
	// shared objects have a few dozen sections; only relocatable objects
	// built with -ffunction-sections reach thousands, and those are not
	// exec'd.
	maxSections = 4096
	// maxPhdrBytes is the kernel's own bound: load_elf_phdrs refuses a
	// program header table larger than 64 KiB, so no exec'able file has one.
	maxPhdrBytes = 64 << 10
	// maxShstrtab bounds the section name table, which debug/elf reads
	// whole (and would decompress, were it SHF_COMPRESSED).
	maxShstrtab = 1 << 20
	// maxHeaderBytes bounds what debug/elf reads to parse the headers; the
	// limits above keep a valid file far below it.
	maxHeaderBytes = 8 << 20
	// maxDynamic bounds the bytes of PT_DYNAMIC read: a real one has a few
	// dozen 16-byte entries.
	maxDynamic = 64 << 10
	// maxNeeded bounds the DT_NEEDED entries kept.
	maxNeeded = 256
	// maxLibName bounds one DT_NEEDED name; ld.so resolves it as a path,
	// and PATH_MAX is 4096.
	maxLibName = 4096
	// maxBuildInfoBytes bounds what debug/buildinfo reads beyond the
	// headers: the Go linker writes the build info blob at the start of the
	// data segment, and the blob is a few KiB.
	maxBuildInfoBytes = 2 << 20
	// minHashed is the smallest section hashed: tiny sections are equal in
	// unrelated programs.
	minHashed = 64
	// defaultChunk is the read buffer for hashing and searching.
	defaultChunk = 64 << 10
)

// Options bound the work of Read.
type Options struct {
	// MaxBytes is the total of section bytes Read may read from r beyond
	// the headers; sections that would exceed it are skipped and
	// Identity.Partial is set. Zero or less means DefaultMaxBytes.
	MaxBytes int64
	// Needles are byte strings searched for in the read-only data
	// sections: SHF_ALLOC PROGBITS sections that are neither writable nor
	// executable (.rodata and its kin). An empty needle is never found.
	Needles []string
	// SkipGoSections stops at the build info of a Go build: its main
	// module names the build, and hashing a Go binary's sections (tens of
	// MiB) is most of the cost of a first sight on a build machine, where
	// every test binary is new.
	SkipGoSections bool
	// HashSegments hashes every loadable segment (PT_LOAD) as well, for the
	// installed builds whose stripped copies must still match. Without it
	// segments are hashed, and searched for needles, only where the file
	// has no section to hash: section headers are not needed to run a
	// program, and a copy without them keeps its segments.
	HashSegments bool
}

// Section is one hashed section.
type Section struct {
	Name   string
	Size   uint64 // bytes in the file
	SHA256 string // hex, of the section's bytes in the file
}

// Identity is what Read found.
type Identity struct {
	// GoModule is the main module path from the Go build info, or the main
	// package path of a GOPATH-mode build; "" when not a Go binary.
	GoModule string
	// Needed are the DT_NEEDED libraries, in order, without duplicates.
	Needed []string
	// Code are the hashed sections: .text and .rodata, when present and at
	// least 64 bytes.
	Code []Section
	// Found are the Needles found, in the order of Options.Needles.
	Found []string
	// Partial is set when a bound (MaxBytes, a section beyond the end of
	// the file, a count limit) cut the reading short.
	Partial bool
}

// SectionHash returns the hash of the named section in id, "" when absent.
func (id Identity) SectionHash(name string) string {
	for _, s := range id.Code {
		if s.Name == name {
			return s.SHA256
		}
	}
	return ""
}

// Read returns the identity of the ELF file r (size bytes). ErrNotELF when
// it is not an ELF file. Read never reads r at or past size.
func Read(r io.ReaderAt, size int64, o Options) (Identity, error) {
	return read(r, size, o, defaultChunk)
}

// read is Read with the chunk size of the streaming reads as a parameter,
// so tests can place a needle across a chunk boundary.
func read(r io.ReaderAt, size int64, o Options, chunk int) (id Identity, err error) {
	// debug/elf and debug/buildinfo are hardened but not written for
	// hostile input; a panic in them must not take the collector down.
	defer func() {
		if p := recover(); p != nil {
			id, err = Identity{}, fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	if size < 0 {
		return Identity{}, fmt.Errorf("elf file size is %d, want at least 0", size)
	}
	if chunk <= 0 {
		chunk = defaultChunk
	}
	maxBytes := o.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}

	hdrs := &boundedReader{r: r, size: size, limit: maxHeaderBytes}
	h, err := readHeader(hdrs, size)
	if err != nil {
		return Identity{}, err
	}
	f, err := elf.NewFile(hdrs)
	if err != nil {
		if hdrs.exceeded {
			return Identity{}, fmt.Errorf("elf headers are more than %d bytes", int64(maxHeaderBytes))
		}
		return Identity{}, fmt.Errorf("elf headers: %w", err)
	}

	var partial bool
	id.Needed, partial = needed(f, h, &boundedReader{r: r, size: size, limit: maxDynamic + maxNeeded*maxLibName})
	id.Partial = id.Partial || partial

	id.GoModule, partial = goModule(f, r, size, hdrs.n)
	id.Partial = id.Partial || partial
	if o.SkipGoSections && id.GoModule != "" {
		return id, nil
	}

	s := scanner{
		r:     &boundedReader{r: r, size: size, limit: maxBytes},
		size:  size,
		chunk: chunk,
		m:     newMatcher(o.Needles),
	}
	if err := s.sections(f, &id); err != nil {
		return Identity{}, err
	}
	if o.HashSegments || len(id.Code) == 0 {
		if err := s.segments(f, &id, len(id.Code) == 0); err != nil {
			return Identity{}, err
		}
	}
	for i, n := range o.Needles {
		if s.m.found[i] && !contains(id.Found, n) {
			id.Found = append(id.Found, n)
		}
	}
	return id, nil
}

// boundedReader is the only way the parsers reach the file: it refuses
// reads at or past size (the caller's word on where the file ends: bytes
// past it may belong to a file that changed since) and counts every byte
// returned against limit.
type boundedReader struct {
	r        io.ReaderAt
	size     int64
	limit    int64
	n        int64
	exceeded bool
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("elf read offset is %d, want at least 0", off)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	var eof bool
	if int64(len(p)) > b.size-off {
		p, eof = p[:b.size-off], true
	}
	if int64(len(p)) > b.limit-b.n {
		b.exceeded = true
		return 0, fmt.Errorf("elf read of %d bytes at offset %d: %d of %d bytes left", len(p), off, b.limit-b.n, b.limit)
	}
	n, err := b.r.ReadAt(p, off)
	b.n += int64(n)
	if err == nil && eof {
		err = io.EOF
	}
	return n, err
}

func (b *boundedReader) remaining() int64 { return b.limit - b.n }

// goModule reads the Go build info. It reports whether a bound cut the
// reading short. hdrBytes is what parsing the headers cost, which
// debug/buildinfo pays again as it parses them itself.
func goModule(f *elf.File, r io.ReaderAt, size, hdrBytes int64) (string, bool) {
	// The Go linker always writes .go.buildinfo; only without section
	// headers (sstrip) must buildinfo fall back to searching the data
	// segment. Without this, every C program's data segment would be
	// searched for a blob it cannot hold.
	if len(f.Sections) > 0 && f.Section(".go.buildinfo") == nil {
		return "", false
	}
	br := &boundedReader{r: r, size: size, limit: hdrBytes + maxBuildInfoBytes}
	bi, err := buildinfo.Read(br)
	if err != nil {
		return "", br.exceeded
	}
	if bi.Main.Path != "" {
		return bi.Main.Path, false
	}
	// A GOPATH-mode build (Debian's dh-golang builds bettercap so) records
	// no main module, only the main package's import path.
	if bi.Path != "" && bi.Path != "command-line-arguments" {
		return bi.Path, false
	}
	return "", false
}

// scanner streams section contents through a hash and the needle search.
type scanner struct {
	r     *boundedReader
	size  int64
	chunk int
	m     *matcher
	mask  []bool // bytes of the ELF header hashed as zero (segments only)
}

type job struct {
	sec    *elf.Section
	hash   bool
	search bool
}

func (s *scanner) sections(f *elf.File, id *Identity) error {
	var jobs []job
	hashed := map[string]bool{}
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_PROGBITS {
			continue
		}
		var j job
		j.sec = sec
		// A duplicate name is a hostile file's second opinion: the first
		// one is the section every tool (objdump, readelf) reports.
		if (sec.Name == ".text" || sec.Name == ".rodata") && !hashed[sec.Name] {
			hashed[sec.Name] = true
			j.hash = sec.FileSize >= minHashed
		}
		j.search = s.m.left > 0 && sec.Flags&elf.SHF_ALLOC != 0 && sec.Flags&(elf.SHF_WRITE|elf.SHF_EXECINSTR) == 0
		if j.hash || j.search {
			jobs = append(jobs, j)
		}
	}
	// The identity first: when MaxBytes cannot cover everything, the hashes
	// matter more than the other sections searched for needles.
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].hash && !jobs[b].hash })

	var buf []byte
	for _, j := range jobs {
		if !j.hash && s.m.left == 0 {
			continue
		}
		sec := j.sec
		if sec.Offset > uint64(s.size) || sec.FileSize > uint64(s.size)-sec.Offset {
			id.Partial = true // a truncated file, or a header lying about it
			continue
		}
		if sec.FileSize > uint64(s.r.remaining()) {
			id.Partial = true
			continue
		}
		if buf == nil {
			buf = make([]byte, s.m.overlap()+s.chunk)
		}
		sum, err := s.stream(buf, int64(sec.Offset), int64(sec.FileSize), j.search && s.m.left > 0)
		if err != nil {
			return fmt.Errorf("elf section %.64q (%d bytes at offset %d): %w", sec.Name, sec.FileSize, sec.Offset, err)
		}
		if j.hash {
			id.Code = append(id.Code, Section{Name: sec.Name, Size: sec.FileSize, SHA256: sum})
		}
	}
	return nil
}

func (s *scanner) stream(buf []byte, start, size int64, search bool) (string, error) {
	h := sha256.New()
	keep := 0
	ov := s.m.overlap()
	off, end := start, start+size
	for off < end {
		n := int(min(int64(s.chunk), end-off))
		m, err := s.r.ReadAt(buf[keep:keep+n], off)
		if m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if s.mask != nil && off < int64(len(s.mask)) {
			h.Write(masked(buf[keep:keep+n], off, s.mask))
		} else {
			h.Write(buf[keep : keep+n])
		}
		off += int64(n)
		w := buf[:keep+n]
		if search && s.m.left > 0 {
			s.m.search(w)
		}
		keep = min(ov, len(w))
		copy(buf, w[len(w)-keep:])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
