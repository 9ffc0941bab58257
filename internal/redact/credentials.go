// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"regexp"
	"strings"
)

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
