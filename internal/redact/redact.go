// SPDX-License-Identifier: Apache-2.0

// Package redact replaces the secrets a command line carries (passwords,
// tokens, credentials in URLs and targets, secret headers, secrets in
// code) with REDACTED before argv leaves the collector in a record. It is a
// pure function of argv: which options are secrets depends on the tool,
// found with internal/argv's grammar, the one detection reads.
package redact

import "strings"

// redacted replaces a secret in argv.
const redacted = "REDACTED"

// maxArgGrowth bounds how much longer redaction can make one argument. A
// secret shorter than "REDACTED" grows when replaced, and an argument made
// of many tiny "a:b@" pieces would otherwise grow several times over; past
// this bound the whole argument is replaced instead, which hides more, not
// less.
const maxArgGrowth = 16 * len(redacted)

// maxRedactRounds bounds the passes over one argument. One rule's
// replacement can expose a match to another (a removed quoted value joins
// what was around it), so the rules run until nothing changes, which also
// makes redaction idempotent; an argument that has not settled by then is
// replaced whole.
const maxRedactRounds = 4

// valueKind says how to redact an argument that is an option's value.
type valueKind int

const (
	valueNone       valueKind = iota
	valueWhole                // the value is the secret
	valueUserPass             // user<sep>password: only the password goes
	valueHeaderSpec           // mitmproxy's [/filter]/name/value
)

// Args returns argv with secrets replaced by REDACTED; args is not
// modified. Only the secret part goes, so the analyst still sees the
// shape: corp/alice:REDACTED@10.0.0.5. It redacts
//   - the value of a long option whose name names a secret, both
//     "--password value" and "--password=value" (a single-dash long name
//     such as "-password", impacket's "-hashes" and "-aesKey" count too,
//     single letters never do);
//   - "name=value" arguments whose name names a secret, as in mitmproxy's
//     "--set proxyauth=user:pass";
//   - the password of user:password@host, in a URL or without a scheme
//     (impacket's domain/user:password@target), alone or inside a longer
//     argument. Credentials need the ':' before an '@': an email address,
//     user@host and git@github.com:org/repo.git have none, mailto:a@b and
//     image:tag@sha256:... are known not to be;
//   - -p, and the like, only for the tools in toolSecretOptions, since for
//     most tools it is a port;
//   - the values of the HTTP headers Authorization, Proxy-Authorization
//     (keeping the scheme: "Bearer REDACTED"), Cookie, Set-Cookie (keeping
//     the cookie names), X-Api-Key and X-Auth-Token, whether after -H, in
//     mitmproxy's modify_headers spec or inside code;
//   - bettercap's "set NAME VALUE" when NAME ends in password, pass,
//     secret, token or key;
//   - in code (python -c, perl -e, ruby -e, sh -c; any argument in fact),
//     string literals assigned or passed to a secret-named name, string
//     literals that are arguments themselves ("upstream_auth=alice:pw" in
//     mitmdump(["--set", ...])), and the literal after one naming a
//     secret option in a list (["--password", "pw"]);
//   - ntlmrelayx's --add-computer NAME PASSWORD.
//
// lastCut says the kernel cut the final argument at its capture bound; a URL
// cut right after "user:" is then redacted from the colon on, since the
// "@" that would mark a password was never captured, and so is an impacket
// target cut inside its password (corp/alice:Pa).
//
// Every argument grows by at most maxArgGrowth, and redacting twice gives
// what redacting once did.
func Args(args []string, lastCut bool) []string {
	if len(args) == 0 {
		return args
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = redactArg(a, i == 0, lastCut && i == len(args)-1)
	}

	// Which options are secrets depends on the tool and on where its own
	// arguments start (after "python3 script.py"); both are read from the
	// redacted arguments, so a second redaction reads the same.
	tool, toolAt := program(out)
	ts := toolSecretOptions(tool)
	toolOptions := true

	want, sep, skip := valueNone, byte(0), 0
	multi := false
	for i := 1; i < len(out); i++ {
		a := out[i]
		if want != valueNone {
			// A value that looks like another option is taken for one:
			// the secret option was a switch.
			if !strings.HasPrefix(a, "-") {
				if skip > 0 {
					skip--
					continue
				}
				out[i] = capGrowth(args[i], redactValue(want, a, sep))
				if !multi {
					want = valueNone
				}
				continue
			}
			want, skip, multi = valueNone, 0, false
		}
		if toolOptions && i > toolAt {
			if k, v, attached := ts.match(a); k != valueNone {
				if attached {
					out[i] = capGrowth(args[i], a[:len(a)-len(v)]+redactValue(k, v, ts.sep))
				} else {
					want, sep, multi = k, ts.sep, ts.multi && k == valueWhole
				}
				continue
			}
			if ts.wrapper && !strings.HasPrefix(a, "-") {
				toolOptions = false
			}
		}
		switch name, hasValue, ok := optionName(a); {
		case ok && !hasValue && isSecretName(name):
			want = valueWhole
		case isHeaderOption(a):
			want = valueHeaderSpec
		case a == "--add-computer":
			want, skip = valueWhole, 1
		}
	}
	return out
}

// capGrowth returns r, the redaction of a, unless it grew past
// maxArgGrowth; then a is replaced whole.
func capGrowth(a, r string) string {
	if len(r) > len(a)+maxArgGrowth {
		return redacted
	}
	return r
}

// redactValue redacts an option's value as kind says.
func redactValue(kind valueKind, v string, sep byte) string {
	switch kind {
	case valueWhole:
		return redacted
	case valueUserPass:
		if i := strings.IndexByte(v, sep); i >= 0 && i+1 < len(v) {
			return v[:i+1] + redacted
		}
		return v // a user alone: the tool asks for the password
	case valueHeaderSpec:
		return redactHeaderSpec(v)
	}
	return v
}

// redactArg applies the rules that need no other argument to a, until they
// change nothing.
func redactArg(a string, isProgram, last bool) string {
	cur := a
	for range maxRedactRounds {
		next := redactOnce(cur, isProgram, last)
		if next == cur {
			return capGrowth(a, cur)
		}
		cur = next
	}
	return redacted
}

func redactOnce(a string, isProgram, last bool) string {
	if !isProgram { // argv[0] is the program, never an option
		if name, hasValue, ok := optionName(a); ok && hasValue && isSecretName(name) {
			return a[:strings.IndexByte(a, '=')+1] + redacted
		}
	}
	// The cheap tests first: most arguments hold none of what the
	// expressions need, and those are run on every exec detected.
	url := strings.Contains(a, "://")
	if url {
		a = urlCredentials.ReplaceAllString(a, "$1:"+redacted+"@")
	}
	colon := strings.IndexByte(a, ':') >= 0
	if colon && strings.IndexByte(a, '@') >= 0 {
		a = redactTarget(a)
		a = redactHostCredentials(a)
	}
	a = redactAttachedHeaderSpec(a)
	if colon {
		a = redactHeaders(a)
	}
	if strings.ContainsAny(a, `'"`) {
		a = redactCodeSecrets(a)
		a = redactLiterals(a)
	}
	if strings.Contains(a, "set") {
		a = redactBettercapSet(a)
	}
	if last && colon {
		if url {
			a = cutURLCredentials.ReplaceAllString(a, "$1:"+redacted)
		}
		if m := cutTargetCredentials.FindStringSubmatchIndex(a); m != nil {
			a = a[:m[3]] + ":" + redacted
		}
	}
	return a
}
