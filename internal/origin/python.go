// SPDX-License-Identifier: Apache-2.0

package origin

import (
	"bufio"
	"bytes"
	"strings"
)

// distribution reads the name and version of the distribution a Python
// build works on from the metadata files in its working directory, the
// source tree (pip and build run every hook there): PKG-INFO (an sdist's),
// pyproject.toml's [project] table, setup.cfg's [metadata]. A name set
// only in setup.py's code is not read: running or parsing it is out of
// the question, so the record names the file and no package.
func distribution(r Reader, e *entry) (name, version, manifest string) {
	for _, m := range []struct {
		file  string
		parse func([]byte) (string, string)
	}{
		{"PKG-INFO", pkgInfo},
		{"pyproject.toml", func(b []byte) (string, string) { return iniTable(b, "[project]") }},
		{"setup.cfg", func(b []byte) (string, string) { return iniTable(b, "[metadata]") }},
	} {
		b, err := r.ReadFile(e.pid, e.start, m.file)
		if err != nil {
			continue
		}
		if name, version = m.parse(b); name != "" {
			return clean(name), clean(version), m.file
		}
		if manifest == "" {
			manifest = m.file
		}
	}
	return "", "", manifest
}

// pkgInfo reads Name and Version of the core metadata's header.
func pkgInfo(b []byte) (name, version string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // the description follows the headers
		}
		if v, ok := strings.CutPrefix(line, "Name:"); ok && name == "" {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Version:"); ok && version == "" {
			version = strings.TrimSpace(v)
		}
	}
	return name, version
}

// iniTable reads `name = ...` and `version = ...` in one table of a TOML
// or setup.cfg file: only literal values (a quoted string in TOML, the
// rest of the line in setup.cfg). A dynamic version is left out.
func iniTable(b []byte, table string) (name, version string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	in := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			in = line == table
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "attr:") || strings.HasPrefix(v, "file:") {
			continue // setup.cfg's dynamic value: computed by the build
		}
		if table == "[project]" {
			if len(v) < 2 || (v[0] != '"' && v[0] != '\'') || v[len(v)-1] != v[0] {
				continue
			}
			v = v[1 : len(v)-1]
		}
		switch strings.TrimSpace(k) {
		case "name":
			name = v
		case "version":
			version = v
		}
	}
	return name, version
}
