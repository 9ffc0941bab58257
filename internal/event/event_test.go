// SPDX-License-Identifier: Apache-2.0

package event

import (
	"encoding/binary"
	"strings"
	"testing"
)

// recordBuilder writes a kernel record the way bpf/mitmexec.bpf.c does.
type recordBuilder struct{ b []byte }

func newRecord() *recordBuilder { return &recordBuilder{b: make([]byte, RecordSize)} }

func (r *recordBuilder) u16(off int, v uint16) *recordBuilder {
	binary.LittleEndian.PutUint16(r.b[off:], v)
	return r
}
func (r *recordBuilder) u32(off int, v uint32) *recordBuilder {
	binary.LittleEndian.PutUint32(r.b[off:], v)
	return r
}
func (r *recordBuilder) u64(off int, v uint64) *recordBuilder {
	binary.LittleEndian.PutUint64(r.b[off:], v)
	return r
}

// str writes s NUL-terminated and its length (NUL included) at lenOff.
func (r *recordBuilder) str(off, lenOff int, s string) *recordBuilder {
	copy(r.b[off:], s+"\x00")
	return r.u16(lenOff, uint16(len(s)+1))
}

// path writes components leaf first, as the kernel's walk does.
func (r *recordBuilder) path(off, lenOff int, leafFirst ...string) *recordBuilder {
	s := strings.Join(leafFirst, "\x00") + "\x00"
	copy(r.b[off:], s)
	return r.u16(lenOff, uint16(len(s)))
}

func sampleRecord() *recordBuilder {
	r := newRecord()
	r.u64(offKtimeBootNs, 5e9).u64(offStartBoottimeNs, 4e9).u64(offIno, 4242).u64(offCtimeNs, 77).u32(offDev, 0x800001)
	r.u64(offSize, 1000).u32(offNlink, 1).u32(offTgid, 100).u32(offTid, 100).u32(offVpid, 1).u32(offPpid, 99)
	r.u32(offUID, 1000).u32(offEUID, 0).u32(offReasons, uint32(ReasonUnknown)).u32(offFlags, uint32(FlagScript|FlagArgsTruncated))
	copy(r.b[offComm:], "mitmdump\x00")
	r.str(offName, offNameLen, "python3.11").str(offFilename, offFilenameLen, "/usr/bin/mitmdump").str(offInterp, offInterpLen, "/usr/bin/python3")
	r.path(offExePath, offExePathLen, "python3.11", "bin", "usr")
	r.path(offCwd, offCwdLen, "root")
	r.path(offCgroup, offCgroupLen, "session-1.scope", "user.slice")
	args := "/usr/bin/python3\x00/usr/bin/mitmdump\x00--version\x00"
	copy(r.b[offArgs:], args)
	r.u32(offArgsLen, uint32(len(args))).u32(offArgsTotal, uint32(len(args)))
	r.b[offAncestorsN] = 2
	binary.LittleEndian.PutUint32(r.b[offAncestors:], 99)
	copy(r.b[offAncestors+16:], "bash\x00")
	binary.LittleEndian.PutUint32(r.b[offAncestors+ancestorSize:], 1)
	copy(r.b[offAncestors+ancestorSize+16:], "systemd\x00")
	return r
}

func TestDecode(t *testing.T) {
	// GIVEN a record as the kernel writes it for a shebang script
	raw := sampleRecord().b
	// WHEN it is decoded
	e, err := Decode(raw)
	// THEN every field comes back
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"pid": {e.PID, uint32(100)}, "vpid": {e.VPID, uint32(1)}, "ppid": {e.PPID, uint32(99)},
		"name": {e.Name, "python3.11"}, "filename": {e.Filename, "/usr/bin/mitmdump"},
		"interp": {e.Interpreter, "/usr/bin/python3"}, "exe": {e.ExePath, "/usr/bin/python3.11"},
		"cwd": {e.Cwd, "/root"}, "cgroup": {e.Cgroup, "/user.slice/session-1.scope"}, "comm": {e.Comm, "mitmdump"},
		"file": {e.File, FileID{Dev: 0x800001, Ino: 4242, CtimeNs: 77}}, "uid": {e.UID, uint32(1000)},
		"args":      {strings.Join(e.Args, "|"), "/usr/bin/python3|/usr/bin/mitmdump|--version"},
		"ancestors": {len(e.Ancestors), 2}, "ancestor0": {e.Ancestors[0].Comm, "bash"}, "ancestor1": {e.Ancestors[1].PID, uint32(1)},
		"script": {e.Has(FlagScript), true}, "truncated": {e.Has(FlagArgsTruncated), true}, "deleted": {e.Deleted(), false},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: got %v, want %v", name, c[0], c[1])
		}
	}
}

func TestDecodeRootPaths(t *testing.T) {
	// GIVEN a process in the root cgroup, working in /, running a memfd
	r := newRecord()
	r.path(offCwd, offCwdLen, "/")
	r.path(offExePath, offExePathLen, "memfd:payload (deleted)")
	e, err := Decode(r.b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Cwd != "/" || e.Cgroup != "" || e.ExePath != "/memfd:payload (deleted)" || !e.Deleted() {
		t.Errorf("cwd %q cgroup %q exe %q deleted %v", e.Cwd, e.Cgroup, e.ExePath, e.Deleted())
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"empty":             {nil, "exec record is 0 bytes, want 7640"},
		"short":             {make([]byte, 100), "exec record is 100 bytes, want 7640"},
		"long":              {make([]byte, RecordSize+8), "exec record is 7648 bytes, want 7640"},
		"args_len":          {newRecord().u32(offArgsLen, ArgsLen+1).b, "exec record args_len is 4097, limit 4096"},
		"name_len":          {newRecord().u16(offNameLen, NameLen+1).b, "exec record name length is 65, limit 64"},
		"filename_len":      {newRecord().u16(offFilenameLen, 9999).b, "exec record filename length is 9999, limit 256"},
		"exe_path_len":      {newRecord().u16(offExePathLen, PathBufLen+1).b, "exec record exe_path length is 769, limit 768"},
		"ancestors":         {func() []byte { r := newRecord(); r.b[offAncestorsN] = 9; return r.b }(), "exec record ancestors_n is 9, limit 8"},
		"comm unterminated": {func() []byte { r := newRecord(); copy(r.b[offComm:], strings.Repeat("x", CommLen)); return r.b }(), "exec record comm is not NUL-terminated within 16 bytes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(c.raw)
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestDevEncoding(t *testing.T) {
	// stat(2) of a file on /dev/vda (254:0) and on a minor above 255
	for _, kdev := range []uint32{254 << 20, 8<<20 | 300, 0} {
		if got := KernelDev(UserDev(kdev)); got != kdev {
			t.Errorf("round trip of %#x gives %#x", kdev, got)
		}
	}
	if got := KernelDev(0xfe00); got != 254<<20 {
		t.Errorf("KernelDev(0xfe00) = %#x, want %#x", got, 254<<20)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleRecord().b)
	f.Add(newRecord().b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Half the inputs are fitted to the record size so that the
		// fields' own checks are exercised, not only the size check.
		if len(raw) > 0 && raw[0]&1 == 1 {
			fitted := make([]byte, RecordSize)
			copy(fitted, raw)
			raw = fitted
		}
		// Any input: an Exec or an error, never a panic.
		if _, err := Decode(raw); err == nil && len(raw) != RecordSize {
			t.Fatalf("decoded a record of %d bytes", len(raw))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	raw := sampleRecord().b
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	in := Exec{
		BootTimeNs: 9, File: FileID{Dev: 3, Ino: 4, CtimeNs: 5}, Nlink: 1, PID: 10, VPID: 1, PPID: 2, EUID: 3,
		Name: "ettercap", Filename: "/usr/bin/ettercap", ExePath: "/usr/bin/ettercap", Cwd: "/", Cgroup: "/system.slice/x.service",
		Args: []string{"ettercap", "--version"}, Ancestors: []Ancestor{{PID: 2, Comm: "bash"}}, Comm: "ettercap",
	}
	out, err := Decode(Encode(&in))
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.ExePath != in.ExePath || out.Cwd != in.Cwd || out.Cgroup != in.Cgroup ||
		strings.Join(out.Args, " ") != "ettercap --version" || out.File != in.File || out.Ancestors[0].Comm != "bash" || out.Comm != in.Comm {
		t.Errorf("round trip changed the exec:\n in %+v\nout %+v", in, out)
	}
}

// An argv longer than the capture keeps its start and its end: a program
// named after a padded option is still in the record.
func TestDecodeElidedArgs(t *testing.T) {
	// GIVEN python3 -X <pad> /usr/bin/mitmweb --version, too long for one capture
	pad := strings.Repeat("p", 5000)
	in := Exec{Flags: FlagArgsTruncated | FlagArgsElided,
		Args:     []string{"/usr/bin/python3", "-X", pad[:2000]},
		ArgsTail: []string{pad[:1000], "/usr/bin/mitmweb", "--version"}}
	// WHEN the record is decoded
	e, err := Decode(Encode(&in))
	if err != nil {
		t.Fatal(err)
	}
	// THEN both ends are there, and the cut arguments are marked by position
	if len(e.Args) != 3 || e.Args[1] != "-X" || e.Args[2] != pad[:2000] {
		t.Errorf("head args = %q", e.Args)
	}
	if len(e.ArgsTail) != 3 || e.ArgsTail[1] != "/usr/bin/mitmweb" || e.ArgsTail[2] != "--version" {
		t.Errorf("tail args = %q", e.ArgsTail)
	}
	// AND a head length beyond args_len is an error, not a bad slice
	b := Encode(&in)
	le.PutUint32(b[offArgsHeadLen:], le.Uint32(b[offArgsLen:])+1)
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "args_head_len") {
		t.Errorf("bad head length: err = %v", err)
	}
}
