// SPDX-License-Identifier: Apache-2.0

package redact

import "strings"

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
