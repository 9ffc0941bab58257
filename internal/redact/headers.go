// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"regexp"
	"strings"
)

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

// headerSpecPrefixes introduce mitmproxy's modify_headers spec attached to
// its option: "--modify-headers=/~q/Authorization/x" or, through --set,
// "modify_headers=/~q/Authorization/x" (setheaders in older releases).
var headerSpecPrefixes = []string{"--modify-headers=", "--setheader=", "--set-header=", "--header=", "--headers=", "modify_headers=", "setheaders=", "setheader="}

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
