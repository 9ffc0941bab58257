// SPDX-License-Identifier: Apache-2.0

package argv

import (
	"reflect"
	"testing"
)

func TestCapturedViews(t *testing.T) {
	cases := []struct {
		name  string
		c     Captured
		shown []string
		read  []string
	}{
		{"whole", Captured{Head: []string{"ld.so", "/usr/bin/ettercap"}},
			[]string{"ld.so", "/usr/bin/ettercap"}, []string{"ld.so", "/usr/bin/ettercap"}},
		{"elided", Captured{Head: []string{"python3", "-W", "ign"}, Tail: []string{"ore", "/x/mitmweb", "-p"}, Elided: true},
			[]string{"python3", "-W", "ign", "[middle]", "ore", "/x/mitmweb", "-p"}, []string{"python3", "-W", Elided, "/x/mitmweb", "-p"}},
		{"argv[0] is the piece", Captured{Head: []string{"pyth"}, Tail: []string{"on3"}, Elided: true},
			[]string{"pyth", "[middle]", "on3"}, []string{"", Elided}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.c.Shown("[middle]"); !reflect.DeepEqual(got, c.shown) {
				t.Errorf("Shown = %q, want %q", got, c.shown)
			}
			if got := c.c.Read(); !reflect.DeepEqual(got, c.read) {
				t.Errorf("Read = %q, want %q", got, c.read)
			}
		})
	}
	// python3 -W ign + ore /x/mitmweb -p: 8+3+4 + 4+11+3 = 33 bytes kept
	if got := cases[1].c.Missing(100); got != 67 {
		t.Errorf("Missing(100) = %d, want 67", got)
	}
	if got := cases[1].c.Missing(10); got != 0 {
		t.Errorf("Missing(10) = %d, want 0 (a total below what was kept)", got)
	}
}
