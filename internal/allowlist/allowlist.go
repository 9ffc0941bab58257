// SPDX-License-Identifier: Apache-2.0

// Package allowlist silences sanctioned use: an entry names what a
// detection must have (all of its keys), and any matching entry suppresses
// it. Suppressed detections are counted by the receiver, never reported.
package allowlist

import "strings"

// Entry is one allow-list entry; empty keys are not checked. At least one
// key must be set (the receiver's config validation ensures it).
type Entry struct {
	Tool             string
	ExecutablePath   string
	SHA256           string
	UID              *uint32
	User             string
	ParentExecutable string
	ContainerID      string
	CgroupPrefix     string
}

// Subject is what an entry is matched against.
type Subject struct {
	Tool             string
	ExecutablePaths  []string // the loaded file and, for a script, the script
	SHA256           string
	UID              uint32 // effective uid
	User             string
	ParentExecutable string
	ContainerID      string
	Cgroup           string
}

// List is an allow-list.
type List struct{ entries []Entry }

// New returns a list of entries.
func New(entries []Entry) *List { return &List{entries: entries} }

// Len is the number of entries.
func (l *List) Len() int { return len(l.entries) }

// Match returns the index of the first entry that matches s, or -1.
func (l *List) Match(s Subject) int {
	for i, e := range l.entries {
		if e.matches(s) {
			return i
		}
	}
	return -1
}

// NeedsSHA256 reports whether some entry matches on the executable's hash,
// which then has to be computed before the entries are checked.
func (l *List) NeedsSHA256() bool {
	for _, e := range l.entries {
		if e.SHA256 != "" {
			return true
		}
	}
	return false
}

// MayMatchTool reports whether some entry could silence the tool, whatever
// the process: block mode must then leave the kill to user space, where the
// whole entry is checked first.
func (l *List) MayMatchTool(tool string) bool {
	for _, e := range l.entries {
		if e.Tool == "" || e.Tool == tool {
			return true
		}
	}
	return false
}

func (e Entry) matches(s Subject) bool {
	if e.Tool != "" && e.Tool != s.Tool {
		return false
	}
	if e.ExecutablePath != "" && !contains(s.ExecutablePaths, e.ExecutablePath) {
		return false
	}
	if e.SHA256 != "" && !strings.EqualFold(e.SHA256, s.SHA256) {
		return false
	}
	if e.UID != nil && *e.UID != s.UID {
		return false
	}
	if e.User != "" && e.User != s.User {
		return false
	}
	if e.ParentExecutable != "" && e.ParentExecutable != s.ParentExecutable {
		return false
	}
	if e.ContainerID != "" && !strings.HasPrefix(s.ContainerID, e.ContainerID) {
		return false
	}
	if e.CgroupPrefix != "" && !cgroupUnder(s.Cgroup, e.CgroupPrefix) {
		return false
	}
	return true
}

// cgroupUnder matches whole path components: /a/b is under /a, /ab is not.
func cgroupUnder(cgroup, prefix string) bool {
	if cgroup == "" {
		return false // unknown, or cut by the kernel: under nothing
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return cgroup == prefix || strings.HasPrefix(cgroup, prefix+"/") || prefix == ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
