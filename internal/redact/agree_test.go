// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"errors"
	"path"
	"testing"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/elfid"
	"github.com/mitmexec/mitmexec/internal/event"
)

// scriptsAsked is a file system with nothing in it that remembers the
// scripts and programs the rule tried to read: what detection took for the
// program an interpreter runs, whether or not it names a tool.
type scriptsAsked struct{ paths []string }

var errNoFile = errors.New("no such file")

func (f *scriptsAsked) ExecSHA256(*event.Exec) (string, error) { return "", errNoFile }
func (f *scriptsAsked) ExecELF(*event.Exec) (elfid.Identity, error) {
	return elfid.Identity{}, errNoFile
}
func (f *scriptsAsked) ProgramELF(_ *event.Exec, p string) (elfid.Identity, error) {
	return elfid.Identity{}, errNoFile
}
func (f *scriptsAsked) Script(_ *event.Exec, p string) (string, []byte, error) {
	f.paths = append(f.paths, p)
	return "", nil, errNoFile
}
func (f *scriptsAsked) Stdin(*event.Exec) (string, []byte, error)          { return "", nil, errNoFile }
func (f *scriptsAsked) Cmdline(*event.Exec) ([]string, error)              { return nil, errNoFile }
func (f *scriptsAsked) Environ(*event.Exec) ([]string, error)              { return nil, errNoFile }
func (f *scriptsAsked) ReadDir(*event.Exec, string, int) ([]string, error) { return nil, errNoFile }

// detectedProgram is the program detection finds argv's interpreter runs:
// the script (or the loader's program) it named a tool by, else the last
// one it read to judge; "" when argv runs code, a module, standard input
// or nothing.
func detectedProgram(t *testing.T, args []string) string {
	t.Helper()
	cat, err := detect.NewCatalog(detect.DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	files := &scriptsAsked{}
	rule := detect.NewRule(cat, files, nil, nil)
	res := rule.Judge(&event.Exec{PID: 1, Name: path.Base(args[0]), Filename: args[0], Args: args})
	if res.Detected && res.Detection.Script != "" {
		return res.Detection.Script
	}
	if len(files.paths) == 0 {
		return ""
	}
	return files.paths[len(files.paths)-1]
}

// redactedProgram is the program redaction finds argv runs, whose own
// options it reads by the tool's rules; "" when none, or when argv[0] is
// no interpreter and is the program itself.
func redactedProgram(args []string) string {
	_, at := program(args)
	if at == 0 || at >= len(args) {
		return ""
	}
	return args[at]
}

// TestRedactAndDetectionReadInterpretersAlike pins that redaction and
// detection read an interpreter's command line the same way: the program
// one judges is the one whose options the other redacts. Every option
// value here is a tool's name, so a grammar that took a value for the
// program would judge or redact another tool than the one that runs.
func TestRedactAndDetectionReadInterpretersAlike(t *testing.T) {
	cases := []struct {
		args []string
		want string // the program argv runs; "" for code, a module, stdin, nothing
	}{
		// python: --check-hash-based-pycs, -W and -X take a value
		{[]string{"python3", "--check-hash-based-pycs", "always", "T", "-p", "secret"}, "T"},
		{[]string{"python3", "--check-hash-based-pycs", "mitmdump", "/usr/bin/mitmweb", "-p", "x"}, "/usr/bin/mitmweb"},
		{[]string{"python3", "-W", "mitmdump", "-X", "mitm6", "/usr/bin/nxc", "-p", "x"}, "/usr/bin/nxc"},
		{[]string{"/usr/bin/python3.11", "-Wmitmdump", "-IsE", "responder.py"}, "responder.py"},
		{[]string{"pypy3", "-X", "mitmdump", "/x/mitmweb"}, "/x/mitmweb"},
		{[]string{"python3", "--", "-mitmdump"}, "-mitmdump"},
		{[]string{"python3", "-c", "import mitm6", "mitmdump"}, ""},
		{[]string{"python3", "-Bm", "mitm6", "mitmdump"}, ""},
		{[]string{"python3", "-", "mitmdump"}, ""},
		// perl and ruby: -I, -r, -C, -x take a value, -e is code
		{[]string{"perl", "-I", "mitmdump", "-w", "/x/mitmweb", "-p"}, "/x/mitmweb"},
		{[]string{"perl5.36.0", "-e", "mitmdump", "x"}, ""},
		{[]string{"ruby", "-r", "mitmdump", "-C", "mitmweb", "s.rb"}, "s.rb"},
		{[]string{"ruby", "--", "mitmdump"}, "mitmdump"},
		// sh and bash: -o, -O, --rcfile take a value, -c runs a command
		{[]string{"sh", "-o", "mitmdump", "/x/responder"}, "/x/responder"},
		{[]string{"bash", "--rcfile", "mitmdump", "-x", "s.sh", "-p", "pw"}, "s.sh"},
		{[]string{"bash", "-ec", "mitmdump"}, ""},
		{[]string{"dash", "-", "mitmweb"}, "mitmweb"},
		// node is no interpreter to the grammar: node itself is the program
		{[]string{"node", "--require", "mitmdump", "s.js"}, ""},
		// glibc's loader and its value-taking options, running a tool or python
		{[]string{"/lib64/ld-linux-x86-64.so.2", "--library-path", "mitmdump", "/usr/bin/ettercap", "-T"}, "/usr/bin/ettercap"},
		{[]string{"ld.so", "--inhibit-rpath", "", "--audit", "mitmdump", "--preload", "mitmweb", "--argv0", "mitm6",
			"--glibc-hwcaps-prepend", "mitmproxy", "--glibc-hwcaps-mask", "arpspoof", "--inhibit-cache", "/usr/bin/ettercap"}, "/usr/bin/ettercap"},
		{[]string{"ld.so", "--argv0", "mitmdump", "/usr/bin/python3", "-W", "mitm6", "/x/T", "-p", "pw"}, "/x/T"},
		{[]string{"ld-linux-riscv64-lp64d.so.1", "--argv0", "mitmdump", "/usr/bin/ettercap"}, "/usr/bin/ettercap"},
		{[]string{"ld.so", "--list", "/usr/bin/ettercap"}, ""},
		// musl's loader: --opt=value or the next argument
		{[]string{"/lib/ld-musl-x86_64.so.1", "--library-path=/x", "--preload", "mitmdump", "--", "/usr/bin/ettercap"}, "/usr/bin/ettercap"},
		{[]string{"ld-musl-aarch64.so.1", "--argv0", "mitmdump", "/usr/bin/python3", "/usr/bin/mitmweb"}, "/usr/bin/mitmweb"},
	}
	for _, c := range cases {
		// GIVEN an interpreter's command line
		// WHEN detection judges it and redaction finds its program
		detected, redacted := detectedProgram(t, c.args), redactedProgram(c.args)

		// THEN both find the program that runs
		if detected != c.want || redacted != c.want {
			t.Errorf("%q: detection reads %q, redaction %q, want %q", c.args, detected, redacted, c.want)
		}
	}
}
