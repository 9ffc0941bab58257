// SPDX-License-Identifier: Apache-2.0

package elfid

import (
	"bytes"
	"debug/elf"
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
