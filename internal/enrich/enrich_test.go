// SPDX-License-Identifier: Apache-2.0

package enrich

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
)

func TestContainerID(t *testing.T) {
	id := "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
	cases := map[string]string{
		"/system.slice/docker-" + id + ".scope": id,
		"/docker/" + id:                         id,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + id + ".scope": id,
		"/kubepods/besteffort/pod1234/" + id:               id,
		"/machine.slice/libpod-" + id + ".scope/container": id,
		"/system.slice/crio-" + id + ".scope":              id,
		"/user.slice/user-0.slice/session-3.scope":         "",
		"/": "",
		"":  "",
		"/system.slice/docker-" + id[:12] + ".scope": "",
		// a user's own cgroups, named like a runtime's
		"/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" + id + ".scope": "",
		"/user.slice/user-1000.slice/user@1000.service/docker/" + id:                      "",
		"/mxaudit/x/system.slice/docker-" + id + ".scope":                                 "",
	}
	for cgroup, want := range cases {
		if got := ContainerID(cgroup); got != want {
			t.Errorf("ContainerID(%q) = %q, want %q", cgroup, got, want)
		}
	}
	// the innermost components of a deeper path, shown from the root
	cut := event.Exec{Cgroup: "/system.slice/a/b/c/d/e/f/docker-" + id + ".scope", Flags: event.FlagCgroupTruncated}
	if got := ContainerIDOf(&cut); got != "" {
		t.Errorf("ContainerIDOf a cut cgroup = %q, want none", got)
	}
}

type fakeHasher struct{ sum string }

func (f fakeHasher) ExecSHA256(*event.Exec) (string, error) {
	if f.sum == "" {
		return "", errors.New("gone")
	}
	return f.sum, nil
}

// fakeProc writes /proc/PID/{stat,exe} for a process that started at startTicks.
func fakeProc(t *testing.T, root string, pid int, startTicks uint64, exe string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := strconv.Itoa(pid) + " (a (weird) name) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + strconv.FormatUint(startTicks, 10) + " 0 0\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
}

func TestEnrich(t *testing.T) {
	// GIVEN a /proc with a live parent and a pid now used by a younger process
	root := t.TempDir()
	fakeProc(t, root, 100, 500, "/usr/bin/bash")
	fakeProc(t, root, 50, 9999, "/usr/bin/other")
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/bash\nqa:x:1001:1001::/home/qa:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	en := New(root, passwd, fakeHasher{sum: "feed"})
	e := &event.Exec{
		EUID: 1001, Cgroup: "/docker/" + "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899",
		Ancestors: []event.Ancestor{
			{PID: 100, StartBootTime: 500 * 1e7, Comm: "bash"},
			{PID: 50, StartBootTime: 40 * 1e7, Comm: "sshd"},       // pid reused since
			{PID: 7, StartBootTime: 1, Comm: "init", Exited: true}, // from the fork table
		},
	}
	// WHEN it is enriched
	c := en.Enrich(e, "")
	// THEN names, hashes and ancestry are filled, never a wrong path
	if c.Owner != "qa" || c.SHA256 != "feed" || c.ContainerID == "" || c.ParentExecutable != "/usr/bin/bash" {
		t.Errorf("context %+v", c)
	}
	want := []string{"100:/usr/bin/bash", "50:sshd", "7:init"}
	if len(c.Ancestors) != 3 || c.Ancestors[0] != want[0] || c.Ancestors[1] != want[1] || c.Ancestors[2] != want[2] {
		t.Errorf("ancestors %v, want %v", c.Ancestors, want)
	}
	if en.Owner(4242) != "" {
		t.Error("an unknown uid got a name")
	}
	if got := en.Enrich(e, "given").SHA256; got != "given" {
		t.Errorf("a hash the rule computed was replaced: %q", got)
	}
}
