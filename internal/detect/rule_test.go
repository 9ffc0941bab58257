// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
)

const (
	bettercapSum = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
	mitmdumpSum  = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
	trueSum      = "7777777777777777777777777777777777777777777777777777777777777777"
	pythonSum    = "5555555555555555555555555555555555555555555555555555555555555555"
)

var (
	// encoded like the catalog's: the test binary must not carry it either
	arpspoofSignature = signature("55736167653a2061727073706f6f66205b2d6920696e746572666163655d", "636f756c646e27742061727020666f722073706f6f6620686f7374202573")
	sslsplitELF       = elfid.Identity{Needed: []string{"libc.so.6"}, Code: []elfid.Section{
		{Name: ".text", SHA256: strings.Repeat("1", 64)}, {Name: ".rodata", SHA256: strings.Repeat("2", 64)}}}
	bettercapID = event.FileID{Dev: 1, Ino: 100, CtimeNs: 1}
	arpspoofID  = event.FileID{Dev: 1, Ino: 200, CtimeNs: 1}
	ettercapFP  = event.Fingerprint{Head: [event.HeadLen]byte{0x7f, 'E', 'L', 'F', 1}}
)

func newTestRule(t *testing.T, files *fakeFiles) *Rule {
	t.Helper()
	cat, err := NewCatalog(DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	r := NewRule(cat, files, &fakeKernel{verdicts: map[event.FileID]event.Verdict{}}, nil)
	r.AddInstalled(cat.ByFileName("bettercap"), bettercapID, bettercapSum, nil, nil)
	r.AddInstalled(cat.ByFileName("arpspoof"), arpspoofID, "", nil, nil)
	r.AddInstalled(cat.ByFileName("mitmdump"), event.FileID{Dev: 1, Ino: 300, CtimeNs: 1}, mitmdumpSum, nil, nil)
	fp := ettercapFP
	r.AddInstalled(cat.ByFileName("ettercap"), event.FileID{Dev: 1, Ino: 400, CtimeNs: 1}, "", &fp, nil)
	r.AddInstalled(cat.ByFileName("sslsplit"), event.FileID{Dev: 1, Ino: 500, CtimeNs: 1}, "", nil, &sslsplitELF)
	r.AddInterpreter(Python, event.FileID{Dev: 1, Ino: 50, CtimeNs: 1}, pythonSum, nil, nil)
	r.AddInterpreter(Loader, event.FileID{Dev: 1, Ino: 56}, "", nil, nil) // the host's loader
	return r
}

func elf(name, filename string, id event.FileID, args ...string) event.Exec {
	return event.Exec{Name: name, Filename: filename, File: id, ExePath: "/x/" + name, Args: args, Nlink: 1}
}

func withPID(e event.Exec, pid uint32) event.Exec {
	e.PID = pid
	return e
}

func withFlags(e event.Exec, f event.Flag) event.Exec {
	e.Flags |= f
	return e
}

func TestRule(t *testing.T) {
	files := &fakeFiles{
		execSums: map[event.FileID]string{
			{Dev: 1, Ino: 900, CtimeNs: 5}: bettercapSum, // a copy of bettercap
			{Dev: 1, Ino: 901, CtimeNs: 5}: trueSum,
			{Dev: 1, Ino: 902, CtimeNs: 5}: pythonSum, // a copy of python
		},
		execELF: map[event.FileID]elfid.Identity{
			// sslsplit with a byte appended: its sections are the installed build's
			{Dev: 1, Ino: 910, CtimeNs: 5}: {Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("1", 64)}}},
			// a bettercap build the host never had
			{Dev: 1, Ino: 911, CtimeNs: 5}: {GoModule: "github.com/bettercap/bettercap"},
			// an unrelated Go program and an unrelated C program
			{Dev: 1, Ino: 912, CtimeNs: 5}: {GoModule: "example.com/tool", Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("3", 64)}}},
			// a dsniff build known by its strings
			{Dev: 1, Ino: 913, CtimeNs: 5}: {Found: arpspoofSignature},
			// a Go program that carries a tool's strings (a scanner, this collector)
			{Dev: 1, Ino: 914, CtimeNs: 5}: {GoModule: "example.com/scanner", Found: arpspoofSignature},
			// half a signature
			{Dev: 1, Ino: 915, CtimeNs: 5}: {Found: arpspoofSignature[:1]},
		},
		programELF: map[string]elfid.Identity{
			"/tmp/proxy-svc": {Code: []elfid.Section{{Name: ".rodata", SHA256: strings.Repeat("2", 64)}}},
		},
		cmdlines: map[uint32][]string{
			78: {"/usr/bin/python3", "-c", "#" + strings.Repeat("p", 6000) + "\nfrom mitmproxy.tools.main import mitmdump; mitmdump()"},
			77: {"/usr/bin/python3", "-X", strings.Repeat("p", 9000), "-X", strings.Repeat("q", 9000), "/usr/bin/mitmweb", strings.Repeat("a", 9000)},
		},
		scripts: map[string]fakeScript{
			"/tmp/proxyhelper": {sum: mitmdumpSum},
			"/tmp/wrapper.py":  {sum: trueSum, body: "import sys\nfrom mitmproxy.tools.main import mitmweb\nmitmweb()\n"},
			"/tmp/lib.py":      {sum: trueSum, body: "import mitmproxy.io\nprint('mitmproxy.tools.main')\n"},
			"/tmp/plain.sh":    {sum: trueSum, body: "echo ettercap\n"},
			"/tmp/notes.sh":    {sum: trueSum, body: "#!/bin/sh\ndemo() { /usr/bin/python3 -c 'from mitmproxy.tools.main import mitmweb; mitmweb()'; }\necho ok\n"},
			"stdin of 4242":    {sum: mitmdumpSum},
		},
	}
	py := event.FileID{Dev: 1, Ino: 50, CtimeNs: 1}
	cases := []struct {
		name  string
		exec  event.Exec
		tool  string // "" for no detection
		match Match
	}{
		{"by name", elf("ettercap", "/usr/bin/ettercap", event.FileID{Dev: 1, Ino: 7}, "ettercap", "--version"), "ettercap", MatchExecutableName},
		{"prefixed name", elf("atk6-parasite6", "/usr/bin/atk6-parasite6", event.FileID{Dev: 1, Ino: 8}), "parasite6", MatchExecutableName},
		{"installed identity under its name", elf("bettercap", "/usr/bin/bettercap", bettercapID), "bettercap", MatchExecutableName},
		{"hard link: same inode, new ctime", func() event.Exec {
			e := elf("netcheck", "/tmp/netcheck", event.FileID{Dev: 1, Ino: 200, CtimeNs: 9})
			e.Nlink = 2
			return e
		}(), "arpspoof", MatchInode},
		{"inode number reused after an upgrade", elf("netcheck", "/tmp/netcheck", event.FileID{Dev: 1, Ino: 200, CtimeNs: 77}), "", ""},
		{"symlink: loaded file is the tool", elf("bettercap", "/tmp/bc-link", event.FileID{Dev: 1, Ino: 11}), "bettercap", MatchExecutableName},
		{"fd exec", elf("arpspoof", "/dev/fd/3", event.FileID{Dev: 1, Ino: 12}), "arpspoof", MatchExecutableName},
		{"renamed copy by hash", elf("backup-agent", "./backup-agent", event.FileID{Dev: 1, Ino: 900, CtimeNs: 5}), "bettercap", MatchContentHash},
		{"memfd copy gone: fingerprint", func() event.Exec {
			e := elf("memfd:payload", "/dev/fd/4", event.FileID{Dev: 9, Ino: 1})
			e.Nlink, e.Head = 0, ettercapFP.Head
			return e
		}(), "ettercap", MatchFingerprint},
		{"kernel fingerprint verdict", func() event.Exec {
			e := elf("x", "/tmp/x", event.FileID{Dev: 9, Ino: 2})
			e.Reasons, e.KernelToolID = event.ReasonFingerprint, 2 // bettercap
			return e
		}(), "bettercap", MatchFingerprint},
		{"argv0 spoofed", elf("bettercap", "/usr/bin/bettercap", bettercapID, "systemd-helper", "-version"), "bettercap", MatchExecutableName},
		{"shebang script", func() event.Exec {
			e := elf("python3.11", "/usr/bin/mitmdump", py, "/usr/bin/python3", "/usr/bin/mitmdump", "--version")
			e.Flags, e.Interpreter = event.FlagScript, "/usr/bin/python3"
			return e
		}(), "mitmdump", MatchScript},
		{"renamed script copy by hash", func() event.Exec {
			e := elf("python3.11", "/tmp/proxyhelper", py, "/usr/bin/python3", "/tmp/proxyhelper")
			e.Flags = event.FlagScript
			return e
		}(), "mitmdump", MatchContentHash},
		{"python script path", elf("python3.11", "/usr/bin/python3", py, "python3", "/usr/bin/mitmweb", "--version"), "mitmweb", MatchScript},
		{"python options before script", elf("python3.11", "/usr/bin/python3", py, "python3", "-I", "-W", "ignore", "-X", "dev", "/opt/Responder.py"), "responder", MatchScript},
		{"python -m", elf("python3.11", "/usr/bin/python3", py, "python3", "-m", "mitm6", "-i", "eth0"), "mitm6", MatchInterpreterArgs},
		{"python -m submodule", elf("python3.11", "/usr/bin/python3", py, "python3", "-m", "mitm6.mitm6"), "mitm6", MatchInterpreterArgs},
		{"python -Im cluster", elf("python3", "/usr/bin/python3", py, "python3", "-Im", "sslstrip"), "sslstrip", MatchInterpreterArgs},
		{"python -c import", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()"), "mitmdump", MatchInterpreterArgs},
		{"python -c import module", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "import mitmproxy.tools.main as m; m.mitmweb()"), "mitmweb", MatchInterpreterArgs},
		{"python -c runpy", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "import runpy; runpy.run_module('mitm6', run_name='__main__')"), "mitm6", MatchInterpreterArgs},
		{"python -c runpy.run_path", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "import runpy,sys; sys.argv=['x']; runpy.run_path('/usr/bin/mitmweb', run_name='__main__')"), "mitmweb", MatchInterpreterArgs},
		{"python -c exec(open())", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "exec(open('/opt/Responder/Responder.py').read())"), "responder", MatchInterpreterArgs},
		{"python < tool script", withPID(elf("python3.11", "/usr/bin/python3", py, "python3"), 4242), "mitmdump", MatchContentHash},
		{"python - < tool script", withPID(elf("python3.11", "/usr/bin/python3", py, "python3", "-u", "-", "--version"), 4242), "mitmdump", MatchContentHash},
		{"python on a terminal or a pipe", elf("python3.11", "/usr/bin/python3", py, "python3"), "", ""},
		{"python -c prints a tool path", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "print('/usr/bin/mitmweb')"), "", ""},
		{"python own wrapper script", elf("python3.11", "/usr/bin/python3", py, "python3", "/tmp/wrapper.py"), "mitmweb", MatchScript},
		{"pypy", elf("pypy3", "/usr/bin/pypy3", event.FileID{Dev: 1, Ino: 51}, "pypy3", "/x/ntlmrelayx.py"), "ntlmrelayx", MatchScript},
		{"sh script", elf("dash", "/bin/sh", event.FileID{Dev: 1, Ino: 52}, "sh", "-e", "/x/responder"), "responder", MatchScript},
		{"perl script", elf("perl5.36.0", "/usr/bin/perl", event.FileID{Dev: 1, Ino: 53}, "perl", "-w", "/x/sslstrip"), "sslstrip", MatchScript},
		{"ruby script", elf("ruby3.1", "/usr/bin/ruby", event.FileID{Dev: 1, Ino: 54}, "ruby", "-I", "lib", "/x/mitmf.py"), "mitmf", MatchScript},
		{"dynamic loader", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "--library-path", "/x", "/usr/bin/ettercap", "--version"), "ettercap", MatchInterpreterArgs},
		{"dynamic loader on a copy", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "/tmp/proxyhelper"), "mitmdump", MatchContentHash},
		{"ldd --verify", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "/lib64/ld-linux-x86-64.so.2", "--verify", "/usr/bin/ettercap"), "", ""},
		{"dynamic loader benign", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "/bin/ls"), "", ""},
		// ldd of a tool before the loader's verdict reached the kernel
		{"glibc loader listing (ldd)", withFlags(elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "/usr/bin/ettercap"), event.FlagLoaderLists), "", ""},
		// a file merely named like the loader may run what it is given, listing variable or not
		{"unknown file named like the loader, listing variable set", withFlags(elf("ld-linux-x86-64.so.2", "/tmp/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 58}, "ld.so", "/usr/bin/ettercap"), event.FlagLoaderLists), "ettercap", MatchInterpreterArgs},
		// musl's loader ignores LD_TRACE_LOADED_OBJECTS: it runs the tool
		{"musl loader with LD_TRACE_LOADED_OBJECTS", withFlags(elf("ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1", event.FileID{Dev: 1, Ino: 57}, "ld.so", "/usr/bin/ettercap"), event.FlagLoaderLists), "ettercap", MatchInterpreterArgs},
		{"musl loader --list", elf("ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1", event.FileID{Dev: 1, Ino: 57}, "ld.so", "--list", "/usr/bin/ettercap"), "", ""},
		{"renamed interpreter copy", elf("svc-helper", "/tmp/svc-helper", event.FileID{Dev: 1, Ino: 902, CtimeNs: 5}, "svc-helper", "/usr/bin/mitmdump"), "mitmdump", MatchScript},
		{"invoked by a tool's name", elf("busybox-like", "/opt/bin/ettercap", event.FileID{Dev: 1, Ino: 55}), "ettercap", MatchInvokedName},

		{"copy with a byte appended: installed build's section", elf("proxy-svc", "./proxy-svc", event.FileID{Dev: 1, Ino: 910, CtimeNs: 5}), "sslsplit", MatchStructure},
		{"Go build the host never had", elf("svc", "./svc", event.FileID{Dev: 1, Ino: 911, CtimeNs: 5}), "bettercap", MatchStructure},
		{"string signature", elf("net-probe", "./net-probe", event.FileID{Dev: 1, Ino: 913, CtimeNs: 5}), "arpspoof", MatchStructure},
		{"dynamic loader on a modified copy", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "/tmp/proxy-svc"), "sslsplit", MatchStructure},
		{"padded python option: the script after the gap", func() event.Exec {
			e := elf("python3.11", "/usr/bin/python3", py, "/usr/bin/python3", "-X", strings.Repeat("p", 2000))
			e.Flags |= event.FlagArgsTruncated | event.FlagArgsElided
			e.ArgsTail = []string{strings.Repeat("p", 1500), "/usr/bin/mitmweb", "--version"}
			return e
		}(), "mitmweb", MatchScript},
		{"padded loader option: the program after the gap", func() event.Exec {
			e := elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 56}, "ld.so", "--library-path", strings.Repeat("/x", 1000))
			e.Flags |= event.FlagArgsTruncated | event.FlagArgsElided
			e.ArgsTail = []string{strings.Repeat("/x", 700), "/usr/sbin/arpspoof", "-h"}
			return e
		}(), "arpspoof", MatchInterpreterArgs},
		{"script hidden in the gap: read from the live process", func() event.Exec {
			e := withPID(elf("python3.11", "/usr/bin/python3", py, "/usr/bin/python3", "-X", strings.Repeat("p", 2000)), 77)
			e.Flags |= event.FlagArgsTruncated | event.FlagArgsElided
			e.ArgsTail = []string{strings.Repeat("a", 2000)}
			return e
		}(), "mitmweb", MatchScript},
		{"python -c code cut by the capture: read whole from the live process", func() event.Exec {
			e := withPID(elf("python3.11", "/usr/bin/python3", py, "/usr/bin/python3", "-c", "#"+strings.Repeat("p", 3000)), 78)
			e.Flags |= event.FlagArgsTruncated | event.FlagArgsElided
			e.ArgsTail = []string{strings.Repeat("p", 2000)}
			return e
		}(), "mitmdump", MatchInterpreterArgs},
		{"shell script quoting python that imports a tool", elf("dash", "/bin/sh", event.FileID{Dev: 1, Ino: 52}, "sh", "/tmp/notes.sh"), "", ""},
		{"shebang shell script quoting python", func() event.Exec {
			e := elf("dash", "/tmp/notes.sh", event.FileID{Dev: 1, Ino: 52}, "/bin/sh", "/tmp/notes.sh")
			e.Flags = event.FlagScript
			return e
		}(), "", ""},
		{"Go program holding a tool's strings", elf("scanner", "./scanner", event.FileID{Dev: 1, Ino: 914, CtimeNs: 5}), "", ""},
		{"half a string signature", elf("probe", "./probe", event.FileID{Dev: 1, Ino: 915, CtimeNs: 5}), "", ""},
		{"unrelated Go program", elf("gotool", "./gotool", event.FileID{Dev: 1, Ino: 912, CtimeNs: 5}), "", ""},
		{"look-alike name", elf("mitmdumpx", "/tmp/mitmdumpx", event.FileID{Dev: 1, Ino: 901, CtimeNs: 5}), "", ""},
		{"dotted look-alike", elf("ettercap.conf", "/tmp/ettercap.conf", event.FileID{Dev: 1, Ino: 60}), "", ""},
		{"contains a tool's name", elf("mitmproxy2swagger", "/usr/bin/mitmproxy2swagger", event.FileID{Dev: 1, Ino: 61}), "", ""},
		{"grep for a tool", elf("grep", "/usr/bin/grep", event.FileID{Dev: 1, Ino: 62}, "grep", "ettercap", "/var/log/syslog"), "", ""},
		{"cat a tool", elf("cat", "/usr/bin/cat", event.FileID{Dev: 1, Ino: 63}, "cat", "/usr/bin/bettercap"), "", ""},
		{"sh -c naming a tool", elf("dash", "/bin/sh", event.FileID{Dev: 1, Ino: 52}, "sh", "-c", "ettercap --version"), "", ""},
		{"python prints a module name", elf("python3.11", "/usr/bin/python3", py, "python3", "-c", "print('mitmproxy.tools.main mitmdump')"), "", ""},
		{"python library import", elf("python3.11", "/usr/bin/python3", py, "python3", "/tmp/lib.py"), "", ""},
		{"python -m other", elf("python3.11", "/usr/bin/python3", py, "python3", "-m", "http.server"), "", ""},
		{"python -W value is no script", elf("python3.11", "/usr/bin/python3", py, "python3", "-W", "mitmdump"), "", ""},
		{"sh plain script", elf("bash", "/bin/bash", event.FileID{Dev: 1, Ino: 64}, "bash", "/tmp/plain.sh"), "", ""},
		{"perl -e", elf("perl", "/usr/bin/perl", event.FileID{Dev: 1, Ino: 53}, "perl", "-e", "print 'mitmdump'"), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN a rule that knows the host's installed tools
			r := newTestRule(t, files)
			e := c.exec
			// WHEN it judges the exec
			res := r.Judge(&e)
			// THEN the tool and the way it was recognised are as expected
			if c.tool == "" {
				if res.Detected {
					t.Fatalf("want no detection, got %s by %s (%s)", res.Detection.Tool.Name, res.Detection.Match, res.Detection.Detail)
				}
				return
			}
			if !res.Detected {
				t.Fatalf("want %s, got no detection", c.tool)
			}
			if res.Detection.Tool.Name != c.tool || res.Detection.Match != c.match {
				t.Errorf("got %s by %s, want %s by %s", res.Detection.Tool.Name, res.Detection.Match, c.tool, c.match)
			}
		})
	}
}

func TestRuleIdentityVerdicts(t *testing.T) {
	plain := elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("9", 64)}}}
	dashELF := elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("d", 64)}}}
	ldELF := elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("e", 64)}}}
	files := &fakeFiles{
		execSums: map[event.FileID]string{{Dev: 1, Ino: 900}: bettercapSum},
		execELF: map[event.FileID]elfid.Identity{
			{Dev: 1, Ino: 50}: plain, {Dev: 1, Ino: 51}: plain, {Dev: 1, Ino: 70}: plain,
			{Dev: 1, Ino: 71}: dashELF, {Dev: 1, Ino: 72}: ldELF, {Dev: 1, Ino: 73}: plain,
			{Dev: 1, Ino: 74}: plain, {Dev: 1, Ino: 75}: plain,
		},
	}
	r := newTestRule(t, files)
	// the host's shell and loader, as the inventory finds them
	r.AddInterpreter(Shell, event.FileID{Dev: 1, Ino: 7100}, "", nil, &dashELF)
	r.AddInterpreter(Loader, event.FileID{Dev: 1, Ino: 7200}, "", nil, &ldELF)
	kernel := r.kernel.(*fakeKernel)
	cases := []struct {
		name string
		exec event.Exec
		kind uint8
	}{
		{"tool by content", elf("agent", "/tmp/agent", event.FileID{Dev: 1, Ino: 900}), event.VerdictTool},
		{"interpreter by name", elf("python3.11", "/usr/bin/python3", event.FileID{Dev: 1, Ino: 50}), event.VerdictInterpreter},
		{"benign", elf("ls", "/bin/ls", event.FileID{Dev: 1, Ino: 70}), event.VerdictBenign},
		{"the host's shell by its code", elf("dash", "/bin/sh", event.FileID{Dev: 1, Ino: 71}), event.VerdictShell},
		{"the host's loader by its code", elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 72}), event.VerdictLoader},
		{"musl loader", elf("ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1", event.FileID{Dev: 1, Ino: 73}), event.VerdictInterpreter},
		// a shell or loader known by its name only gets no kernel shortcut:
		// each of its execs comes up
		{"unknown file named sh", elf("sh", "/tmp/sh", event.FileID{Dev: 1, Ino: 74}), event.VerdictInterpreter},
		{"unknown file named like the loader", elf("ld-linux-x86-64.so.2", "/tmp/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 75}), event.VerdictInterpreter},
		// a script's verdict belongs to the script, never to its interpreter
		{"shebang tool script", func() event.Exec {
			e := elf("python3.11", "/usr/bin/mitmdump", event.FileID{Dev: 1, Ino: 51})
			e.Flags = event.FlagScript
			return e
		}(), event.VerdictInterpreter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// WHEN the rule first sees the file
			e := c.exec
			before := kernel.puts
			r.Judge(&e)
			// THEN the kernel holds its verdict at once
			if v, ok := kernel.verdicts[e.File]; !ok || v.Kind != c.kind || kernel.puts != before+1 {
				t.Fatalf("kernel verdict %+v (%v, %d writes), want kind %d written once", v, ok, kernel.puts-before, c.kind)
			}
			// AND a second sight comes from the cache, with nothing written
			r.Judge(&e)
			if kernel.puts != before+1 {
				t.Errorf("second judgement wrote to the kernel again")
			}
			// AND once the kernel's LRU forgot it, it is written back
			e.Reasons |= event.ReasonUnknown
			r.Judge(&e)
			if kernel.puts != before+2 {
				t.Errorf("a verdict the kernel forgot was not written back")
			}
		})
	}
}

// TestRuleUnreadNotCached: a first sight whose file could not be read (gone,
// renamed, refused, cut by a time bound) is never cached, benign or as an
// interpreter by its name; it is counted, and the next exec is judged anew.
func TestRuleUnreadNotCached(t *testing.T) {
	files := &fakeFiles{execELF: map[event.FileID]elfid.Identity{}}
	r := newTestRule(t, files)
	kernel := r.kernel.(*fakeKernel)
	for _, c := range []struct {
		name string
		exec event.Exec
	}{
		{"unreadable unknown file", elf("x", "/tmp/d/x", event.FileID{Dev: 1, Ino: 800})},
		{"unreadable file named sh", elf("sh", "/tmp/d/sh", event.FileID{Dev: 1, Ino: 801})},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN a patched copy of sslsplit that cannot be read at its first sight
			e := c.exec
			before := r.Unread()
			res := r.Judge(&e)
			// THEN nothing is written to the kernel, and the failed read is counted
			if _, ok := kernel.verdicts[e.File]; ok || res.Detected {
				t.Fatalf("unread first sight: kernel verdict written %v, detected %v", ok, res.Detected)
			}
			if r.Unread() != before+1 {
				t.Errorf("unread count %d, want %d", r.Unread(), before+1)
			}
			// WHEN the next exec of the same file can be read
			files.execELF[e.File] = elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("1", 64)}}}
			e.Reasons |= event.ReasonUnknown
			res = r.Judge(&e)
			// THEN it is the tool, cached as one
			if !res.Detected || res.Detection.Tool.Name != "sslsplit" || kernel.verdicts[e.File].Kind != event.VerdictTool {
				t.Fatalf("readable second sight: detected %v %+v, kernel %+v; want sslsplit cached as a tool", res.Detected, res.Detection, kernel.verdicts[e.File])
			}
		})
	}
}

// TestRuleIdentityBeforeName: a copy of a tool named like an interpreter
// is the tool (and cached as one, never as a shell), and a copy of the
// host's python or loader under another name, or with a byte of its header
// changed, is still that interpreter.
func TestRuleIdentityBeforeName(t *testing.T) {
	pyELF := elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("a", 64)}, {Name: ".rodata", SHA256: strings.Repeat("b", 64)}}}
	ldELF := elfid.Identity{Code: []elfid.Section{{Name: ".text", SHA256: strings.Repeat("c", 64)}}}
	patchedLoader := event.FileID{Dev: 1, Ino: 1003, CtimeNs: 5}
	files := &fakeFiles{
		execSums: map[event.FileID]string{{Dev: 1, Ino: 1000, CtimeNs: 5}: bettercapSum},
		execELF: map[event.FileID]elfid.Identity{
			{Dev: 1, Ino: 1001, CtimeNs: 5}: {Found: arpspoofSignature}, // arpspoof named sh
			{Dev: 1, Ino: 1002, CtimeNs: 5}: pyELF,                      // python patched, named sh
			patchedLoader:                   ldELF,
			{Dev: 1, Ino: 1004, CtimeNs: 5}: sslsplitELF, // sslsplit named perl
		},
		programELF: map[string]elfid.Identity{"/tmp/py": pyELF},
		scripts: map[string]fakeScript{
			"/tmp/wrapper.py": {sum: trueSum, body: "from mitmproxy.tools.main import mitmdump\nmitmdump()\n"},
		},
	}
	r := newTestRule(t, files)
	r.AddInterpreter(Python, event.FileID{Dev: 1, Ino: 60, CtimeNs: 1}, "", nil, &pyELF)
	r.AddInterpreter(Loader, event.FileID{Dev: 1, Ino: 61, CtimeNs: 1}, "", nil, &ldELF)
	kernel := r.kernel.(*fakeKernel)
	withReasons := func(e event.Exec, fp bool) event.Exec {
		e.Reasons |= event.ReasonUnknown
		if fp {
			e.Reasons |= event.ReasonFingerprint
			e.KernelToolID = r.cat.ByFileName("ettercap").ID
		}
		return e
	}
	cases := []struct {
		name  string
		exec  event.Exec
		tool  string
		match Match
		kind  uint8 // the kernel's verdict on the file
	}{
		{"bettercap copy named sh", withReasons(elf("sh", "/tmp/sh", event.FileID{Dev: 1, Ino: 1000, CtimeNs: 5}, "sh", "-c", "true"), false), "bettercap", MatchContentHash, event.VerdictTool},
		{"arpspoof copy named sh", withReasons(elf("sh", "/tmp/sh", event.FileID{Dev: 1, Ino: 1001, CtimeNs: 5}, "sh", "-h"), false), "arpspoof", MatchStructure, event.VerdictTool},
		{"sslsplit copy named perl", withReasons(elf("perl", "/tmp/perl", event.FileID{Dev: 1, Ino: 1004, CtimeNs: 5}, "perl", "-e", "1"), false), "sslsplit", MatchStructure, event.VerdictTool},
		{"ettercap copy named perl, gone: the kernel's fingerprint", withReasons(elf("perl", "/tmp/perl", event.FileID{Dev: 1, Ino: 1005, CtimeNs: 5}, "perl", "-v"), true), "ettercap", MatchFingerprint, event.VerdictTool},
		{"patched python named sh runs -c", withReasons(elf("sh", "/tmp/sh", event.FileID{Dev: 1, Ino: 1002, CtimeNs: 5}, "sh", "-c", "import runpy; runpy.run_path('/usr/bin/mitmdump', run_name='__main__')"), false), "mitmdump", MatchInterpreterArgs, event.VerdictInterpreter},
		{"patched loader runs a tool", withReasons(elf("svc", "/tmp/svc", patchedLoader, "svc", "--inhibit-rpath", "", "/usr/bin/ettercap"), false), "ettercap", MatchInterpreterArgs, event.VerdictLoader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.exec
			res := r.Judge(&e)
			if !res.Detected || res.Detection.Tool.Name != c.tool || res.Detection.Match != c.match {
				t.Fatalf("got detected %v %+v, want %s by %s", res.Detected, res.Detection, c.tool, c.match)
			}
			if v := kernel.verdicts[e.File]; v.Kind != c.kind {
				t.Errorf("kernel verdict kind %d, want %d", v.Kind, c.kind)
			}
		})
	}
	// the loader's program is judged as if exec'd: python by its code, its
	// own argv read as python's, and the process counts as python
	loader := elf("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", event.FileID{Dev: 1, Ino: 61, CtimeNs: 1})
	for _, c := range []struct {
		name string
		args []string
		tool string
	}{
		{"loader runs python running a tool script", []string{"ld.so", "/tmp/py", "/usr/bin/mitmdump", "--version"}, "mitmdump"},
		{"loader runs python -c", []string{"ld.so", "--argv0", "x", "/tmp/py", "-c", "from mitmproxy.tools.main import mitmweb; mitmweb()"}, "mitmweb"},
		{"loader runs python with a wrapper", []string{"ld.so", "--library-path", "/x", "/tmp/py", "-W", "ignore", "/tmp/wrapper.py"}, "mitmdump"},
		{"loader runs the loader", []string{"ld.so", "/lib64/ld-linux-x86-64.so.2", "/tmp/py", "-m", "mitm6"}, "mitm6"},
		{"loader runs python by name", []string{"ld.so", "/usr/bin/python3.11", "/usr/bin/mitmdump"}, "mitmdump"},
		{"loader runs python, nothing of a tool", []string{"ld.so", "/tmp/py", "-c", "print(1)"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := loader
			e.Args = c.args
			res := r.Judge(&e)
			if c.tool == "" {
				if res.Detected {
					t.Fatalf("want no detection, got %s", res.Detection.Tool.Name)
				}
			} else if !res.Detected || res.Detection.Tool.Name != c.tool {
				t.Fatalf("got detected %v %v, want %s", res.Detected, res.Detection.Tool, c.tool)
			}
			if !r.IsPython(&e) && c.name != "loader runs the loader" {
				t.Errorf("the loader's process runs python: IsPython false")
			}
		})
	}
	notPython := loader
	notPython.Args = []string{"ld.so", "/bin/ls"}
	if r.IsPython(&notPython) {
		t.Errorf("ld.so /bin/ls: IsPython true")
	}
}

func FuzzRule(f *testing.F) {
	f.Add("python3.11", "/usr/bin/python3", "python3\x00-c\x00from mitmproxy.tools.main import mitmdump")
	f.Add("dash", "/bin/sh", "sh\x00-o\x00")
	f.Add("perl", "/usr/bin/perl", "perl\x00-I")
	f.Add("ettercap", "/dev/fd/3", "")
	cat, err := NewCatalog(DefaultTools())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, filename, args string) {
		r := NewRule(cat, &fakeFiles{}, nil, nil)
		e := event.Exec{Name: name, Filename: filename, Args: strings.Split(args, "\x00"), Flags: event.FlagScript}
		res := r.Judge(&e)
		if res.Detected && res.Detection.Tool == nil {
			t.Fatal("detection without a tool")
		}
	})
}

func BenchmarkRuleInterpreter(b *testing.B) {
	cat, _ := NewCatalog(DefaultTools())
	r := NewRule(cat, &fakeFiles{}, nil, nil)
	e := elf("python3.11", "/usr/bin/python3", event.FileID{Dev: 1, Ino: 50}, "python3", "-c", "import json; print(1)")
	b.ReportAllocs()
	for b.Loop() {
		r.Judge(&e)
	}
}

// TestRuleHardLinkAfterTheName: an inode first judged under the tool's own
// name and then exec'd through a hard link is reported as the inode, not
// the name this exec did not have.
func TestRuleHardLinkAfterTheName(t *testing.T) {
	r := newTestRule(t, &fakeFiles{})
	id := event.FileID{Dev: 1, Ino: 200, CtimeNs: 9} // arpspoof, linked since the scan
	byName := elf("arpspoof", "/dev/fd/3", id)
	byName.Nlink = 2
	r.Judge(&byName)
	link := elf("netcheck", "/tmp/netcheck", id)
	link.Nlink = 2
	res := r.Judge(&link)
	if !res.Detected || res.Detection.Tool.Name != "arpspoof" || res.Detection.Match != MatchInode {
		t.Fatalf("hard link after the name: %+v, want arpspoof by inode", res.Detection)
	}
}

// TestRulePythonByStructure: a python the host never had (another build, a
// container's, one linked to libpython) is python by its structure, under
// any name: its -c is read as python's.
func TestRulePythonByStructure(t *testing.T) {
	static := elfid.Identity{Found: []string{cpythonUsage}}
	shared := elfid.Identity{Needed: []string{"libpython3.12.so.1.0", "libc.so.6"}}
	goProgram := elfid.Identity{GoModule: "example.com/x", Found: []string{cpythonUsage}}
	files := &fakeFiles{execELF: map[event.FileID]elfid.Identity{
		{Dev: 2, Ino: 1}: static, {Dev: 2, Ino: 2}: shared, {Dev: 2, Ino: 3}: goProgram,
	}}
	r := newTestRule(t, files)
	code := "from mitmproxy.tools.main import mitmdump; mitmdump()"
	for _, c := range []struct {
		name string
		exec event.Exec
		tool string
	}{
		{"static python named sh", elf("sh", "/x/sh", event.FileID{Dev: 2, Ino: 1}, "sh", "-c", code), "mitmdump"},
		{"libpython python named bash", elf("bash", "/x/bash", event.FileID{Dev: 2, Ino: 2}, "bash", "-c", code), "mitmdump"},
		{"Go program holding the usage line", elf("sh", "/x/sh", event.FileID{Dev: 2, Ino: 3}, "sh", "-c", code), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := c.exec
			res := r.Judge(&e)
			if c.tool == "" {
				if res.Detected {
					t.Fatalf("want no detection, got %+v", res.Detection)
				}
				return
			}
			if !res.Detected || res.Detection.Tool.Name != c.tool {
				t.Fatalf("got %+v, want %s", res.Detection, c.tool)
			}
			if !r.IsPython(&e) {
				t.Errorf("IsPython false for a python by structure")
			}
		})
	}
}
