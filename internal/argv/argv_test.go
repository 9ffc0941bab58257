// SPDX-License-Identifier: Apache-2.0

package argv

import "testing"

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		kind Kind
		argv []string
		want Invocation
	}{
		{"python script", Python, []string{"python3", "-I", "-W", "ignore", "/usr/bin/mitmweb", "-p", "1"}, Invocation{Script: "/usr/bin/mitmweb", At: 4}},
		{"python long option with a value", Python, []string{"python3", "--check-hash-based-pycs", "always", "T", "-p", "secret"}, Invocation{Script: "T", At: 3}},
		{"python -c", Python, []string{"python3", "-Bc", "code", "x"}, Invocation{Code: "code", At: 2}},
		{"python -c attached", Python, []string{"python3", "-ccode"}, Invocation{Code: "code", At: 1}},
		{"python -m", Python, []string{"python3", "-X", "dev", "-m", "mitm6"}, Invocation{Module: "mitm6", At: 4}},
		{"python -Wvalue then script", Python, []string{"python3", "-Wignore", "s.py"}, Invocation{Script: "s.py", At: 2}},
		{"python -", Python, []string{"python3", "-u", "-", "x"}, Invocation{Stdin: true, At: 2}},
		{"python --", Python, []string{"python3", "--", "-s.py"}, Invocation{Script: "-s.py", At: 2}},
		{"python alone", Python, []string{"python3"}, Invocation{Stdin: true, At: 1}},
		{"sh -c", Shell, []string{"sh", "-ec", "ettercap"}, Invocation{At: 3}},
		{"sh script", Shell, []string{"sh", "-o", "errexit", "/x/responder"}, Invocation{Script: "/x/responder", At: 3}},
		{"perl -e", Perl, []string{"perl", "-w", "-e", "1"}, Invocation{Code: "1", At: 3}},
		{"ruby -I dir script", Ruby, []string{"ruby", "-I", "lib", "s.rb"}, Invocation{Script: "s.rb", At: 3}},
		{"glibc program", Loader, []string{"ld.so", "/usr/bin/ettercap", "--version"}, Invocation{Script: "/usr/bin/ettercap", At: 1}},
		{"glibc --inhibit-rpath empty", Loader, []string{"ld.so", "--inhibit-rpath", "", "/usr/bin/ettercap"}, Invocation{Script: "/usr/bin/ettercap", At: 3}},
		{"glibc every value option", Loader, []string{"ld.so", "--library-path", "a", "--inhibit-rpath", "b", "--audit", "c", "--preload", "d", "--argv0", "e",
			"--glibc-hwcaps-prepend", "f", "--glibc-hwcaps-mask", "g", "--inhibit-cache", "/p"}, Invocation{Script: "/p", At: 16}},
		{"glibc --verify", Loader, []string{"ld.so", "--verify", "/usr/bin/ettercap"}, Invocation{At: 3}},
		{"glibc --list", Loader, []string{"ld.so", "--list", "/usr/bin/ettercap"}, Invocation{At: 3}},
		// before 2.33 an unknown option ended the options and was the program
		{"glibc unknown option", Loader, []string{"ld.so", "--frob", "x"}, Invocation{Script: "--frob", At: 1}},
		{"musl program", MuslLoader, []string{"ld.so", "--library-path=/x", "--preload", "y", "--", "/usr/bin/ettercap"}, Invocation{Script: "/usr/bin/ettercap", At: 5}},
		{"musl --argv0", MuslLoader, []string{"ld.so", "--argv0", "sshd", "/usr/bin/ettercap"}, Invocation{Script: "/usr/bin/ettercap", At: 3}},
		{"musl --list", MuslLoader, []string{"ld.so", "--list", "/usr/bin/ettercap"}, Invocation{At: 3}},
		{"node script", Node, []string{"node", "-r", "ts-node/register", "--conditions", "dev", "--inspect", "app.ts", "-p"}, Invocation{Script: "app.ts", At: 6}},
		{"node -e", Node, []string{"node", "--require", "x", "-e", "code", "s.js"}, Invocation{Code: "code", At: 4}},
		{"node -", Node, []string{"node", "-", "s.js"}, Invocation{Stdin: true, At: 1}},
		{"node --", Node, []string{"node", "--", "-s.js"}, Invocation{Script: "-s.js", At: 2}},
		{"musl unknown option stops it", MuslLoader, []string{"ld.so", "--inhibit-rpath", "", "/usr/bin/ettercap"}, Invocation{At: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Parse(c.kind, c.argv); got != c.want {
				t.Errorf("Parse(%v) = %+v, want %+v", c.argv, got, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("python3\x00-c\x00x")
	f.Add("ld.so\x00--argv0\x00x\x00/p")
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == 0 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
		for k := NotInterpreter; k <= Node; k++ {
			inv := Parse(k, args)
			if inv.At < 0 || inv.At > len(args) {
				t.Fatalf("kind %d: At %d out of argv of %d", k, inv.At, len(args))
			}
			if inv.Script != "" && args[inv.At] != inv.Script {
				t.Fatalf("kind %d: argv[At] %q is not the script %q", k, args[inv.At], inv.Script)
			}
		}
	})
}

func TestPythonOptions(t *testing.T) {
	// GIVEN python's options in clusters, attached and apart, long and short
	args := []string{"python3", "-IsW", "error::foo.Bar", "--check-hash-based-pycs", "always", "-Xdev", "-Bm", "py_compile", "-i"}

	// WHEN they are walked
	got := PythonOptions(args)

	// THEN each letter is one option, values go with theirs, and -m ends them
	want := []Option{{"-I", ""}, {"-s", ""}, {"-W", "error::foo.Bar"}, {"--check-hash-based-pycs", "always"}, {"-X", "dev"}, {"-B", ""}, {"-m", "py_compile"}}
	if len(got) != len(want) {
		t.Fatalf("PythonOptions(%q) = %+v, want %+v", args, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("option %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestInterpreter(t *testing.T) {
	for name, want := range map[string]Kind{
		"python3": Python, "python3.11": Python, "pypy3": Python, "python3-config": NotInterpreter,
		"bash": Shell, "busybox": Shell, "perl": Perl, "perl5.36.0": Perl, "perldoc": NotInterpreter, "ruby3.1": Ruby,
		"ld.so": Loader, "ld-linux-x86-64.so.2": Loader, "ld-linux.so.2": Loader, "ld-linux-riscv64-lp64d.so.1": Loader,
		"ld-musl-x86_64.so.1": MuslLoader, "ld-musl-aarch64.so.1": MuslLoader, "node": NotInterpreter, "ettercap": NotInterpreter,
	} {
		if got := Interpreter(name); got != want {
			t.Errorf("Interpreter(%q) = %d, want %d", name, got, want)
		}
	}
}
