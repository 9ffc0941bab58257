// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"regexp"
	"strings"

	"github.com/mitmexec/mitmexec/internal/argv"
)

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

// secretNameWords are the words of an option name that mark its value as a
// secret. A name is split into words on '-', '_' and '.', so "--client-secret"
// and "--api_key" match while "--passive" and "--bypass" do not. "hashes"
// and "aeskey" are impacket's (-hashes LMHASH:NTHASH, -aesKey), which pass
// the hash or key in place of a password.
var secretNameWords = []string{
	"password", "passwd", "passphrase", "pass", "pwd", "token", "secret", "apikey", "auth", "credential", "credentials",
	"hashes", "nthash", "lmhash", "aeskey", "newpass", "oldpass", "altpass",
}

// secretNameSuffixes mark a word that ends in one of them ("--dbpassword",
// "--accesstoken", mitmproxy's "--proxyauth", impacket's "-newhashes").
var secretNameSuffixes = []string{"password", "passwd", "token", "secret", "auth", "apikey", "hashes"}

// secretVarSuffixes mark the last word of a variable's name as holding a
// secret, for names that are not options: bettercap's "set api.rest.password
// x", and keys or variables in code (`password="x"`, `"api_key": "y"`).
// Only the last word counts, so "token_type" and "passwd_file" are not
// secrets while "db.password" and "client_secret" are. "key" is here because
// bettercap spells its secrets that way; it also catches a key file's path,
// which costs the analyst a file name, not a secret.
var secretVarSuffixes = []string{"password", "passwd", "passphrase", "pass", "pwd", "secret", "token", "key", "auth", "credential", "credentials", "cookie"}

// urlCredentials matches the password in a URL's userinfo,
// scheme://user:password@host. The password runs to the last '@' before the
// path, as a URL parser reads it, so "p@ss" is not cut in two; it stops at
// a quote so that a URL inside code does not swallow the next string.
var urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'"]*):[^/\s'"]+@`)

// cutURLCredentials matches a URL cut after "user:" by the capture bound:
// what follows the colon may be the start of a password (or a port; it is
// redacted all the same).
var cutURLCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]+$`)

// hostCredentials matches user:password@ without a scheme, anywhere in an
// argument: impacket's domain/user:password@target, user:pass@host:port.
// The user stops at a domain's '/' or '\' and at the punctuation that
// surrounds a word in code or an option (quotes, '=', brackets), so that
// "--target=corp/alice:pw@dc" redacts pw. Requiring the ':' before the '@'
// leaves out what only has the '@': an email address, ssh's user@host,
// git@github.com:org/repo.git. The password runs to the last '@' of the
// word, as impacket reads it ("alice:P@ss@dc"), but cannot hold '/', or
// "registry:5000/app@sha256:..." and "host:8080/path@x" would read as
// credentials; see domainTargetCredentials for the one place it may.
var hostCredentials = regexp.MustCompile(`([^\s:/@'"=;,()<>\[\]{}|&\\]+):([^\s/'"]+)@`)

// domainTargetCredentials matches an argument that is nothing but an
// impacket target with a domain, whose password may then hold a '/' too:
// "domain/user:" is not how a path or an image name starts. The host
// cannot hold ':', which keeps "a/b:tag@sha256:..." out.
var domainTargetCredentials = regexp.MustCompile(`^([^/@:\s]+/[^/@:\s]+):(\S+)@[^@/:\s]+$`)

// cutTargetCredentials matches the last argument cut inside an impacket
// target's password, "corp/alice:Pa": the domain is what tells it from
// host:port. A cut "user:pa" without a domain cannot be told from
// "host:80" and is left alone.
var cutTargetCredentials = regexp.MustCompile(`^([^/@:\s]+/[^/@:\s]+):([^@\s]+)$`)

// notCredentialSchemes are URI schemes written "scheme:user@host" with no
// "//", which hostCredentials would otherwise read as user:password@host.
var notCredentialSchemes = []string{"mailto", "sip", "sips", "xmpp", "acct", "im", "pres"}

// digestRef matches what follows the '@' of a pinned container image,
// "image:tag@sha256:...": a tag, not a password.
var digestRef = regexp.MustCompile(`^(?i:sha[0-9]+):`)

// secretHeader finds an HTTP header whose value is a credential, in an
// argument of its own ("Authorization: Bearer x" after -H), attached to
// curl's -H ("-HCookie: a=b"), after --header=, or inside code or a shell
// command ({"Authorization": "Bearer z"}, -c "curl -H 'Cookie: a=b' ...").
// The name must not continue a longer one (X-Authorization-Mode).
var secretHeader = regexp.MustCompile(`(?i)(^-H|^|[^a-z0-9_-])(proxy-authorization|authorization|set-cookie|cookie|x-api-key|x-auth-token)(['"]?)[ \t]*:[ \t]*`)

// authScheme is the scheme that starts an Authorization value (Bearer,
// Basic, Digest, NTLM, AWS4-HMAC-SHA256); it is kept so the analyst sees
// what kind of credential it was.
var authScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+-]*[ \t]+`)

// codeSecret finds a string literal given to a secret-named variable, key
// or keyword argument in code: password="x", token='y', "api_key": "z",
// self.secret = 'w', my $pass = "v", password: str = "u", os.environ["TOKEN"]
// = "t". The literal's end is found by hand, since RE2 cannot match a
// closing quote to its opening one.
var codeSecret = regexp.MustCompile(`(^|[^\w$])([A-Za-z_$@][\w$.-]*)(['"]?[\]}]?)[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\]]*[ \t]*)?(=>|==|=|:)[ \t]*(?:[bBrRuUfF]{1,2})?(['"])`)

// bettercapSet finds bettercap's "set NAME VALUE" in an -eval string (or in
// a caplet's text, or a shell command that runs bettercap). Commands are
// separated by ';' or a new line.
var bettercapSet = regexp.MustCompile(`(^|[;\n'"\s])set[ \t]+([^\s;'"]+)[ \t]+`)

// headerSpecPrefixes introduce mitmproxy's modify_headers spec attached to
// its option: "--modify-headers=/~q/Authorization/x" or, through --set,
// "modify_headers=/~q/Authorization/x" (setheaders in older releases).
var headerSpecPrefixes = []string{"--modify-headers=", "--setheader=", "--set-header=", "--header=", "--headers=", "modify_headers=", "setheaders=", "setheader="}

// isSecretName reports whether an option name (leading dashes removed, no
// value) names a secret.
func isSecretName(name string) bool {
	name = strings.ToLower(name)
	if strings.Contains(name, "api-key") || strings.Contains(name, "api_key") || name == "cookie" {
		return true
	}
	words := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	for _, w := range words {
		for _, s := range secretNameWords {
			if w == s {
				return true
			}
		}
		for _, s := range secretNameSuffixes {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
	}
	return false
}

// isSecretVar reports whether the last word of a variable or key name names
// a secret (see secretVarSuffixes).
func isSecretVar(name string) bool {
	name = strings.ToLower(strings.TrimLeft(name, "$@"))
	w := name[strings.LastIndexAny(name, "._-")+1:]
	// A bare "key" is a dictionary's key more often than a secret's.
	if w == "bypass" || name == "key" {
		return false
	}
	for _, s := range secretVarSuffixes {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}

// valueKind says how to redact an argument that is an option's value.
type valueKind int

const (
	valueNone       valueKind = iota
	valueWhole                // the value is the secret
	valueUserPass             // user<sep>password: only the password goes
	valueHeaderSpec           // mitmproxy's [/filter]/name/value
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

// isHeaderOption reports whether a's value is an HTTP header or mitmproxy's
// header spec: curl's and wget's -H/--header, mitmproxy's -H/--modify-headers
// (--setheader in older releases).
func isHeaderOption(a string) bool {
	switch a {
	case "-H", "--header", "--headers", "--modify-headers", "--setheader", "--set-header":
		return true
	}
	return false
}

// redactArgs returns argv with secrets replaced by REDACTED; args is not
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
func redactArgs(args []string, lastCut bool) []string {
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

// isCredentialUser reports whether user, the part before "user:x@", may be
// a user name rather than a URI scheme that looks like one.
func isCredentialUser(user string) bool {
	for _, s := range notCredentialSchemes {
		if strings.EqualFold(user, s) {
			return false
		}
	}
	return true
}

// redactTarget redacts an argument that is an impacket target with a
// domain as a whole.
func redactTarget(a string) string {
	m := domainTargetCredentials.FindStringSubmatchIndex(a)
	if m == nil {
		return a
	}
	return a[:m[4]] + redacted + a[m[5]:]
}

// redactHostCredentials redacts user:password@ anywhere in a.
func redactHostCredentials(a string) string {
	ms := hostCredentials.FindAllStringSubmatchIndex(a, -1)
	if ms == nil {
		return a
	}
	var b strings.Builder
	done := 0
	for _, m := range ms {
		if !isCredentialUser(a[m[2]:m[3]]) || digestRef.MatchString(a[m[1]:]) {
			continue
		}
		b.WriteString(a[done:m[4]])
		b.WriteString(redacted)
		done = m[5]
	}
	b.WriteString(a[done:])
	return b.String()
}

// redactAttachedHeaderSpec redacts mitmproxy's modify_headers spec written
// in the same argument as its option (see headerSpecPrefixes), or after an
// attached -H ("-H/~q/Authorization/x").
func redactAttachedHeaderSpec(a string) string {
	if strings.HasPrefix(a, "-H") && len(a) > 2 {
		return a[:2] + redactHeaderSpec(a[2:])
	}
	lower := strings.ToLower(a)
	for _, p := range headerSpecPrefixes {
		if strings.HasPrefix(lower, p) {
			return a[:len(p)] + redactHeaderSpec(a[len(p):])
		}
	}
	return a
}

// redactHeaderSpec redacts the value in mitmproxy's modify_headers spec,
// "[/filter]/name/value", where the first character is the separator.
// mitmproxy splits the rest at most twice, so the header name is the first
// or the second part; whatever follows a secret header's name is redacted,
// unless it names a file ("@path") to read the value from.
func redactHeaderSpec(s string) string {
	if s == "" || isWordByte(s[0]) || s[0] == ' ' || s[0] == '\t' {
		return s // "Name: value" or not a spec at all
	}
	sep := s[0]
	start := 1
	for range 2 {
		end := strings.IndexByte(s[start:], sep)
		if end < 0 {
			return s
		}
		end += start
		if name := s[start:end]; isSecretHeaderName(name) {
			v := s[end+1:]
			if strings.HasPrefix(v, "@") {
				return s
			}
			return s[:end+1] + redactHeaderValue(name, v)
		}
		start = end + 1
	}
	return s
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func isSecretHeaderName(name string) bool {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token":
		return true
	}
	return false
}

// redactHeaderValue redacts a secret header's value but keeps what is not
// secret: an Authorization scheme, cookie names, Set-Cookie's attributes.
func redactHeaderValue(name, v string) string {
	if v == "" {
		return v
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "authorization", "proxy-authorization":
		if m := authScheme.FindStringIndex(v); m != nil && m[1] < len(v) {
			return v[:m[1]] + redacted
		}
		return redacted
	case "cookie":
		return redactCookies(v, false)
	case "set-cookie":
		return redactCookies(v, true)
	}
	return redacted
}

// redactCookies redacts the values of "a=1; b=2"; for Set-Cookie only the
// first pair is the cookie, the rest are attributes (Path, Expires).
func redactCookies(v string, firstOnly bool) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		if firstOnly && i > 0 {
			break
		}
		lead := len(p) - len(strings.TrimLeft(p, " \t"))
		if eq := strings.IndexByte(p, '='); eq >= 0 {
			if eq+1 < len(p) {
				parts[i] = p[:eq+1] + redacted
			}
		} else if lead < len(p) {
			parts[i] = p[:lead] + redacted
		}
	}
	return strings.Join(parts, ";")
}

// quotedEnd returns the index just past the string literal whose opening
// quote is at a[i] (a triple quote counts as one, a backslash escapes), and
// where its content starts and ends; an unterminated literal runs to the
// end, as it does in a cut argument.
func quotedEnd(a string, i int) (contentStart, contentEnd, end int) {
	q := a[i]
	width := 1
	if strings.HasPrefix(a[i:], strings.Repeat(string(q), 3)) {
		width = 3
	}
	closing := a[i : i+width]
	for j := i + width; j < len(a); j++ {
		if a[j] == '\\' {
			j++
			continue
		}
		if strings.HasPrefix(a[j:], closing) {
			return i + width, j, j + width
		}
	}
	return i + width, len(a), len(a)
}

// replaceSpans replaces each [start, end) in spans (in order, disjoint) by
// what with returns for it.
func replaceSpans(a string, spans [][2]int, with func(string) string) string {
	if len(spans) == 0 {
		return a
	}
	var b strings.Builder
	done := 0
	for _, s := range spans {
		b.WriteString(a[done:s[0]])
		b.WriteString(with(a[s[0]:s[1]]))
		done = s[1]
	}
	b.WriteString(a[done:])
	return b.String()
}

// redactHeaders redacts secret header values found anywhere in a (see
// secretHeader). The value ends at its closing quote when quoted, at the
// quote that opened the header when the header sits in a quoted string
// ('Authorization: Bearer x'), at the end of the line, or at the end of a.
func redactHeaders(a string) string {
	ms := secretHeader.FindAllStringSubmatchIndex(a, -1)
	var spans [][2]int
	var names []string
	next := 0
	for _, m := range ms {
		if m[0] < next {
			continue // inside the previous value
		}
		vs := m[1]
		var ve int
		if vs < len(a) && (a[vs] == '"' || a[vs] == '\'') {
			vs, ve, next = quotedEnd(a, vs)
		} else {
			stop := "\r\n"
			if open := a[m[2]:m[3]]; (open == `"` || open == "'") && m[6] == m[7] {
				stop += open
			}
			ve = len(a)
			if k := strings.IndexAny(a[vs:], stop); k >= 0 {
				ve = vs + k
			}
			next = ve
		}
		if vs < ve {
			spans = append(spans, [2]int{vs, ve})
			names = append(names, a[m[4]:m[5]])
		}
	}
	i := 0
	return replaceSpans(a, spans, func(v string) string {
		name := names[i]
		i++
		return redactHeaderValue(name, v)
	})
}

// redactCodeSecrets redacts string literals given to secret-named names
// (see codeSecret).
func redactCodeSecrets(a string) string {
	ms := codeSecret.FindAllStringSubmatchIndex(a, -1)
	var spans [][2]int
	next := 0
	for _, m := range ms {
		if m[0] < next {
			continue // inside the previous literal
		}
		if !isSecretVar(a[m[4]:m[5]]) {
			continue
		}
		cs, ce, end := quotedEnd(a, m[10])
		next = end
		if cs < ce {
			spans = append(spans, [2]int{cs, ce})
		}
	}
	return replaceSpans(a, spans, func(string) string { return redacted })
}

// redactLiterals reads each string literal in code as the argument it
// will become (a list handed to a tool's main or to subprocess): a
// secret-named "name=value" keeps its name, and a literal that follows one
// naming a secret option ("--password", "pw"), with nothing but commas
// and blanks between them, goes whole.
func redactLiterals(a string) string {
	var spans [][2]int
	var with []string
	prevSecret, prevEnd := false, 0
	for i := 0; i < len(a); {
		if a[i] != '\'' && a[i] != '"' {
			i++
			continue
		}
		cs, ce, end := quotedEnd(a, i)
		content := a[cs:ce]
		r := content
		name, hasValue, ok := optionName(content)
		switch {
		case prevSecret && strings.Trim(a[prevEnd:i], " \t\r\n,") == "" && content != "":
			r = redacted
		case ok && hasValue && isSecretName(name):
			r = content[:strings.IndexByte(content, '=')+1] + redacted
		}
		if r != content {
			spans = append(spans, [2]int{cs, ce})
			with = append(with, r)
		}
		prevSecret = ok && !hasValue && strings.HasPrefix(content, "-") && isSecretName(name)
		prevEnd, i = end, end
	}
	n := 0
	return replaceSpans(a, spans, func(string) string { n++; return with[n-1] })
}

// redactBettercapSet redacts the value of bettercap's "set NAME VALUE" when
// NAME is a secret's. The value runs to the command's end: ';', a new
// line, the quote that opened the command, or the end of a; a quoted
// value to its closing quote.
func redactBettercapSet(a string) string {
	ms := bettercapSet.FindAllStringSubmatchIndex(a, -1)
	var spans [][2]int
	next := 0
	for _, m := range ms {
		if m[0] < next || !isSecretVar(a[m[4]:m[5]]) {
			continue
		}
		vs := m[1]
		var ve int
		if vs < len(a) && (a[vs] == '"' || a[vs] == '\'') {
			vs, ve, next = quotedEnd(a, vs)
		} else {
			stop := ";\r\n"
			if open := a[m[2]:m[3]]; open == `"` || open == "'" {
				stop += open
			}
			ve = len(a)
			if k := strings.IndexAny(a[vs:], stop); k >= 0 {
				ve = vs + k
			}
			next = ve
			ve = vs + len(strings.TrimRight(a[vs:ve], " \t"))
		}
		if vs < ve {
			spans = append(spans, [2]int{vs, ve})
		}
	}
	return replaceSpans(a, spans, func(string) string { return redacted })
}

// program returns the tool's name as toolSecretOptions knows it, and the
// index of the argument that names it. A script run by its interpreter
// ("python3 /usr/bin/nxc", from a #! line) is the tool, not the
// interpreter; code given with -c, -e or a module with -m is no tool. The
// interpreter's options are read with internal/argv's grammar, the one
// detection reads: both see the same script.
func program(args []string) (name string, at int) {
	for i := 0; i < len(args); i++ {
		base := toolName(args[i])
		switch {
		case base == "env":
			// env [-i] [NAME=VALUE]... command
			for i+1 < len(args) && (strings.HasPrefix(args[i+1], "-") || strings.Contains(args[i+1], "=")) {
				i++
			}
			continue
		case strings.HasPrefix(base, "ld-linux") || strings.HasPrefix(base, "ld-musl") || base == "ld.so":
			// the loader runs the program after its own options; that
			// program (python, a tool) is read as if exec'd
			kind := argv.Loader
			if strings.HasPrefix(base, "ld-musl") {
				kind = argv.MuslLoader
			}
			inv := argv.Parse(kind, args[i:])
			if inv.Script == "" || inv.Script == argv.Elided {
				return "", len(args)
			}
			i += inv.At - 1
			continue
		case strings.HasPrefix(base, "python") || strings.HasPrefix(base, "pypy"):
			return script(args, i, argv.Python)
		case strings.HasPrefix(base, "perl"):
			return script(args, i, argv.Perl)
		case strings.HasPrefix(base, "ruby"):
			return script(args, i, argv.Ruby)
		}
		return base, i
	}
	return "", len(args)
}

// script finds the script run by the interpreter of kind at args[i].
func script(args []string, i int, kind argv.Kind) (string, int) {
	inv := argv.Parse(kind, args[i:])
	if inv.Script == "" || inv.Script == argv.Elided {
		return "", len(args)
	}
	return toolName(inv.Script), i + inv.At
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

// optionName returns the name in "--name", "--name=value", "-name",
// "-name=value" or "name=value" (a name of at least two letters, no
// slash), and whether a value is attached.
func optionName(a string) (name string, hasValue bool, ok bool) {
	dashed := strings.HasPrefix(a, "-")
	s := strings.TrimLeft(a, "-")
	if eq := strings.IndexByte(s, '='); eq >= 0 {
		s, hasValue = s[:eq], true
	}
	if len(s) < 2 || strings.ContainsAny(s, "/ :@") {
		return "", false, false
	}
	if !dashed && !hasValue {
		return "", false, false // a plain word, not an option
	}
	return s, hasValue, true
}
