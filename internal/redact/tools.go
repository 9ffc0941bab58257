// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"path"
	"strings"

	"github.com/mitmexec/mitmexec/internal/argv"
)

// toolSecrets are the options whose meaning depends on the tool: -p is a
// password to sshpass and netexec but a port to mitmproxy, sshmitm and
// most others, a pid file to sslsplit, a phishlets directory to evilginx.
type toolSecrets struct {
	password []string // the value is a password or a hash standing for one
	multi    bool     // a password option takes every value up to the next option
	userPass []string // the value is user<sep>password
	sep      byte
	wrapper  bool // the first operand is another command, whose options are not ours
}

// toolSecretOptions knows the tools that take a password with a short
// option, matched by argv[0]'s base name (or the script's, when an
// interpreter runs one). None of the catalog's tools does: these are the
// ones run alongside them (spraying relayed hashes with netexec, sshpass
// in a script), listed so that they are safe when the catalog or a rule
// takes them in. impacket's tools, ntlmrelayx and smbrelayx included, have
// no -p: they take the password in the target (domain/user:pass@host) or
// as -password, -hashes, -aesKey, all handled whatever the tool.
func toolSecretOptions(tool string) toolSecrets {
	switch tool {
	case "sshpass":
		return toolSecrets{password: []string{"-p"}, wrapper: true}
	case "netexec", "nxc", "crackmapexec", "cme":
		return toolSecrets{password: []string{"-p", "-H"}, multi: true}
	case "evil-winrm":
		return toolSecrets{password: []string{"-p", "-H"}}
	case "smbmap", "hydra", "medusa":
		return toolSecrets{password: []string{"-p"}}
	case "curl":
		return toolSecrets{userPass: []string{"-u", "--user", "-U", "--proxy-user"}, sep: ':'}
	case "smbclient", "rpcclient":
		return toolSecrets{userPass: []string{"-U", "--user"}, sep: '%'}
	}
	return toolSecrets{}
}

// match reports whether a is one of the tool's secret options, and the
// value attached to it ("-ppw", "--user=alice:pw") if any.
func (ts toolSecrets) match(a string) (kind valueKind, attached string, hasValue bool) {
	check := func(opts []string, k valueKind) bool {
		for _, o := range opts {
			switch {
			case a == o:
				kind = k
				return true
			case strings.HasPrefix(o, "--") && strings.HasPrefix(a, o+"="):
				kind, attached, hasValue = k, a[len(o)+1:], true
				return true
			case len(o) == 2 && len(a) > 2 && strings.HasPrefix(a, o):
				kind, attached, hasValue = k, a[2:], true
				return true
			}
		}
		return false
	}
	if check(ts.password, valueWhole) || check(ts.userPass, valueUserPass) {
		return kind, attached, hasValue
	}
	return valueNone, "", false
}

// program returns the tool's name as toolSecretOptions knows it, and the
// index of the argument that names it. A script run by its interpreter
// ("python3 /usr/bin/nxc", from a #! line) is the tool, not the
// interpreter; code given with -c, -e or a module with -m is no tool, nor
// is a shell's -c command. Interpreters are known by name and their
// options read with internal/argv's grammar, the one detection reads: both
// see the same script.
func program(args []string) (name string, at int) {
	for i := 0; i < len(args); i++ {
		if toolName(args[i]) == "env" {
			// env [-i] [NAME=VALUE]... command
			for i+1 < len(args) && (strings.HasPrefix(args[i+1], "-") || strings.Contains(args[i+1], "=")) {
				i++
			}
			continue
		}
		kind := argv.Interpreter(path.Base(args[i]))
		if kind == argv.NotInterpreter {
			return toolName(args[i]), i
		}
		inv := argv.Parse(kind, args[i:])
		if inv.Script == "" || inv.Script == argv.Elided {
			return "", len(args)
		}
		if kind == argv.Loader || kind == argv.MuslLoader {
			// the loader runs the program after its own options; that
			// program (python, a tool) is read as if exec'd
			i += inv.At - 1
			continue
		}
		return toolName(inv.Script), i + inv.At
	}
	return "", len(args)
}

// toolName is a program's base name, lower case, without a script's
// extension or the "impacket-" prefix Debian gives impacket's scripts.
func toolName(p string) string {
	p = strings.ToLower(p[strings.LastIndexByte(p, '/')+1:])
	for _, ext := range []string{".py", ".rb", ".pl"} {
		p = strings.TrimSuffix(p, ext)
	}
	return strings.TrimPrefix(p, "impacket-")
}
