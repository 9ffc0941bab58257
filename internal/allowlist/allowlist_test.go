// SPDX-License-Identifier: Apache-2.0

package allowlist

import "testing"

func TestMatch(t *testing.T) {
	uid := uint32(1001)
	subject := Subject{
		Tool: "mitmproxy", ExecutablePaths: []string{"/usr/bin/python3.11", "/usr/bin/mitmproxy"},
		SHA256: "ABCD", UID: 1001, User: "qa", ParentExecutable: "/usr/bin/bash",
		ContainerID: "0123456789abcdef", Cgroup: "/system.slice/qa-proxy.service",
	}
	cases := []struct {
		name  string
		entry Entry
		want  bool
	}{
		{"tool", Entry{Tool: "mitmproxy"}, true},
		{"other tool", Entry{Tool: "ettercap"}, false},
		{"executable path", Entry{ExecutablePath: "/usr/bin/python3.11"}, true},
		{"script path", Entry{ExecutablePath: "/usr/bin/mitmproxy"}, true},
		{"other path", Entry{ExecutablePath: "/tmp/mitmproxy"}, false},
		{"sha256 any case", Entry{SHA256: "abcd"}, true},
		{"other sha256", Entry{SHA256: "ffff"}, false},
		{"uid", Entry{UID: &uid}, true},
		{"uid 0 is a value", Entry{UID: new(uint32)}, false},
		{"user", Entry{User: "qa"}, true},
		{"other user", Entry{User: "root"}, false},
		{"parent", Entry{ParentExecutable: "/usr/bin/bash"}, true},
		{"other parent", Entry{ParentExecutable: "/usr/bin/zsh"}, false},
		{"container id prefix", Entry{ContainerID: "0123456789ab"}, true},
		{"other container", Entry{ContainerID: "ffff"}, false},
		{"cgroup prefix", Entry{CgroupPrefix: "/system.slice"}, true},
		{"cgroup exact", Entry{CgroupPrefix: "/system.slice/qa-proxy.service"}, true},
		{"cgroup component boundary", Entry{CgroupPrefix: "/system.sl"}, false},
		{"combined all match", Entry{Tool: "mitmproxy", User: "qa", CgroupPrefix: "/system.slice/"}, true},
		{"combined one differs", Entry{Tool: "mitmproxy", User: "root"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := New([]Entry{c.entry})
			if got := l.Match(subject) >= 0; got != c.want {
				t.Errorf("match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMatchAnyEntry(t *testing.T) {
	l := New([]Entry{{User: "nobody"}, {Tool: "mitmdump"}})
	if got := l.Match(Subject{Tool: "mitmdump", User: "root"}); got != 1 {
		t.Errorf("matched entry %d, want 1", got)
	}
	if got := l.Match(Subject{Tool: "ettercap", User: "root"}); got != -1 {
		t.Errorf("matched entry %d, want none", got)
	}
}

func TestMayMatchTool(t *testing.T) {
	if New([]Entry{{Tool: "mitmproxy"}}).MayMatchTool("ettercap") {
		t.Error("an entry for mitmproxy cannot silence ettercap")
	}
	if !New([]Entry{{User: "qa"}}).MayMatchTool("ettercap") {
		t.Error("an entry without a tool may silence any tool")
	}
}
