// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// TestOriginWords runs action/origin.js on records of every origin kind:
// the words the summary and the annotations use, a hostile name kept
// inert in the Markdown table, and the file SARIF points at.
func TestOriginWords(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.SkipOrFail(t, "node is not installed (test/setup.sh installs nodejs): %v", err)
	}
	o := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m["mitmexec.origin."+kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		rec        map[string]any
		words, loc string
	}{
		{o("kind", "package_script", "package.name", "left-pad", "package.version", "1.3.0", "lifecycle_event", "postinstall",
			"package.dependency", true, "package.manager", "npm", "project.dir", "/w/app", "file", "/w/app/node_modules/left-pad/package.json"),
			"started by the postinstall script of dependency `left-pad@1.3.0` (npm)", "app/package.json"},
		{o("kind", "package_script", "package.name", "app", "lifecycle_event", "build", "package.dependency", false,
			"package.manager", "yarn", "file", "/w/package.json"),
			"started by the build script of the project `app` (yarn)", "package.json"},
		{o("kind", "python_build", "package.name", "netutil", "package.version", "2.0.1", "file", "/w/pyproject.toml"),
			"started by the build of Python distribution `netutil@2.0.1`", "pyproject.toml"},
		{o("kind", "python_build", "file", "/tmp/pip-req-build-x/setup.py"),
			"started by the build of Python distribution in `/tmp/pip-req-build-x/setup.py`", ""},
		{o("kind", "pytest", "test", "tests/test_net.py::test_proxy", "file", "tests/test_net.py"),
			"started by test `tests/test_net.py::test_proxy`", "tests/test_net.py"},
		{o("kind", "pytest"), "started by a pytest run (the test is unknown)", ""},
		{o("kind", "go_test", "test", "netprobe", "file", "/w/internal/netprobe"),
			"started by the Go tests of package `netprobe` in `/w/internal/netprobe`", "internal/netprobe"},
		{o("kind", "cargo_build_script", "package.name", "netsys", "package.version", "0.3.0", "file", "/home/u/.cargo/registry/netsys/Cargo.toml"),
			"started by the build script of crate `netsys@0.3.0`", ""},
		{o("kind", "make", "make.target", "check", "file", "/w/ci.mk"), "started by make target `check`", "ci.mk"},
		{o("kind", "make"), "started by a make recipe (make's default goal)", ""},
		{o("kind", "script", "file", "/w/ci/run.sh"), "started by script `/w/ci/run.sh`", "ci/run.sh"},
		{o("kind", "script", "file", "/etc/../w/x.sh"), "started by script `/etc/../w/x.sh`", "x.sh"},
		{o("kind", "script", "file", "/elsewhere/x.sh"), "started by script `/elsewhere/x.sh`", ""},
		{map[string]any{}, "", ""},
		// A hostile name: no code span breaks out, no HTML, no new line.
		{o("kind", "package_script", "package.name", "a`</code><img src=x>|\n# h", "lifecycle_event", "post install"),
			"started by the `post install` script of package `a'</code><img src=x>| # h`", ""},
	}
	recs := make([]map[string]any, len(cases))
	for i, c := range cases {
		recs[i] = c.rec
	}
	in, _ := json.Marshal(recs)
	script := `const o = require('./origin.js');
const recs = JSON.parse(process.argv[1]);
const cell = (s) => '<code>' + s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '&#124;') + '</code>';
console.log(JSON.stringify(recs.map((d) => [o.describe(d), o.location(d, '/w'), o.describe(d, cell)])));`
	out, err := exec.Command(node, "-e", script, string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got [][3]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, c := range cases {
		if got[i][0] != c.words || got[i][1] != c.loc {
			t.Errorf("%v:\n got %q at %q\nwant %q at %q", c.rec, got[i][0], got[i][1], c.words, c.loc)
		}
	}
	if md := got[len(got)-1][2]; md != "started by the <code>post install</code> script of package <code>a`&lt;/code&gt;&lt;img src=x&gt;&#124; # h</code>" {
		t.Errorf("hostile name in Markdown: %s", md)
	}
}
