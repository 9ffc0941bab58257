// SPDX-License-Identifier: Apache-2.0

package detect

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mitmexec/mitmexec/internal/argv"
	"github.com/mitmexec/mitmexec/internal/elfid"
)

// Tool is one catalog entry. The catalog is data: the rule, the kernel's name
// table, the start-up fingerprinting, the docs and the tests all read it.
type Tool struct {
	ID        uint16 // assigned by the catalog, 1-based; the kernel carries it
	Name      string // canonical name, becomes mitmexec.tool.name
	Technique string // the tool's own ATT&CK technique
	// Executables are the file names the tool is installed under (Debian
	// prefixes thc-ipv6 with atk6-, Kali ships impacket-*).
	Executables []string
	// Scripts are script file names the tool is run as through an
	// interpreter (python3 Responder.py), matched on the exact base name.
	Scripts []string
	// Modules are Python modules whose -m or import starts the tool.
	Modules []string
	// Entry optionally narrows a shared module to this tool's entry function
	// (mitmproxy.tools.main serves mitmproxy, mitmdump and mitmweb).
	Entry string
	// SHA256 lists known builds (hex), beyond those fingerprinted on the host.
	SHA256 []string
	// GoModules are main module paths in a Go build's build info
	// (github.com/bettercap/bettercap): any build of the tool, renamed or
	// modified, carries it unless rebuilt from changed sources.
	GoModules []string
	// SectionSHA256 are hashes of a build's .text or .rodata section (hex):
	// they survive appended bytes, added or stripped sections and a new name.
	// The installed builds' are added at start.
	SectionSHA256 []string
	// Strings must all appear in a build's read-only data, and Libraries
	// all among its DT_NEEDED entries, for an unknown build to be this
	// tool: a signature for builds that say nothing else.
	Strings   []string
	Libraries []string
	// Action overrides the receiver's action for this tool ("", "alert", "kill").
	Action string
	// Disabled switches the entry off.
	Disabled bool
}

// Merge applies overrides to a catalog: an override naming an existing tool
// extends its file names, modules and hashes and replaces the technique,
// action and switch it sets; any other override is a new tool.
func Merge(base, overrides []Tool) []Tool {
	out := append([]Tool(nil), base...)
	for _, o := range overrides {
		i := -1
		for j := range out {
			if out[j].Name == o.Name {
				i = j
				break
			}
		}
		if i < 0 {
			out = append(out, o)
			continue
		}
		t := &out[i]
		t.Executables = appendNew(t.Executables, o.Executables)
		t.Scripts = appendNew(t.Scripts, o.Scripts)
		t.Modules = appendNew(t.Modules, o.Modules)
		t.SHA256 = appendNew(t.SHA256, o.SHA256)
		t.GoModules = appendNew(t.GoModules, o.GoModules)
		t.SectionSHA256 = appendNew(t.SectionSHA256, o.SectionSHA256)
		if len(o.Strings) > 0 || len(o.Libraries) > 0 {
			// a signature is one conjunction: an override replaces it
			t.Strings, t.Libraries = o.Strings, o.Libraries
		}
		if o.Technique != "" {
			t.Technique = o.Technique
		}
		if o.Action != "" {
			t.Action = o.Action
		}
		if o.Entry != "" {
			t.Entry = o.Entry
		}
		t.Disabled = o.Disabled
	}
	return out
}

func appendNew(list, more []string) []string {
	out := append([]string(nil), list...)
	for _, m := range more {
		found := false
		for _, x := range out {
			if x == m {
				found = true
				break
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// DefaultTools returns the built-in catalog, a fresh copy on every call.
func DefaultTools() []Tool {
	return []Tool{
		{Name: "ettercap", Technique: "T1557.002", Executables: []string{"ettercap", "ettercap-pkexec", "ettercap-text-only"}, Strings: signature("55736167653a202573205b4f5054494f4e535d205b544152474554315d205b544152474554325d", "706572666f726d2061206d69746d2061747461636b")},
		{Name: "bettercap", Technique: "T1557", Executables: []string{"bettercap"}, GoModules: []string{"github.com/bettercap/bettercap"}},
		{Name: "mitmproxy", Technique: "T1557", Executables: []string{"mitmproxy"}, Modules: []string{"mitmproxy.tools.main", "mitmproxy.tools.console"}, Entry: "mitmproxy"},
		{Name: "mitmdump", Technique: "T1557", Executables: []string{"mitmdump"}, Modules: []string{"mitmproxy.tools.main", "mitmproxy.tools.dump"}, Entry: "mitmdump"},
		{Name: "mitmweb", Technique: "T1557", Executables: []string{"mitmweb"}, Modules: []string{"mitmproxy.tools.main", "mitmproxy.tools.web"}, Entry: "mitmweb"},
		{Name: "arpspoof", Technique: "T1557.002", Executables: []string{"arpspoof"}, Strings: signature("55736167653a2061727073706f6f66205b2d6920696e746572666163655d", "636f756c646e27742061727020666f722073706f6f6620686f7374202573")},
		{Name: "dnsspoof", Technique: "T1557", Executables: []string{"dnsspoof"}, Strings: signature("55736167653a20646e7373706f6f66205b2d6920696e746572666163655d", "7564702064737420706f727420353320616e64206e6f7420737263202573")},
		{Name: "sshmitm", Technique: "T1557", Executables: []string{"sshmitm"}, Strings: signature("55736167653a207373686d69746d205b2d645d205b2d495d205b2d7020706f72745d", "6261642076657273696f6e20737472696e672066726f6d20636c69656e74")},
		{Name: "webmitm", Technique: "T1557", Executables: []string{"webmitm"}, Strings: signature("55736167653a207765626d69746d205b2d645d205b686f73745d", "6f70656e73736c2067656e727361202d6f7574207765626d69746d2e6372742031303234")},
		{Name: "macof", Technique: "T1557", Executables: []string{"macof"}, Strings: signature("55736167653a206d61636f66205b2d73207372635d205b2d64206473745d", "25732025732e2564203e2025732e25643a20532025753a25752830292077696e20353132")},
		{Name: "sslsplit", Technique: "T1557", Executables: []string{"sslsplit"}, Strings: signature("68747470733a2f2f7777772e726f652e63682f53534c73706c6974", "534e4920686f73746e616d65206c6f6f6b7570206f6e6c7920776f726b7320666f722073736c20616e642068747470732070726f78797370656373")},
		{Name: "sslstrip", Technique: "T1557", Executables: []string{"sslstrip"}, Scripts: []string{"sslstrip.py"}, Modules: []string{"sslstrip"}},
		{Name: "yersinia", Technique: "T1557.003", Executables: []string{"yersinia"}, Strings: signature("59657273696e696120646576656c6f70657273203c79657273696e69614079657273696e69612e6e65743e", "55736167653a202573205b2d6856474944645d205b2d6c206c6f6766696c655d205b2d6320636f6e6666696c655d2070726f746f636f6c")},
		{Name: "parasite6", Technique: "T1557", Executables: []string{"parasite6", "atk6-parasite6"}, Strings: signature("5468697320697320616e20224152502073706f6f6665722220666f722049507636", "53796e7461783a202573205b2d6c524648445d20696e74657266616365205b66616b652d6d61635d")},
		{Name: "fake_router6", Technique: "T1557", Executables: []string{"fake_router6", "atk6-fake_router6", "fake_router26", "atk6-fake_router26"}, Strings: signature("416e6e6f756e636520796f757273656c66206173206120726f7574657220616e642074727920746f206265636f6d65207468652064656661756c7420726f757465722e", "53796e7461783a202573205b2d4846445d20696e74657266616365206e6574776f726b2d616464726573732f7072656669782d6c656e677468")},
		{Name: "redir6", Technique: "T1557", Executables: []string{"redir6", "atk6-redir6"}, Strings: signature("53656e742049434d50763620726564697265637420666f72202573", "53796e7461783a20257320696e746572666163652076696374696d2d6970207461726765742d6970206f726967696e616c2d726f75746572206e65772d726f75746572")},
		{Name: "responder", Technique: "T1557.001", Executables: []string{"responder"}, Scripts: []string{"Responder.py", "responder.py"}, Modules: []string{"Responder"}},
		{Name: "mitm6", Technique: "T1557", Executables: []string{"mitm6"}, Scripts: []string{"mitm6.py"}, Modules: []string{"mitm6", "mitm6.mitm6"}},
		{Name: "ntlmrelayx", Technique: "T1557.001", Executables: []string{"ntlmrelayx", "impacket-ntlmrelayx", "ntlmrelayx.py"}, Scripts: []string{"ntlmrelayx.py"}},
		{Name: "smbrelayx", Technique: "T1557.001", Executables: []string{"smbrelayx", "impacket-smbrelayx", "smbrelayx.py"}, Scripts: []string{"smbrelayx.py"}},
		{Name: "evilginx", Technique: "T1557", Executables: []string{"evilginx", "evilginx2"}},
		{Name: "mitmf", Technique: "T1557", Executables: []string{"mitmf", "mitmf.py"}, Scripts: []string{"mitmf.py"}},
	}
}

// signature decodes string signatures kept hex-encoded: the plain bytes
// must not appear in this program, or the collector's own binary (and
// every program that links the catalog) would carry every signature.
func signature(hexStrings ...string) []string {
	out := make([]string, len(hexStrings))
	for i, h := range hexStrings {
		b, err := hex.DecodeString(h)
		if err != nil {
			panic("catalog signature " + h + " is not hex: " + err.Error()) // a constant: caught by the tests
		}
		out[i] = string(b)
	}
	return out
}

// Catalog indexes the tools for the rule.
type Catalog struct {
	tools    []*Tool
	byName   map[string]*Tool // executable and script file names
	byExec   map[string]*Tool // executable file names only
	byModule map[string][]*Tool
	bySHA256 map[string]*Tool
	byGoMod  map[string]*Tool
	bySect   map[string]*Tool
	needles  []string
	// entryCalls match a call of a tool's entry function (mitmdump(...)),
	// which tells the tools that share a module apart.
	entryCalls map[*Tool]*regexp.Regexp
}

// NewCatalog validates and indexes tools. Tool IDs are assigned in order.
func NewCatalog(tools []Tool) (*Catalog, error) {
	c := &Catalog{
		byName:     map[string]*Tool{},
		byExec:     map[string]*Tool{},
		byModule:   map[string][]*Tool{},
		bySHA256:   map[string]*Tool{},
		byGoMod:    map[string]*Tool{},
		bySect:     map[string]*Tool{},
		entryCalls: map[*Tool]*regexp.Regexp{},
	}
	seen := map[string]bool{}
	for i := range tools {
		t := tools[i]
		if t.Name == "" {
			return nil, fmt.Errorf("tool %d: name must not be empty", i)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tool %q: defined twice", t.Name)
		}
		seen[t.Name] = true
		if t.Disabled {
			continue
		}
		if len(c.tools) >= 0xfffe {
			return nil, fmt.Errorf("tool %q: more than %d tools", t.Name, 0xfffe)
		}
		t.ID = uint16(len(c.tools) + 1)
		tp := &t
		c.tools = append(c.tools, tp)
		for _, n := range append(append([]string{}, t.Executables...), t.Scripts...) {
			if !IsBaseName(n) {
				return nil, fmt.Errorf("tool %q: file name %q must be a base name", t.Name, n)
			}
			if other, ok := c.byName[n]; ok && other != tp {
				return nil, fmt.Errorf("tool %q: file name %q already belongs to %q", t.Name, n, other.Name)
			}
			c.byName[n] = tp
		}
		for _, n := range t.Executables {
			c.byExec[n] = tp
		}
		for _, m := range t.Modules {
			c.byModule[m] = append(c.byModule[m], tp)
		}
		if t.Entry != "" {
			c.entryCalls[tp] = regexp.MustCompile(`\b` + regexp.QuoteMeta(t.Entry) + `\s*\(`)
		}
		for _, h := range t.SHA256 {
			h = strings.ToLower(h)
			if !IsSHA256(h) {
				return nil, fmt.Errorf("tool %q: sha256 %q is not 64 hex digits", t.Name, h)
			}
			c.bySHA256[h] = tp
		}
		for _, h := range t.SectionSHA256 {
			h = strings.ToLower(h)
			if !IsSHA256(h) {
				return nil, fmt.Errorf("tool %q: section_sha256 %q is not 64 hex digits", t.Name, h)
			}
			c.bySect[h] = tp
		}
		for _, m := range t.GoModules {
			if m == "" || strings.ContainsAny(m, " \t\n") {
				return nil, fmt.Errorf("tool %q: go module %q is not a module path", t.Name, m)
			}
			c.byGoMod[m] = tp
		}
		for _, n := range t.Strings {
			if len(n) < minSignatureString {
				return nil, fmt.Errorf("tool %q: signature string %q is %d bytes, at least %d are needed", t.Name, n, len(n), minSignatureString)
			}
			c.needles = append(c.needles, n)
		}
		if len(t.Libraries) > 0 && len(t.Strings) == 0 {
			return nil, fmt.Errorf("tool %q: libraries %q need strings beside them: libraries are shared by other programs", t.Name, t.Libraries)
		}
	}
	return c, nil
}

// IsSHA256 reports whether h is a SHA-256 digest in hex, either case: the
// catalog and the receiver's configuration accept the same spellings.
func IsSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, r := range strings.ToLower(h) {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// IsBaseName reports whether a tool's file name is a base name: the kernel
// and the catalog match the loaded file's dentry name, never a path.
func IsBaseName(name string) bool {
	return name != "" && !strings.ContainsRune(name, '/')
}

// Tools returns the tools in ID order.
func (c *Catalog) Tools() []*Tool { return c.tools }

// ByID returns the tool the kernel named by its ID.
func (c *Catalog) ByID(id uint16) *Tool {
	if id == 0 || int(id) > len(c.tools) {
		return nil
	}
	return c.tools[id-1]
}

// ByFileName returns the tool installed or run under exactly this base name.
func (c *Catalog) ByFileName(name string) *Tool { return c.byName[name] }

// HasSHA256 reports whether the catalog lists exact builds by hash.
func (c *Catalog) HasSHA256() bool { return len(c.bySHA256) > 0 }

// BySHA256 returns the tool with this known build.
func (c *Catalog) BySHA256(h string) *Tool { return c.bySHA256[h] }

// minSignatureString keeps signature strings long enough to say something.
const minSignatureString = 8

// Needles returns every signature string, for the ELF reader to look for.
func (c *Catalog) Needles() []string { return c.needles }

// StructureTool returns the tool an ELF file's structure shows and what
// matched: its Go module, a code or constant-data section of a known build,
// or a signature of strings and libraries.
func (c *Catalog) StructureTool(id *elfid.Identity) (*Tool, string) {
	if t := c.byGoMod[id.GoModule]; t != nil && id.GoModule != "" {
		return t, "go module " + id.GoModule
	}
	for _, s := range id.Code {
		if t := c.bySect[s.SHA256]; t != nil {
			return t, "section " + s.Name + " sha256 " + s.SHA256
		}
	}
	// A Go program that holds a tool's strings is a program about tools
	// (a scanner, this collector): string signatures are for the tools' own
	// C builds.
	if id.GoModule != "" {
		return nil, ""
	}
	for _, t := range c.tools {
		if len(t.Strings) == 0 || !containsAll(id.Found, t.Strings) || !containsAll(id.Needed, t.Libraries) {
			continue
		}
		detail := "strings " + strings.Join(t.Strings, ", ")
		if len(t.Libraries) > 0 {
			detail += "; libraries " + strings.Join(t.Libraries, ", ")
		}
		return t, detail
	}
	return nil, ""
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// Executables returns every executable name with its tool, for the kernel's
// name table and the start-up fingerprinting.
func (c *Catalog) Executables() map[string]*Tool { return c.byExec }

// InterpreterKind classifies an interpreter binary by how its arguments name
// the program it runs (the grammar is internal/argv's).
type InterpreterKind = argv.Kind

const (
	NotInterpreter = argv.NotInterpreter
	Python         = argv.Python
	Shell          = argv.Shell
	Perl           = argv.Perl
	Ruby           = argv.Ruby
	Loader         = argv.Loader
	MuslLoader     = argv.MuslLoader
)

// Interpreter classifies a loaded file's base name (internal/argv's list):
// python3.11 is Python.
func (c *Catalog) Interpreter(name string) InterpreterKind { return argv.Interpreter(name) }
