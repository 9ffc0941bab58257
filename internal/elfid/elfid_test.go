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
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// Each fixture program puts distinct strings in .rodata (the const array)
// and one in .data (the writable array), which must not be searched.
const progAlpha = `#include <stdio.h>
#include <string.h>
static const char usage[] =
	"Usage: fixture-alpha [-i interface] [-t target] host\n"
	"needle-alpha-0123456789 and straddle-me-across-the-chunk-boundary\n";
char writable[] = "needle-in-writable-data";
int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "-h") == 0) {
		fputs(usage, stderr);
		return 1;
	}
	writable[0] = (char)argc;
	printf("alpha %d %s\n", argc, writable);
	return 0;
}
`

const progBeta = `#include <stdio.h>
#include <stdlib.h>
static const char usage[] =
	"Usage: fixture-beta count\n"
	"a different program with different code and different constants\n";
int main(int argc, char **argv) {
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	long s = 0;
	for (long i = 0; i < n; i++)
		s += i * i;
	if (s == 42)
		fputs(usage, stderr);
	printf("beta %ld\n", s);
	return (int)(s & 1);
}
`

const progLibm = `#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	double x = argc > 1 ? atof(argv[1]) : 2.5;
	printf("%f %f\n", pow(x, x), cbrt(x));
	return 0;
}
`

// needTool returns the path of a build tool, skipping the test when it is
// missing, except under CI, where a skipped fixture would hide a regression.
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.SkipOrFail(tb, "%s not found: %v", name, err)
	}
	return p
}

func run(tb testing.TB, dir string, env []string, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// buildC compiles src into dir/name and returns its path.
func buildC(tb testing.TB, dir, name, src string, ldflags ...string) string {
	tb.Helper()
	gcc := needTool(tb, "gcc")
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, name)
	run(tb, dir, nil, gcc, append([]string{"-O1", "-o", out, c}, ldflags...)...)
	return out
}

func readPath(tb testing.TB, path string, o Options) Identity {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	id, err := Read(f, st.Size(), o)
	if err != nil {
		tb.Fatalf("Read(%s): %v", path, err)
	}
	return id
}

func readBytes(b []byte, o Options) (Identity, error) {
	return Read(bytes.NewReader(b), int64(len(b)), o)
}

func copyFile(tb testing.TB, from, to string, extra []byte) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, append(b, extra...), 0o755); err != nil {
		tb.Fatal(err)
	}
}

func TestCodeHashesSurviveModification(t *testing.T) {
	dir := t.TempDir()
	orig := buildC(t, dir, "alpha", progAlpha)
	objcopy, strip := needTool(t, "objcopy"), needTool(t, "strip")

	want := readPath(t, orig, Options{})
	for _, name := range []string{".text", ".rodata"} {
		if want.SectionHash(name) == "" {
			t.Fatalf("original has no %s hash: %+v", name, want)
		}
	}
	if want.Partial || want.GoModule != "" {
		t.Fatalf("original: %+v", want)
	}

	appended := filepath.Join(dir, "appended")
	copyFile(t, orig, appended, []byte{0})

	padded := filepath.Join(dir, "padded")
	pad := filepath.Join(dir, "pad.bin")
	if err := os.WriteFile(pad, bytes.Repeat([]byte("padding!"), 512), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, nil, objcopy, "--add-section", ".pad="+pad, "--set-section-flags", ".pad=noload,readonly", orig, padded)

	stripped := filepath.Join(dir, "stripped")
	run(t, dir, nil, strip, "-o", stripped, orig)

	for _, p := range []string{appended, padded, stripped} {
		got := readPath(t, p, Options{})
		for _, name := range []string{".text", ".rodata"} {
			if g, w := got.SectionHash(name), want.SectionHash(name); g != w {
				t.Errorf("%s: %s hash %q, original %q", filepath.Base(p), name, g, w)
			}
		}
	}
	if a, b := mustFileSize(t, orig), mustFileSize(t, stripped); b >= a {
		t.Errorf("strip did not shrink the fixture (%d -> %d bytes): the test proves nothing", a, b)
	}

	other := readPath(t, buildC(t, dir, "beta", progBeta), Options{})
	for _, name := range []string{".text", ".rodata"} {
		if g := other.SectionHash(name); g == "" || g == want.SectionHash(name) {
			t.Errorf("a different program: %s hash %q, alpha's %q", name, g, want.SectionHash(name))
		}
	}
}

func mustFileSize(tb testing.TB, p string) int64 {
	tb.Helper()
	st, err := os.Stat(p)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

func goTool(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("no go command to build the fixture: %v", err)
	}
	return p
}

// fixtureModule is the module path of the Go fixture; its main prints a
// string constant, which the Go linker puts in .rodata.
const fixtureModule = "example.com/fixture/cmd"

const goNeedle = "go-fixture-needle-in-rodata"

// buildGo builds the Go fixture for goarch into dir/fixture-goarch.
func buildGo(tb testing.TB, dir, goarch string) string {
	tb.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		tb.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module " + fixtureModule + "\n\ngo 1.21\n",
		// println, not fmt: the cross-builds compile only the runtime.
		"main.go": "package main\n\nfunc main() { println(\"" + goNeedle + "\") }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fixture-"+goarch)
	run(tb, src, []string{"GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOOS=linux", "GOARCH=" + goarch},
		goTool(tb), "build", "-o", bin, ".")
	return bin
}

func TestGoModule(t *testing.T) {
	dir := t.TempDir()
	const module = fixtureModule
	bin := buildGo(t, dir, runtime.GOARCH)

	id := readPath(t, bin, Options{})
	if id.GoModule != module {
		t.Errorf("GoModule %q, want %q", id.GoModule, module)
	}
	if id.SectionHash(".text") == "" || id.SectionHash(".rodata") == "" {
		t.Errorf("Go binary without code hashes: %+v", id)
	}

	// SkipGoSections: the module, nothing hashed, bounded to the headers
	// and the build info
	counted := &countingReaderAt{r: bytes.NewReader(mustRead(t, bin))}
	quick, err := Read(counted, int64(len(mustRead(t, bin))), Options{SkipGoSections: true})
	if err != nil || quick.GoModule != module || len(quick.Code) != 0 {
		t.Errorf("SkipGoSections: %+v, %v; want the module and no sections", quick, err)
	}
	if counted.n > 4<<20 {
		t.Errorf("SkipGoSections read %d bytes", counted.n)
	}

	appended := filepath.Join(dir, "appended")
	copyFile(t, bin, appended, []byte("trailing bytes after the last section"))
	got := readPath(t, appended, Options{})
	if got.GoModule != module || got.SectionHash(".text") != id.SectionHash(".text") {
		t.Errorf("appended copy: %+v, original %+v", got, id)
	}

	// Without section headers (what sstrip leaves) buildinfo falls back to
	// the data segment, where the Go linker puts the blob first.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	noSH := dropSectionHeaders(b)
	got, err = readBytes(noSH, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GoModule != module || got.SectionHash(".text") != "" || len(got.Code) == 0 {
		t.Errorf("without section headers: GoModule %q, Code %v; want %q and the loadable segments' hashes only", got.GoModule, got.Code, module)
	}
	// the segments are what runs: the original's, hashed with HashSegments,
	// are the stripped copy's
	whole, err := readBytes(b, Options{HashSegments: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range got.Code {
		if whole.SectionHash(seg.Name) != seg.SHA256 {
			t.Errorf("segment %s of the stripped copy: %s, the original's %s", seg.Name, seg.SHA256, whole.SectionHash(seg.Name))
		}
	}
}

// TestClassesAndByteOrders reads Go fixtures cross-built for a 32-bit
// little-endian and a 64-bit big-endian target: the header checks decode
// each class and byte order (with the native build, three of the four
// combinations; 32-bit big-endian only as a fuzz seed).
func TestClassesAndByteOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the Go runtime")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		goarch string
		class  elf.Class
		order  elf.Data
	}{
		{"386", elf.ELFCLASS32, elf.ELFDATA2LSB},
		{"s390x", elf.ELFCLASS64, elf.ELFDATA2MSB},
	} {
		bin := buildGo(t, dir, c.goarch)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if elf.Class(b[elf.EI_CLASS]) != c.class || elf.Data(b[elf.EI_DATA]) != c.order {
			t.Fatalf("%s: class %d data %d", c.goarch, b[elf.EI_CLASS], b[elf.EI_DATA])
		}
		id := readPath(t, bin, Options{Needles: []string{goNeedle}})
		if id.GoModule != fixtureModule || id.SectionHash(".text") == "" || id.SectionHash(".rodata") == "" ||
			!slices.Equal(id.Found, []string{goNeedle}) || id.Partial {
			t.Errorf("%s: %+v", c.goarch, id)
		}
		// Truncations and byte flips in every class and byte order.
		for n := 0; n < 4096 && n < len(b); n += 13 {
			hostile(t, c.goarch+" truncated", b[:n], Options{Needles: []string{goNeedle}})
		}
		rnd := rand.New(rand.NewSource(3))
		for i := 0; i < 300; i++ {
			m := slices.Clone(b[:min(len(b), 64<<10)])
			for k := 0; k < 4; k++ {
				m[rnd.Intn(min(len(m), 512))] = byte(rnd.Intn(256))
			}
			hostile(t, c.goarch+" flipped", m, Options{MaxBytes: 1 << 20, Needles: []string{goNeedle}})
		}
	}
}

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
func sectionIndex(tb testing.TB, b []byte, section, s string) int {
	tb.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	sec := f.Section(section)
	if sec == nil {
		tb.Fatalf("no %s section", section)
	}
	data, err := sec.Data()
	if err != nil {
		tb.Fatal(err)
	}
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		tb.Fatalf("%q is not in %s", s, section)
	}
	return i
}

func TestNeedles(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "alpha", progAlpha)
	needles := []string{
		"not-in-the-file",
		"needle-alpha-0123456789",
		"needle-in-writable-data", // in .data: writable, not searched
		"",                        // never found
		"Usage: fixture-alpha",
		"needle-alpha-0123456789", // a duplicate is reported once
	}
	id := readPath(t, bin, Options{Needles: needles})
	want := []string{"needle-alpha-0123456789", "Usage: fixture-alpha"}
	if !slices.Equal(id.Found, want) {
		t.Errorf("Found %q, want %q", id.Found, want)
	}

	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	const straddler = "straddle-me-across-the-chunk-boundary"
	at := sectionIndex(t, b, ".rodata", straddler)
	// Every chunk size that ends a chunk inside the needle, down to one
	// byte, where every needle straddles.
	sizes := []int{1, 2, 3}
	for c := at + 1; c < at+len(straddler); c++ {
		sizes = append(sizes, c)
	}
	for _, c := range sizes {
		id, err := read(bytes.NewReader(b), int64(len(b)), Options{Needles: []string{straddler, "absent-string"}}, c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(id.Found, []string{straddler}) {
			t.Errorf("chunk %d (needle at %d..%d of .rodata): Found %q", c, at, at+len(straddler), id.Found)
		}
		if id.SectionHash(".rodata") != readPath(t, bin, Options{}).SectionHash(".rodata") {
			t.Errorf("chunk %d changes the .rodata hash", c)
		}
	}
}

func TestNotELF(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x7fEL"), []byte("#!/bin/sh\necho hi\n"), []byte("MZ\x90\x00")} {
		if _, err := readBytes(b, Options{}); !errors.Is(err, ErrNotELF) {
			t.Errorf("%q: err %v, want ErrNotELF", b, err)
		}
	}
	if _, err := Read(bytes.NewReader(nil), -1, Options{}); err == nil {
		t.Error("negative size accepted")
	}
}

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

func BenchmarkRead(b *testing.B) {
	const path = "/usr/bin/bettercap"
	f, err := os.Open(path)
	if err != nil {
		b.Skipf("%s: %v", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Needles: []string{"bettercap", "not-in-bettercap-at-all"}}
	for b.Loop() {
		id, err := Read(f, st.Size(), o)
		if err != nil || id.Partial {
			b.Fatalf("%v %+v", err, id)
		}
	}
}

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

// TestStreamFindsWhatContainsFinds checks the streaming search against
// bytes.Contains on the whole data, for needles of every length class and
// every chunk size small enough to cut them.
func TestStreamFindsWhatContainsFinds(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for round := 0; round < 1000; round++ {
		data := make([]byte, 50+rnd.Intn(300))
		for i := range data {
			data[i] = "abcd"[rnd.Intn(4)] // a small alphabet makes partial matches common
		}
		var needles []string
		for k := 0; k < 1+rnd.Intn(8); k++ {
			n := 1 + rnd.Intn(24) // up to three blocks: steps of 1 to 17
			if rnd.Intn(2) == 0 {
				at := rnd.Intn(len(data) - n)
				needles = append(needles, string(data[at:at+n]))
			} else {
				b := make([]byte, n)
				for i := range b {
					b[i] = "abcde"[rnd.Intn(5)]
				}
				needles = append(needles, string(b))
			}
		}
		for _, chunk := range []int{1, 2, 3, 5, 8, 13, 64, 1 << 16} {
			s := scanner{r: &boundedReader{r: bytes.NewReader(data), size: int64(len(data)), limit: 1 << 20}, size: int64(len(data)), chunk: chunk, m: newMatcher(needles)}
			buf := make([]byte, s.m.overlap()+chunk)
			if _, err := s.stream(buf, 0, int64(len(data)), true); err != nil {
				t.Fatal(err)
			}
			for i, n := range needles {
				if want := bytes.Contains(data, []byte(n)); s.m.found[i] != want {
					t.Fatalf("chunk %d: needle %q found %v, want %v in %q", chunk, n, s.m.found[i], want, data)
				}
			}
		}
	}
}

type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
