// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/origin"
	"github.com/mitmexec/mitmexec/internal/record"
)

// fakeProcCmdline adds root/PID/cmdline to an entry fakeProcEntry wrote.
func fakeProcCmdline(t *testing.T, root string, pid uint32, args ...string) {
	t.Helper()
	p := filepath.Join(root, strconv.FormatUint(uint64(pid), 10), "cmdline")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(args, "\x00")+"\x00"), 0o644))
}

func TestTranslateOrigin(t *testing.T) {
	// GIVEN a tool that already exited, run by a dependency's postinstall
	// script (alive) under npm (alive)
	root := t.TempDir()
	script := []string{"npm_package_name=left-pad", "npm_package_version=1.3.0", "npm_lifecycle_event=postinstall",
		"npm_package_json=/src/app/node_modules/left-pad/package.json", "npm_config_user_agent=npm/9.2.0 node/v18.19.0",
		"INIT_CWD=/src/app", "NPM_TOKEN=SECRET1", "npm_config__authToken=SECRET2"}
	fakeProcEntry(t, root, 200, 400, script)
	fakeProcCmdline(t, root, 200, "node", "install.js")
	fakeProcEntry(t, root, 100, 300, []string{"INIT_CWD=/src/app", "NPM_TOKEN=SECRET1"})
	fakeProcCmdline(t, root, 100, "node", "/usr/bin/npm", "install")
	r := &mitmexecReceiver{procRoot: root}
	rec := detectionRecord{
		Exec: event.Exec{PID: 300, StartBootTimeNs: 500 * 1e7, Name: "ettercap",
			Ancestors: []event.Ancestor{{PID: 200, StartBootTime: 400 * 1e7, Comm: "node"}, {PID: 100, StartBootTime: 300 * 1e7, Comm: "npm install"}}},
		Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchExecutableName},
		Time:      execTime,
	}

	// WHEN the receiver reads the origin and translates the record
	r.readOrigin(&rec)
	raw := translate(t, rec, 4096).Attributes().AsRaw()

	// THEN the record names the dependency's script, and no token
	want := map[string]any{
		record.AttrOriginKind: "package_script", record.AttrOriginManager: "npm", record.AttrOriginPackageName: "left-pad",
		record.AttrOriginPackageVersion: "1.3.0", record.AttrOriginDependency: true, record.AttrOriginLifecycleEvent: "postinstall",
		record.AttrOriginFile: "/src/app/node_modules/left-pad/package.json", record.AttrOriginProjectDir: "/src/app",
		record.AttrOriginPID: int64(200), record.AttrOriginDepth: int64(1),
	}
	for k, v := range want {
		assert.Equal(t, v, raw[k], k)
	}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			assert.NotContains(t, s, "SECRET", k)
		}
	}
	assert.Zero(t, r.originUnread.Load())
}

func TestTranslateNoOriginCountsTheGone(t *testing.T) {
	rec := detectionRecord{
		Exec:      event.Exec{PID: 10, StartBootTimeNs: 1e7, Name: "ettercap", Ancestors: []event.Ancestor{{PID: 11, StartBootTime: 1e7}}},
		Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchExecutableName},
		Time:      execTime,
	}
	r := &mitmexecReceiver{procRoot: t.TempDir()}
	r.readOrigin(&rec)
	raw := translate(t, rec, 4096).Attributes().AsRaw()
	for k := range raw {
		assert.False(t, strings.HasPrefix(k, "mitmexec.origin."), k)
	}
	assert.Equal(t, uint64(1), r.originUnread.Load(), "the tool and its parent were gone: counted")
}

// TestRecordDocNamesEveryOriginAttribute: docs/record.md's Origin table
// lists every attribute an origin can put on a record.
func TestRecordDocNamesEveryOriginAttribute(t *testing.T) {
	doc, err := os.ReadFile("../../docs/record.md")
	require.NoError(t, err)
	dep := true
	full := origin.Origin{Kind: origin.KindPackageJS, Manager: "m", PackageName: "n", PackageVersion: "v", Dependency: &dep,
		LifecycleEvent: "e", Test: "t", MakeTarget: "m", File: "f", ProjectDir: "d", PID: 1, Depth: 1}
	for _, kv := range full.Attributes() {
		assert.Contains(t, string(doc), "| `"+kv.Key+"` |", "docs/record.md lacks %s", kv.Key)
	}
}
