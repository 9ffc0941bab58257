// SPDX-License-Identifier: Apache-2.0

package detect

import "testing"

// TestScriptOf: internal/origin names an ancestor's script with the rule's
// own option grammar, so the two never disagree on which argument is the
// script.
func TestScriptOf(t *testing.T) {
	cat, err := NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv   []string
		script string
		interp bool
	}{
		{[]string{"bash", "-e", "ci/run.sh"}, "ci/run.sh", true},
		{[]string{"/bin/sh", "-c", "make test"}, "", true},
		{[]string{"python3.11", "--check-hash-based-pycs", "always", "tools/gen.py"}, "tools/gen.py", true},
		{[]string{"python3", "-m", "pytest"}, "", true},
		{[]string{"perl", "-I", "lib", "t/net.pl"}, "t/net.pl", true},
		{[]string{"/lib64/ld-linux-x86-64.so.2", "/usr/bin/ettercap"}, "", false},
		{[]string{"make", "check"}, "", false},
		{nil, "", false},
	} {
		script, interp := cat.ScriptOf(c.argv)
		if script != c.script || interp != c.interp {
			t.Errorf("%q: %q %v, want %q %v", c.argv, script, interp, c.script, c.interp)
		}
	}
}
