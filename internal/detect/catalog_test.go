// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestCatalogValidation(t *testing.T) {
	cases := map[string]struct {
		tools []Tool
		want  string
	}{
		"empty name":  {[]Tool{{}}, "tool 0: name must not be empty"},
		"twice":       {[]Tool{{Name: "a"}, {Name: "a"}}, `tool "a": defined twice`},
		"path":        {[]Tool{{Name: "a", Executables: []string{"/usr/bin/a"}}}, `tool "a": file name "/usr/bin/a" must be a base name`},
		"shared name": {[]Tool{{Name: "a", Executables: []string{"x"}}, {Name: "b", Executables: []string{"x"}}}, `tool "b": file name "x" already belongs to "a"`},
		"bad sha":     {[]Tool{{Name: "a", SHA256: []string{"abc"}}}, `tool "a": sha256 "abc" is not 64 hex digits`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewCatalog(c.tools)
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestDefaultCatalogCoversTheDesignCatalog(t *testing.T) {
	cat, err := NewCatalog(DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Fields("ettercap bettercap mitmproxy mitmdump mitmweb arpspoof dnsspoof sshmitm webmitm macof sslsplit sslstrip yersinia parasite6 fake_router6 redir6 responder mitm6 ntlmrelayx smbrelayx evilginx mitmf") {
		found := false
		for _, tl := range cat.Tools() {
			if tl.Name == name {
				found = true
				if !strings.HasPrefix(tl.Technique, "T1557") {
					t.Errorf("%s: technique %q", name, tl.Technique)
				}
			}
		}
		if !found {
			t.Errorf("%s is missing from the catalog", name)
		}
	}
}

func TestMergeOverrides(t *testing.T) {
	// GIVEN the default catalog, an extension of ettercap, a disabled macof and a new tool
	tools := Merge(DefaultTools(), []Tool{
		{Name: "ettercap", Executables: []string{"ec"}, SHA256: []string{strings.Repeat("a", 64)}, Action: "kill"},
		{Name: "macof", Disabled: true},
		{Name: "netsniff-mitm", Technique: "T1557", Executables: []string{"netsniff-mitm"}, Modules: []string{"nsm.main"}},
	})
	cat, err := NewCatalog(tools)
	if err != nil {
		t.Fatal(err)
	}
	// THEN the extension adds to the entry, the switch removes one, the new tool exists
	if tl := cat.ByFileName("ec"); tl == nil || tl.Name != "ettercap" || tl.Action != "kill" {
		t.Errorf("extended ettercap: %+v", tl)
	}
	if tl := cat.ByFileName("ettercap"); tl == nil {
		t.Error("the extension replaced ettercap's own names")
	}
	if cat.BySHA256(strings.Repeat("a", 64)) == nil {
		t.Error("extra sha256 not indexed")
	}
	if cat.ByFileName("macof") != nil {
		t.Error("disabled macof still matches")
	}
	if tl := cat.ByFileName("netsniff-mitm"); tl == nil || tl.Technique != "T1557" {
		t.Errorf("new tool: %+v", tl)
	}
	if tl, _ := cat.pythonCodeTool("import nsm.main"); tl == nil || tl.Name != "netsniff-mitm" {
		t.Errorf("new tool's module: %+v", tl)
	}
}

// The catalog keeps its string signatures encoded: a program that links it
// (this collector, this test) must not carry them, or it would match them.
func TestCatalogBinaryCarriesNoSignature(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(DefaultTools())
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Needles()) < 10 {
		t.Fatalf("catalog has %d signature strings, want the dsniff, thc-ipv6, sslsplit, yersinia and ettercap ones", len(cat.Needles()))
	}
	for _, n := range cat.Needles() {
		if bytes.Contains(b, []byte(n)) {
			t.Errorf("signature %q is in the test binary as plain bytes", n)
		}
	}
}
