package receiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		lastCut bool
		want    []string
	}{
		{"nothing secret", []string{"ettercap", "-T", "-M", "arp"}, false, []string{"ettercap", "-T", "-M", "arp"}},
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
		{"switch before an option", []string{"tool", "--no-auth", "--verbose"}, false, []string{"tool", "--no-auth", "--verbose"}},
		{"secret option last", []string{"tool", "--password"}, false, []string{"tool", "--password"}},
		{"--passive is not a password", []string{"tool", "--passive", "eth0"}, false, []string{"tool", "--passive", "eth0"}},
		{"--bypass is not a password", []string{"tool", "--bypass", "x"}, false, []string{"tool", "--bypass", "x"}},
		{"--author is not auth", []string{"tool", "--author", "x"}, false, []string{"tool", "--author", "x"}},
		{"-p is too generic", []string{"tool", "-p", "8080"}, false, []string{"tool", "-p", "8080"}},
		{"argv[0] is never an option", []string{"--password", "x"}, false, []string{"--password", "x"}},
		{"url credentials", []string{"tool", "http://bob:s3cret@proxy:3128/x"}, false, []string{"tool", "http://bob:REDACTED@proxy:3128/x"}},
		{"url credentials inside an argument", []string{"tool", "--upstream=socks5://u:p@h:1080", "set x https://a:b@c; y"}, false, []string{"tool", "--upstream=socks5://u:REDACTED@h:1080", "set x https://a:REDACTED@c; y"}},
		{"url without password", []string{"tool", "http://bob@h/", "https://h:443/p"}, false, []string{"tool", "http://bob@h/", "https://h:443/p"}},
		{"url cut after user:", []string{"tool", "http://bob:s3"}, true, []string{"tool", "http://bob:REDACTED"}},
		{"uncut url with port kept", []string{"tool", "http://host:8080"}, false, []string{"tool", "http://host:8080"}},
		{"empty", nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]string(nil), tt.args...)
			got := redactArgs(tt.args, tt.lastCut)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, in, tt.args, "input not modified")
		})
	}
}
