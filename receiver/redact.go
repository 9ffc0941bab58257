package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"regexp"
	"strings"
)

// redacted replaces a secret in argv.
const redacted = "REDACTED"

// secretNameWords are the words of an option name that mark its value as a
// secret. A name is split into words on '-', '_' and '.', so "--client-secret"
// and "--api_key" match while "--passive" and "--bypass" do not.
var secretNameWords = []string{"password", "passwd", "passphrase", "pass", "pwd", "token", "secret", "apikey", "auth", "credential", "credentials"}

// secretNameSuffixes mark a word that ends in one of them ("--dbpassword",
// "--accesstoken", mitmproxy's "--proxyauth").
var secretNameSuffixes = []string{"password", "passwd", "token", "secret", "auth", "apikey"}

// urlCredentials matches the password in a URL's userinfo,
// scheme://user:password@host.
var urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@`)

// cutURLCredentials matches a URL cut after "user:" by the capture bound:
// what follows the colon may be the start of a password (or a port; it is
// redacted all the same).
var cutURLCredentials = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*$`)

// isSecretName reports whether an option name (leading dashes removed, no
// value) names a secret.
func isSecretName(name string) bool {
	name = strings.ToLower(name)
	if strings.Contains(name, "api-key") || strings.Contains(name, "api_key") {
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

// redactArgs returns argv with secrets replaced by REDACTED; args is not
// modified. It redacts
//   - the value of a long option whose name names a secret, both
//     "--password value" and "--password=value" (a single-dash long name
//     such as "-password" counts too, single letters never do);
//   - "name=value" arguments whose name names a secret, as in mitmproxy's
//     "--set proxyauth=user:pass";
//   - the password in a URL, scheme://user:password@host.
//
// lastCut says the kernel cut the final argument at its capture bound; a URL
// cut right after "user:" is then redacted from the colon on, since the
// "@" that would mark a password was never captured.
func redactArgs(args []string, lastCut bool) []string {
	if len(args) == 0 {
		return args
	}
	out := make([]string, len(args))
	valueNext := false
	for i, a := range args {
		if valueNext {
			valueNext = false
			// A value that looks like another option is taken for one: the
			// secret option was a switch.
			if !strings.HasPrefix(a, "-") {
				out[i] = redacted
				continue
			}
		}
		if i > 0 { // argv[0] is the program, never an option
			if name, hasValue, ok := optionName(a); ok && isSecretName(name) {
				if hasValue {
					out[i] = a[:strings.IndexByte(a, '=')+1] + redacted
				} else {
					out[i] = a
					valueNext = true
				}
				continue
			}
		}
		a = urlCredentials.ReplaceAllString(a, "$1:"+redacted+"@")
		if lastCut && i == len(args)-1 {
			a = cutURLCredentials.ReplaceAllString(a, "$1:"+redacted)
		}
		out[i] = a
	}
	return out
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
