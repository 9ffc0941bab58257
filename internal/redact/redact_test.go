// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/argv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redactTests pin every form Args knows, and what it must leave
// alone. They also seed FuzzRedact.
var redactTests = []struct {
	name    string
	args    []string
	lastCut bool
	want    []string
}{
	{"nothing secret", []string{"ettercap", "-T", "-M", "arp"}, false, []string{"ettercap", "-T", "-M", "arp"}},
	{"empty", nil, false, nil},

	// Secret-named options.
	{"--password value", []string{"tool", "--password", "hunter2", "-v"}, false, []string{"tool", "--password", "REDACTED", "-v"}},
	{"--password=value", []string{"tool", "--password=hunter2"}, false, []string{"tool", "--password=REDACTED"}},
	{"single-dash long name", []string{"tool", "-passwd", "x"}, false, []string{"tool", "-passwd", "REDACTED"}},
	{"--token", []string{"tool", "--token", "abc"}, false, []string{"tool", "--token", "REDACTED"}},
	{"--client-secret", []string{"tool", "--client-secret=abc"}, false, []string{"tool", "--client-secret=REDACTED"}},
	{"--api-key", []string{"tool", "--api-key", "abc"}, false, []string{"tool", "--api-key", "REDACTED"}},
	{"--apikey", []string{"tool", "--apikey=abc"}, false, []string{"tool", "--apikey=REDACTED"}},
	{"--api_key", []string{"tool", "--api_key=abc"}, false, []string{"tool", "--api_key=REDACTED"}},
	{"--auth", []string{"tool", "--auth", "u:p"}, false, []string{"tool", "--auth", "REDACTED"}},
	{"--proxyauth", []string{"mitmproxy", "--proxyauth", "u:p"}, false, []string{"mitmproxy", "--proxyauth", "REDACTED"}},
	{"--db-credential", []string{"tool", "--db-credential", "x"}, false, []string{"tool", "--db-credential", "REDACTED"}},
	{"--pass", []string{"tool", "--pass", "x"}, false, []string{"tool", "--pass", "REDACTED"}},
	{"upper case", []string{"tool", "--PASSWORD=x"}, false, []string{"tool", "--PASSWORD=REDACTED"}},
	{"name=value (mitmproxy --set)", []string{"mitmdump", "--set", "proxyauth=alice:pw"}, false, []string{"mitmdump", "--set", "proxyauth=REDACTED"}},
	{"mitmproxy --set web_password", []string{"mitmweb", "--set", "web_password=pw"}, false, []string{"mitmweb", "--set", "web_password=REDACTED"}},
	{"switch before an option", []string{"tool", "--no-auth", "--verbose"}, false, []string{"tool", "--no-auth", "--verbose"}},
	{"secret option last", []string{"tool", "--password"}, false, []string{"tool", "--password"}},
	{"--passive is not a password", []string{"tool", "--passive", "eth0"}, false, []string{"tool", "--passive", "eth0"}},
	{"--bypass is not a password", []string{"tool", "--bypass", "x"}, false, []string{"tool", "--bypass", "x"}},
	{"--author is not auth", []string{"tool", "--author", "x"}, false, []string{"tool", "--author", "x"}},
	{"argv[0] is never an option", []string{"--password", "x"}, false, []string{"--password", "x"}},

	// Secrets in code literals: the arguments a list hands to a tool.
	{"code: name=value literal", []string{"python3", "-c", `from mitmproxy.tools.main import mitmdump; mitmdump(["--set", "upstream_auth=alice:S3cret"])`}, false,
		[]string{"python3", "-c", `from mitmproxy.tools.main import mitmdump; mitmdump(["--set", "upstream_auth=REDACTED"])`}},
	{"code: value after a secret option", []string{"python3", "-c", `import subprocess; subprocess.run(['tool', '--proxyauth', 'alice:pw', "--password",  "x y"])`}, false,
		[]string{"python3", "-c", `import subprocess; subprocess.run(['tool', '--proxyauth', 'REDACTED', "--password",  "REDACTED"])`}},
	{"code: other options stay", []string{"python3", "-c", `main(["--listen-port", "8080", "--mode", "transparent"])`}, false,
		[]string{"python3", "-c", `main(["--listen-port", "8080", "--mode", "transparent"])`}},
	{"code: perl list", []string{"perl", "-e", `system("sshpass", "--password", 'pw')`}, false, []string{"perl", "-e", `system("sshpass", "--password", 'REDACTED')`}},
	// One grammar with detection: --check-hash-based-pycs takes a value, so
	// the script is nxc, whose -p is a password.
	{"python option with a value before the script", []string{"python3", "--check-hash-based-pycs", "always", "/usr/bin/nxc", "-p", "secret"}, false,
		[]string{"python3", "--check-hash-based-pycs", "always", "/usr/bin/nxc", "-p", "REDACTED"}},

	// The loader runs the tool, or python running it: read as if exec'd.
	{"loader runs a tool", []string{"/lib64/ld-linux-x86-64.so.2", "--library-path", "/x", "/usr/bin/nxc", "-p", "pw"}, false,
		[]string{"/lib64/ld-linux-x86-64.so.2", "--library-path", "/x", "/usr/bin/nxc", "-p", "REDACTED"}},
	{"loader runs python running a tool", []string{"ld.so", "--argv0", "x", "/usr/bin/python3", "-W", "ignore", "/usr/bin/nxc", "-p", "pw"}, false,
		[]string{"ld.so", "--argv0", "x", "/usr/bin/python3", "-W", "ignore", "/usr/bin/nxc", "-p", "REDACTED"}},

	// impacket.
	{"impacket target", []string{"impacket-secretsdump", "corp/alice:Pass@10.0.0.5"}, false, []string{"impacket-secretsdump", "corp/alice:REDACTED@10.0.0.5"}},
	{"impacket target without domain", []string{"psexec.py", "alice:Pass@10.0.0.5", "cmd.exe"}, false, []string{"psexec.py", "alice:REDACTED@10.0.0.5", "cmd.exe"}},
	{"impacket target, '@' in the password", []string{"wmiexec.py", "corp/alice:P@ss:w0rd@dc01.corp.local"}, false, []string{"wmiexec.py", "corp/alice:REDACTED@dc01.corp.local"}},
	{"impacket target, '/' in the password", []string{"smbexec.py", "corp/alice:Pa/ss@10.0.0.5"}, false, []string{"smbexec.py", "corp/alice:REDACTED@10.0.0.5"}},
	{"impacket target, backslash domain", []string{"atexec.py", `CORP\alice:pw@10.0.0.5`, "whoami"}, false, []string{"atexec.py", `CORP\alice:REDACTED@10.0.0.5`, "whoami"}},
	{"impacket target cut in its password", []string{"secretsdump.py", "-just-dc", "corp/alice:Pa"}, true, []string{"secretsdump.py", "-just-dc", "corp/alice:REDACTED"}},
	{"impacket target, not cut", []string{"secretsdump.py", "corp/alice"}, false, []string{"secretsdump.py", "corp/alice"}},
	{"-hashes", []string{"psexec.py", "-hashes", "aad3b435b51404eeaad3b435b51404ee:31d6cfe0d16ae931b73c59d7e0c089c0", "corp/alice@10.0.0.5"}, false, []string{"psexec.py", "-hashes", "REDACTED", "corp/alice@10.0.0.5"}},
	{"-hashes with the NT hash only", []string{"psexec.py", "-hashes", ":31d6cfe0d16ae931b73c59d7e0c089c0"}, false, []string{"psexec.py", "-hashes", "REDACTED"}},
	{"-aesKey", []string{"getTGT.py", "-aesKey", "4a3b2c", "corp/alice"}, false, []string{"getTGT.py", "-aesKey", "REDACTED", "corp/alice"}},
	{"ntlmrelayx -machine-hashes, -auth-smb", []string{"ntlmrelayx.py", "-machine-hashes", "a:b", "-auth-smb", "corp/svc:pw"}, false, []string{"ntlmrelayx.py", "-machine-hashes", "REDACTED", "-auth-smb", "REDACTED"}},
	{"ntlmrelayx --add-computer NAME PASSWORD", []string{"ntlmrelayx.py", "-t", "ldaps://dc", "--add-computer", "BEANS$", "Secret123", "-smb2support"}, false, []string{"ntlmrelayx.py", "-t", "ldaps://dc", "--add-computer", "BEANS$", "REDACTED", "-smb2support"}},
	{"ntlmrelayx --add-computer NAME alone", []string{"ntlmrelayx.py", "--add-computer", "BEANS$", "-smb2support"}, false, []string{"ntlmrelayx.py", "--add-computer", "BEANS$", "-smb2support"}},
	{"ntlmrelayx target with a user, no password", []string{"ntlmrelayx.py", "-t", `smb://corp\alice@10.0.0.5`}, false, []string{"ntlmrelayx.py", "-t", `smb://corp\alice@10.0.0.5`}},
	{"ntlmrelayx -k keyword is no secret", []string{"ntlmrelayx.py", "-k", "password"}, false, []string{"ntlmrelayx.py", "-k", "password"}},

	// Credentials with and without a scheme.
	{"url credentials", []string{"tool", "http://bob:s3cret@proxy:3128/x"}, false, []string{"tool", "http://bob:REDACTED@proxy:3128/x"}},
	{"url credentials inside an argument", []string{"tool", "--upstream=socks5://u:p@h:1080", "set x https://a:b@c; y"}, false, []string{"tool", "--upstream=socks5://u:REDACTED@h:1080", "set x https://a:REDACTED@c; y"}},
	{"url, '@' in the password", []string{"tool", "http://bob:p@ss@proxy/x@y"}, false, []string{"tool", "http://bob:REDACTED@proxy/x@y"}},
	{"url, empty user", []string{"tool", "redis://:s3cret@cache:6379"}, false, []string{"tool", "redis://:REDACTED@cache:6379"}},
	{"url without password", []string{"tool", "http://bob@h/", "https://h:443/p"}, false, []string{"tool", "http://bob@h/", "https://h:443/p"}},
	{"url cut after user:", []string{"tool", "http://bob:s3"}, true, []string{"tool", "http://bob:REDACTED"}},
	{"url cut inside an option", []string{"tool", "--upstream=http://bob:s3"}, true, []string{"tool", "--upstream=http://bob:REDACTED"}},
	{"uncut url with port kept", []string{"tool", "http://host:8080"}, false, []string{"tool", "http://host:8080"}},
	{"user:pass@host:port", []string{"tool", "--target", "admin:hunter2@10.0.0.1:8443"}, false, []string{"tool", "--target", "admin:REDACTED@10.0.0.1:8443"}},
	{"user:pass@host inside an argument", []string{"tool", "-t=corp/alice:pw@dc", "relay to alice:pw@dc now"}, false, []string{"tool", "-t=corp/alice:REDACTED@dc", "relay to alice:REDACTED@dc now"}},
	{"'@' in the password inside an argument", []string{"tool", "-c", "connect alice:p@ss@dc now"}, false, []string{"tool", "-c", "connect alice:REDACTED@dc now"}},
	{"an email address as the user", []string{"tool", "alice@corp.com:pw@10.0.0.5"}, false, []string{"tool", "alice@corp.com:REDACTED@10.0.0.5"}},
	{"email address", []string{"tool", "alice@example.com", "--from=bob@example.org"}, false, []string{"tool", "alice@example.com", "--from=bob@example.org"}},
	{"mailto is no user", []string{"tool", "mailto:alice@example.com", "see sip:bob@example.org"}, false, []string{"tool", "mailto:alice@example.com", "see sip:bob@example.org"}},
	{"ssh user@host", []string{"ssh", "-p", "2222", "alice@host", "user@host:22"}, false, []string{"ssh", "-p", "2222", "alice@host", "user@host:22"}},
	{"git remote", []string{"git", "clone", "git@github.com:org/repo.git", "github.com:org/repo@v1.0"}, false, []string{"git", "clone", "git@github.com:org/repo.git", "github.com:org/repo@v1.0"}},
	{"pinned image", []string{"docker", "run", "nginx:1.25@sha256:0123abcd", "registry:5000/team/app@sha256:0123abcd"}, false, []string{"docker", "run", "nginx:1.25@sha256:0123abcd", "registry:5000/team/app@sha256:0123abcd"}},
	{"host:port, IPv6, time", []string{"tool", "10.0.0.1:8080", "fe80::1", "[fe80::1%eth0]:53", "12:30:00"}, false, []string{"tool", "10.0.0.1:8080", "fe80::1", "[fe80::1%eth0]:53", "12:30:00"}},
	{"cut host:port is not a target", []string{"tool", "10.0.0.1:80"}, true, []string{"tool", "10.0.0.1:80"}},

	// -p by tool.
	{"-p is a port to most tools", []string{"tool", "-p", "8080"}, false, []string{"tool", "-p", "8080"}},
	{"mitmproxy -p is a port", []string{"mitmproxy", "-p", "8080"}, false, []string{"mitmproxy", "-p", "8080"}},
	{"sshmitm -p is a port", []string{"sshmitm", "-p", "2222", "10.0.0.5"}, false, []string{"sshmitm", "-p", "2222", "10.0.0.5"}},
	{"sslsplit -p is a pid file", []string{"sslsplit", "-p", "/run/sslsplit.pid"}, false, []string{"sslsplit", "-p", "/run/sslsplit.pid"}},
	{"ntlmrelayx has no -p", []string{"impacket-ntlmrelayx", "-p", "x"}, false, []string{"impacket-ntlmrelayx", "-p", "x"}},
	{"sshpass -p", []string{"sshpass", "-p", "hunter2", "ssh", "-p", "2222", "alice@host"}, false, []string{"sshpass", "-p", "REDACTED", "ssh", "-p", "2222", "alice@host"}},
	{"sshpass -pVALUE", []string{"/usr/bin/sshpass", "-phunter2", "ssh", "host"}, false, []string{"/usr/bin/sshpass", "-pREDACTED", "ssh", "host"}},
	{"nxc -p takes several", []string{"nxc", "smb", "10.0.0.5", "-u", "alice", "-p", "pw1", "pw2", "--local-auth"}, false, []string{"nxc", "smb", "10.0.0.5", "-u", "alice", "-p", "REDACTED", "REDACTED", "--local-auth"}},
	{"nxc -H hash", []string{"netexec", "smb", "10.0.0.5", "-u", "alice", "-H", "31d6cfe0d16ae931b73c59d7e0c089c0"}, false, []string{"netexec", "smb", "10.0.0.5", "-u", "alice", "-H", "REDACTED"}},
	{"crackmapexec run by python", []string{"/usr/bin/python3", "/usr/bin/crackmapexec", "smb", "h", "-p", "pw"}, false, []string{"/usr/bin/python3", "/usr/bin/crackmapexec", "smb", "h", "-p", "REDACTED"}},
	{"python's own options are not the script's", []string{"python3", "-p", "x", "script.py"}, false, []string{"python3", "-p", "x", "script.py"}},
	{"env before the tool", []string{"/usr/bin/env", "LANG=C", "evil-winrm", "-i", "10.0.0.5", "-u", "alice", "-p", "pw", "-P", "5985"}, false, []string{"/usr/bin/env", "LANG=C", "evil-winrm", "-i", "10.0.0.5", "-u", "alice", "-p", "REDACTED", "-P", "5985"}},
	{"hydra -p, -P is a file", []string{"hydra", "-l", "admin", "-p", "pw", "-P", "list.txt", "ssh://h"}, false, []string{"hydra", "-l", "admin", "-p", "REDACTED", "-P", "list.txt", "ssh://h"}},
	{"curl -u user:pass", []string{"curl", "-u", "alice:pw", "--proxy-user=bob:pw2", "-ucarol:pw3", "-U", "dave"}, false, []string{"curl", "-u", "alice:REDACTED", "--proxy-user=bob:REDACTED", "-ucarol:REDACTED", "-U", "dave"}},
	{"smbclient -U user%pass", []string{"smbclient", "//h/share", "-U", `CORP\alice%pw`}, false, []string{"smbclient", "//h/share", "-U", `CORP\alice%REDACTED`}},

	// bettercap.
	{"bettercap -eval set password", []string{"bettercap", "-eval", "set api.rest.password X; set http.proxy.script x.js"}, false, []string{"bettercap", "-eval", "set api.rest.password REDACTED; set http.proxy.script x.js"}},
	{"bettercap -eval set token, key, secret, pass", []string{"bettercap", "-eval", "set a.token t1;set b.key k1\nset c.secret s1 ; set d.pass p1; set api.rest.username u"}, false, []string{"bettercap", "-eval", "set a.token REDACTED;set b.key REDACTED\nset c.secret REDACTED ; set d.pass REDACTED; set api.rest.username u"}},
	{"bettercap -eval quoted value", []string{"bettercap", "-eval", `set api.rest.password "a b;c"; api.rest on`}, false, []string{"bettercap", "-eval", `set api.rest.password "REDACTED"; api.rest on`}},
	{"bettercap -eval keeps the rest", []string{"bettercap", "-iface", "eth0", "-eval", "set arp.spoof.targets 192.0.2.7; set net.sniff.output /tmp/x.pcap; arp.spoof on"}, false, []string{"bettercap", "-iface", "eth0", "-eval", "set arp.spoof.targets 192.0.2.7; set net.sniff.output /tmp/x.pcap; arp.spoof on"}},
	{"bettercap -eval bypass is no pass", []string{"bettercap", "-eval", "set any.proxy.bypass 10.0.0.1"}, false, []string{"bettercap", "-eval", "set any.proxy.bypass 10.0.0.1"}},
	{"bettercap in sh -c", []string{"sh", "-c", "bettercap -eval 'set api.rest.password X' -iface eth0"}, false, []string{"sh", "-c", "bettercap -eval 'set api.rest.password REDACTED' -iface eth0"}},

	// HTTP headers.
	{"-H Authorization", []string{"curl", "-H", "Authorization: Bearer eyJhbGciOi.x.y", "https://h/"}, false, []string{"curl", "-H", "Authorization: Bearer REDACTED", "https://h/"}},
	{"Basic and Digest", []string{"curl", "--header", "Proxy-Authorization: Basic dXNlcjpwYXNz", "--header=authorization: Digest username=\"a\", response=\"b\""}, false, []string{"curl", "--header", "Proxy-Authorization: Basic REDACTED", "--header=authorization: Digest REDACTED"}},
	{"Authorization without a scheme", []string{"curl", "-H", "Authorization:abc123"}, false, []string{"curl", "-H", "Authorization:REDACTED"}},
	{"-H attached", []string{"curl", "-HAuthorization: Bearer x"}, false, []string{"curl", "-HAuthorization: Bearer REDACTED"}},
	{"Cookie keeps the names", []string{"curl", "-H", "Cookie: session=abc; theme=dark", "--set-header", "Set-Cookie: sid=xyz; Path=/; HttpOnly"}, false, []string{"curl", "-H", "Cookie: session=REDACTED; theme=REDACTED", "--set-header", "Set-Cookie: sid=REDACTED; Path=/; HttpOnly"}},
	{"X-Api-Key", []string{"curl", "-H", "X-Api-Key: k"}, false, []string{"curl", "-H", "X-Api-Key: REDACTED"}},
	{"other headers kept", []string{"curl", "-H", "Accept: */*", "-H", "X-Authorization-Mode: strict"}, false, []string{"curl", "-H", "Accept: */*", "-H", "X-Authorization-Mode: strict"}},
	{"mitmproxy --modify-headers", []string{"mitmdump", "--modify-headers", "/~q/Authorization/Bearer x", "--modify-headers", "/Host/example.com"}, false, []string{"mitmdump", "--modify-headers", "/~q/Authorization/Bearer REDACTED", "--modify-headers", "/Host/example.com"}},
	{"mitmproxy -H without a filter", []string{"mitmproxy", "-H", "|Cookie|a=b"}, false, []string{"mitmproxy", "-H", "|Cookie|a=REDACTED"}},
	{"mitmproxy spec attached", []string{"mitmdump", "--modify-headers=:~q:Proxy-Authorization:Basic x", "-H/~q/Cookie/c=d"}, false, []string{"mitmdump", "--modify-headers=:~q:Proxy-Authorization:Basic REDACTED", "-H/~q/Cookie/c=REDACTED"}},
	{"mitmproxy --set modify_headers", []string{"mitmdump", "--set", "modify_headers=/~q/Authorization/Bearer x"}, false, []string{"mitmdump", "--set", "modify_headers=/~q/Authorization/Bearer REDACTED"}},
	{"mitmproxy spec value from a file", []string{"mitmdump", "--modify-headers", "/~q/Authorization/@/etc/token"}, false, []string{"mitmdump", "--modify-headers", "/~q/Authorization/@/etc/token"}},
	{"headers in a shell command", []string{"sh", "-c", `curl -H 'Authorization: Bearer x' -H "Cookie: a=b" https://h/`}, false, []string{"sh", "-c", `curl -H 'Authorization: Bearer REDACTED' -H "Cookie: a=REDACTED" https://h/`}},

	// Code.
	{"python -c literals", []string{"python3", "-c", `import requests; password="x"; token='y'; requests.get(u, headers={"Authorization": "Bearer z"})`}, false, []string{"python3", "-c", `import requests; password="REDACTED"; token='REDACTED'; requests.get(u, headers={"Authorization": "Bearer REDACTED"})`}},
	{"python -c keyword arguments and keys", []string{"python", "-c", `login(user="alice", password='pw'); cfg = {"api_key": "k", "client_secret": "s", "token_type": "bearer"}; self.db_password = """p"""`}, false, []string{"python", "-c", `login(user="alice", password='REDACTED'); cfg = {"api_key": "REDACTED", "client_secret": "REDACTED", "token_type": "bearer"}; self.db_password = """REDACTED"""`}},
	{"python -c annotation, environ, escapes", []string{"python3", "-c", `secret: str = "a\"b"; os.environ["TOKEN"] = 'c'`}, false, []string{"python3", "-c", `secret: str = "REDACTED"; os.environ["TOKEN"] = 'REDACTED'`}},
	{"python -c url", []string{"python3", "-c", `import urllib.request as u; u.urlopen("http://bob:pw@h/x")`}, false, []string{"python3", "-c", `import urllib.request as u; u.urlopen("http://bob:REDACTED@h/x")`}},
	{"python -c nothing secret", []string{"python3", "-c", `import sys; print(sys.argv, {'key': 'v'}, key_count=3, passwd_file="/etc/passwd", token_type="bearer")`}, false, []string{"python3", "-c", `import sys; print(sys.argv, {'key': 'v'}, key_count=3, passwd_file="/etc/passwd", token_type="bearer")`}},
	{"perl -e", []string{"perl", "-e", `my $pass = "pw"; my %h = (token => 'tk');`}, false, []string{"perl", "-e", `my $pass = "REDACTED"; my %h = (token => 'REDACTED');`}},
	{"ruby -e", []string{"ruby", "-e", `Net::HTTP.start(h, password: "pw")`}, false, []string{"ruby", "-e", `Net::HTTP.start(h, password: "REDACTED")`}},
	{"json in an argument", []string{"curl", "-d", `{"username":"alice","password":"pw"}`}, false, []string{"curl", "-d", `{"username":"alice","password":"REDACTED"}`}},
	{"code cut inside a literal", []string{"python3", "-c", `import x; password="hunt`}, true, []string{"python3", "-c", `import x; password="REDACTED`}},
}

func TestRedactArgs(t *testing.T) {
	for _, tt := range redactTests {
		t.Run(tt.name, func(t *testing.T) {
			// GIVEN argv as captured
			in := append([]string(nil), tt.args...)

			// WHEN it is redacted
			got := Args(tt.args, tt.lastCut)

			// THEN only the secrets are gone, the input is untouched, and a
			// second redaction changes nothing
			assert.Equal(t, tt.want, got)
			assert.Equal(t, in, tt.args, "input not modified")
			assert.Equal(t, got, Args(got, tt.lastCut), "idempotent")
		})
	}
}

func TestRedactArgsBoundsGrowth(t *testing.T) {
	// GIVEN arguments of many one-letter passwords and cookies, each of
	// which would grow seven bytes when replaced
	arg := strings.Repeat("a:b@c ", 1024)

	// WHEN it is redacted
	got := Args([]string{"tool", arg, "-H", "Cookie: " + strings.Repeat("a=b;", 1024)}, false)

	// THEN it is replaced whole rather than grown without bound
	assert.Equal(t, []string{"tool", "REDACTED", "-H", "REDACTED"}, got)
}

// FuzzRedact checks what must hold for any argv: no panic, as many
// arguments out as in, each at most maxArgGrowth longer, and a second
// redaction that changes nothing. Arguments are the input split at NUL, as
// the kernel lays them out.
func FuzzRedact(f *testing.F) {
	for _, tt := range redactTests {
		f.Add(strings.Join(tt.args, "\x00"), tt.lastCut)
	}
	f.Fuzz(func(t *testing.T, s string, lastCut bool) {
		args := strings.Split(s, "\x00")
		in := append([]string(nil), args...)

		once := Args(args, lastCut)
		twice := Args(once, lastCut)

		require.Equal(t, in, args, "input not modified")
		require.Len(t, once, len(args))
		for i := range once {
			require.LessOrEqual(t, len(once[i]), len(args[i])+maxArgGrowth, "argument %d grew too much", i)
		}
		require.Equal(t, once, twice, "not idempotent")

		// A secret in a code literal, however the code around it reads,
		// never comes out: as "name=value" in a list, and after a secret
		// option. The input is the code around it; the secret is fixed.
		const secret = "Zq7S3cretXv9"
		for _, lit := range []string{`"upstream_auth=` + secret + `"`, `'--password', '` + secret + `'`, `"--proxyauth", "alice:` + secret + `"`} {
			code := s + "; main([" + lit + "])"
			if strings.ContainsAny(s, "'\"\\") {
				continue // the fuzzed code may open a literal that swallows ours
			}
			got := Args([]string{"python3", "-c", code}, lastCut)
			require.NotContains(t, strings.Join(got, " "), secret, "secret in %q", code)
		}
	})
}

// TestRedactSharesTheDetectionGrammar pins that redaction finds the script
// where detection does: internal/argv's grammar, whatever options with
// values come first.
func TestRedactSharesTheDetectionGrammar(t *testing.T) {
	for _, args := range [][]string{
		{"python3", "--check-hash-based-pycs", "always", "T", "-p", "secret"},
		{"python3", "-W", "ignore", "-X", "dev", "/usr/bin/nxc", "-p", "x"},
		{"python3", "-Wignore", "-I", "tool.py"},
		{"python3", "-c", "code", "-p", "x"},
		{"perl", "-I", "lib", "-w", "s.pl", "-p"},
		{"ruby", "-r", "x", "s.rb"},
	} {
		kind := argv.Python
		switch args[0] {
		case "perl":
			kind = argv.Perl
		case "ruby":
			kind = argv.Ruby
		}
		inv := argv.Parse(kind, args)
		name, at := program(args)
		if inv.Script == "" {
			assert.Equal(t, len(args), at, "%v: redaction found a script, detection none", args)
			continue
		}
		assert.Equal(t, inv.At, at, "%v: redaction reads the script at %d (%s), detection at %d (%s)", args, at, name, inv.At, inv.Script)
		assert.Equal(t, toolName(inv.Script), name, "%v", args)
	}
}
