// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivilegedOriginRealPackageManagers runs real npm, pip, pytest, go
// test and make, each starting a real tool (arpspoof -h, which exits at
// once) with no registry and no network, and checks the origin the record
// names. Each origin's process outlives the tool by a second (a sleep after
// it), so the read never races the script's exit; how often a tool that is
// a script's very last command loses its context is what
// TestPrivilegedCIContextSources measures for the same reads.
func TestPrivilegedOriginRealPackageManagers(t *testing.T) {
	l := startLive(t, nil)
	arpspoof := lookPath(t, "arpspoof")
	tool := func(marker string) string { return fmt.Sprintf("%s -h %s || true; sleep 1", arpspoof, marker) }

	t.Run("npm dependency postinstall and a nested npm run", func(t *testing.T) {
		npm := lookPath(t, "npm")
		dir := t.TempDir()
		dep, nested := newMarker("npm-postinstall"), newMarker("npm-nested")
		writeIn(t, filepath.Join(dir, "left-pad", "package.json"), fmt.Sprintf(
			`{"name": "left-pad", "version": "1.3.0", "scripts": {"postinstall": %q}}`, tool(dep)))
		home := filepath.Join(dir, "home")
		env := append(os.Environ(), "HOME="+home, "npm_config_cache="+filepath.Join(home, "cache"),
			"npm_config_update_notifier=false", "npm_config_audit=false", "npm_config_fund=false")
		// a tarball, as a registry serves it: npm extracts it under node_modules
		run(t, filepath.Join(dir, "left-pad"), env, npm, "pack", "--pack-destination", dir)
		writeIn(t, filepath.Join(dir, "app", "package.json"), fmt.Sprintf(
			`{"name": "app", "version": "0.1.0", "dependencies": {"left-pad": "file:../left-pad-1.3.0.tgz"},
			  "scripts": {"netcheck": "npm run probe", "probe": %q}}`, tool(nested)))
		app := filepath.Join(dir, "app")
		run(t, app, env, npm, "install", "--offline")
		run(t, app, env, npm, "run", "netcheck")

		r := onlyOne(t, l, dep)
		wantOrigin(t, r, map[string]any{"kind": "package_script", "package.manager": "npm", "package.name": "left-pad",
			"package.version": "1.3.0", "package.dependency": true, "lifecycle_event": "postinstall",
			"file": filepath.Join(app, "node_modules", "left-pad", "package.json"), "project.dir": app})
		r = onlyOne(t, l, nested)
		wantOrigin(t, r, map[string]any{"kind": "package_script", "package.name": "app", "package.dependency": false,
			"lifecycle_event": "probe", "file": filepath.Join(app, "package.json")})
	})

	// yarn 1 and pnpm: the dependency a tarball as a registry serves it,
	// installed offline; pnpm runs a dependency's install scripts only for
	// the packages the project allows (onlyBuiltDependencies).
	for _, pm := range []struct{ name, allow string }{
		{"yarn", ""},
		{"pnpm", `, "pnpm": {"onlyBuiltDependencies": ["net-probe"]}`},
	} {
		t.Run(pm.name+" dependency postinstall", func(t *testing.T) {
			bin := lookPath(t, pm.name)
			dir := t.TempDir()
			m := newMarker(pm.name + "-postinstall")
			writeIn(t, filepath.Join(dir, "net-probe", "package.json"), fmt.Sprintf(
				`{"name": "net-probe", "version": "2.1.0", "scripts": {"postinstall": %q}}`, tool(m)))
			home := filepath.Join(dir, "home")
			env := append(os.Environ(), "HOME="+home, "npm_config_cache="+filepath.Join(home, "cache"),
				"XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_DATA_HOME="+filepath.Join(home, "data"),
				"YARN_CACHE_FOLDER="+filepath.Join(home, "yarn"), "npm_config_store_dir="+filepath.Join(home, "store"))
			run(t, filepath.Join(dir, "net-probe"), env, lookPath(t, "npm"), "pack", "--pack-destination", dir)
			app := filepath.Join(dir, "app")
			writeIn(t, filepath.Join(app, "package.json"), fmt.Sprintf(
				`{"name": "app", "version": "0.1.0", "dependencies": {"net-probe": "file:../net-probe-2.1.0.tgz"}%s}`, pm.allow))
			run(t, app, env, bin, "install", "--offline")
			wantOrigin(t, onlyOne(t, l, m), map[string]any{"kind": "package_script", "package.manager": pm.name,
				"package.name": "net-probe", "package.version": "2.1.0", "package.dependency": true, "lifecycle_event": "postinstall"})
		})
	}

	t.Run("pip build of a local package", func(t *testing.T) {
		dir := t.TempDir()
		m := newMarker("pip-build")
		pkg := filepath.Join(dir, "netutil")
		writeIn(t, filepath.Join(pkg, "pyproject.toml"), "[build-system]\nrequires = [\"setuptools\"]\n"+
			"build-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"netutil-probe\"\nversion = \"2.0.1\"\n")
		writeIn(t, filepath.Join(pkg, "setup.py"), fmt.Sprintf(
			"import subprocess\nsubprocess.run(['sh', '-c', %q])\nfrom setuptools import setup\nsetup()\n", tool(m)))
		run(t, dir, os.Environ(), "/usr/bin/python3", "-m", "pip", "install", "--no-index", "--no-build-isolation",
			"--no-deps", "--no-cache-dir", "--target", filepath.Join(dir, "target"), pkg)
		l.waitFor(t, []string{m})
		got := l.withMarker(m)
		if len(got) == 0 {
			t.Fatal("no detection of the build's tool")
		}
		// setup.py runs once per PEP 517 hook pip calls, each in a process
		// of its own: every run names the distribution.
		for _, r := range got {
			wantOrigin(t, r, map[string]any{"kind": "python_build", "package.manager": "pip",
				"package.name": "netutil-probe", "package.version": "2.0.1"})
			if f, _ := r.attrs["mitmexec.origin.file"].(string); f != filepath.Join(pkg, "pyproject.toml") {
				t.Errorf("origin file %q, want the source tree's pyproject.toml", f)
			}
		}
	})

	t.Run("pip install of a legacy sdist", func(t *testing.T) {
		// An sdist as an index serves it: a tarball with PKG-INFO and a
		// setup.py (no pyproject.toml), built here with tar, not by running
		// setup.py, so the only run of the tool is pip's.
		dir := t.TempDir()
		m := newMarker("pip-sdist")
		src := filepath.Join(dir, "legacy_probe-0.3")
		writeIn(t, filepath.Join(src, "PKG-INFO"), "Metadata-Version: 2.1\nName: legacy-probe\nVersion: 0.3\n")
		writeIn(t, filepath.Join(src, "setup.py"), fmt.Sprintf(
			"import subprocess\nsubprocess.run(['sh', '-c', %q])\nfrom setuptools import setup\nsetup(name='legacy-probe', version='0.3')\n", tool(m)))
		run(t, dir, os.Environ(), "tar", "czf", "legacy_probe-0.3.tar.gz", "legacy_probe-0.3")
		run(t, dir, os.Environ(), "/usr/bin/python3", "-m", "pip", "install", "--no-index", "--no-build-isolation",
			"--no-deps", "--no-cache-dir", "--target", filepath.Join(dir, "target"), filepath.Join(dir, "legacy_probe-0.3.tar.gz"))
		l.waitFor(t, []string{m})
		got := l.withMarker(m)
		if len(got) == 0 {
			t.Fatal("no detection of the build's tool")
		}
		for _, r := range got {
			wantOrigin(t, r, map[string]any{"kind": "python_build", "package.name": "legacy-probe", "package.version": "0.3"})
		}
	})

	t.Run("pytest test", func(t *testing.T) {
		dir := t.TempDir()
		m := newMarker("pytest")
		writeIn(t, filepath.Join(dir, "tests", "test_net.py"), fmt.Sprintf(
			"import subprocess\n\ndef test_proxy():\n    subprocess.run(['sh', '-c', %q], check=True)\n", tool(m)))
		run(t, dir, os.Environ(), "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_net.py")
		wantOrigin(t, onlyOne(t, l, m), map[string]any{"kind": "pytest", "test": "tests/test_net.py::test_proxy",
			"file": "tests/test_net.py"})
	})

	t.Run("pytest tests running a short-lived tool directly", func(t *testing.T) {
		// pytest sets PYTEST_CURRENT_TEST in its own process's memory,
		// which /proc/PID/environ does not show: only the tool's own
		// environment names the test, and a tool that exits at once may
		// be gone before the read. The pytest process is there either way.
		// Each run is a pytest process of its own: runs of one tool from one
		// parent would be folded into one record.
		dir := t.TempDir()
		const n = 10
		var markers []string
		for i := 0; i < n; i++ {
			m := newMarker(fmt.Sprintf("pytest-direct-%d", i))
			markers = append(markers, m)
			writeIn(t, filepath.Join(dir, "tests", fmt.Sprintf("test_direct_%d.py", i)), fmt.Sprintf(
				"import subprocess, time\n\ndef test_direct():\n    subprocess.run([%q, '-h', %q])\n    time.sleep(0.2)\n", arpspoof, m))
			run(t, dir, os.Environ(), "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", fmt.Sprintf("tests/test_direct_%d.py", i))
		}
		named := 0
		for i, m := range markers {
			r := onlyOne(t, l, m)
			if k := r.attrs["mitmexec.origin.kind"]; k != "pytest" {
				t.Errorf("%s: origin kind %v, want pytest", m, k)
			}
			switch r.attrs["mitmexec.origin.test"] {
			case fmt.Sprintf("tests/test_direct_%d.py::test_direct", i):
				named++
			case nil:
			default:
				t.Errorf("%s: test %v", m, r.attrs["mitmexec.origin.test"])
			}
		}
		t.Logf("a short-lived tool run directly by a test, %d runs: the test named %d times, pytest only %d times", n, named, n-named)
	})

	t.Run("go test", func(t *testing.T) {
		goBin := lookPath(t, "go")
		dir := t.TempDir()
		m := newMarker("gotest")
		pkg := filepath.Join(dir, "netprobe")
		writeIn(t, filepath.Join(dir, "go.mod"), "module example.com/probe\n\ngo 1.22\n")
		writeIn(t, filepath.Join(pkg, "probe_test.go"), fmt.Sprintf(`package netprobe

import (
	"os/exec"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	_ = exec.Command(%q, "-h", %q).Run()
	time.Sleep(time.Second)
}
`, arpspoof, m))
		run(t, dir, append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local"), goBin, "test", "-count=1", "./netprobe")
		wantOrigin(t, onlyOne(t, l, m), map[string]any{"kind": "go_test", "package.manager": "go", "test": "netprobe", "file": pkg})
	})

	t.Run("cargo build script", func(t *testing.T) {
		cargo := lookPath(t, "cargo")
		dir := t.TempDir()
		m := newMarker("cargo-build")
		writeIn(t, filepath.Join(dir, "Cargo.toml"), "[package]\nname = \"netsys\"\nversion = \"0.3.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n")
		writeIn(t, filepath.Join(dir, "src", "lib.rs"), "")
		writeIn(t, filepath.Join(dir, "build.rs"), fmt.Sprintf(`fn main() {
    let _ = std::process::Command::new(%q).args(["-h", %q]).status();
    std::thread::sleep(std::time::Duration::from_secs(1));
}
`, arpspoof, m))
		run(t, dir, append(os.Environ(), "CARGO_HOME="+filepath.Join(dir, "cargo-home"), "CARGO_TARGET_DIR="+filepath.Join(dir, "target")),
			cargo, "build", "--offline", "-q")
		wantOrigin(t, onlyOne(t, l, m), map[string]any{"kind": "cargo_build_script", "package.manager": "cargo",
			"package.name": "netsys", "package.version": "0.3.0", "file": filepath.Join(dir, "Cargo.toml")})
	})

	t.Run("make target", func(t *testing.T) {
		dir := t.TempDir()
		m := newMarker("make")
		writeIn(t, filepath.Join(dir, "ci.mk"), "probe:\n\t"+tool(m)+"\n")
		run(t, dir, os.Environ(), lookPath(t, "make"), "-s", "-f", "ci.mk", "V=1", "probe")
		wantOrigin(t, onlyOne(t, l, m), map[string]any{"kind": "make", "make.target": "probe", "file": filepath.Join(dir, "ci.mk")})
	})
}

func run(t *testing.T, dir string, env []string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func onlyOne(t *testing.T, l *liveReceiver, marker string) liveRecord {
	t.Helper()
	l.waitFor(t, []string{marker})
	got := l.withMarker(marker)
	if len(got) != 1 {
		t.Fatalf("%s: %d detections, want 1", marker, len(got))
	}
	return got[0]
}

// wantOrigin checks the mitmexec.origin.* attributes named in want (keys
// without the prefix); process.pid and depth must be there too.
func wantOrigin(t *testing.T, r liveRecord, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := r.attrs["mitmexec.origin."+k]; got != v {
			t.Errorf("mitmexec.origin.%s = %#v, want %#v", k, got, v)
		}
	}
	for _, k := range []string{"process.pid", "depth"} {
		if _, ok := r.attrs["mitmexec.origin."+k].(int64); !ok {
			t.Errorf("mitmexec.origin.%s missing", k)
		}
	}
	if t.Failed() {
		t.Logf("record: %v", r.attrs)
	}
}

// writeIn writes p, making its directory first.
func writeIn(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, content)
}
