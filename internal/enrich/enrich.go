// SPDX-License-Identifier: Apache-2.0

// Package enrich adds what the kernel did not send: user names, the
// container id, the executable's hash and the ancestors' executables. /proc
// only annotates: a process that is gone leaves its field out, never an error.
package enrich

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/mitmexec/mitmexec/internal/bounded"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
)

// Hasher hashes the executable of an exec (internal/filehash).
type Hasher interface {
	ExecSHA256(e *event.Exec) (string, error)
}

// Enricher builds a Context for an exec.
type Enricher struct {
	procRoot   string
	passwdPath string
	hasher     Hasher
	owners     *bounded.Map[uint32, string]
}

// New returns an enricher reading procRoot (normally /proc) and the user
// database at passwdPath (normally /etc/passwd).
func New(procRoot, passwdPath string, hasher Hasher) *Enricher {
	return &Enricher{procRoot: procRoot, passwdPath: passwdPath, hasher: hasher, owners: bounded.New[uint32, string](maxOwners)}
}

// Enrich returns the context of e. sum is the executable's SHA-256 when the
// rule already computed it.
func (en *Enricher) Enrich(e *event.Exec, sum string) Context {
	c := en.Process(e)
	c.SHA256 = sum
	en.FileSHA256(e, &c)
	return c
}

// Process returns the context of e but the executable's hash: what /proc
// and the user database say of the process, cheap enough to be read
// before a tool is acted on.
func (en *Enricher) Process(e *event.Exec) Context {
	c := Context{Owner: en.Owner(e.EUID), ContainerID: ContainerIDOf(e)}
	for i, a := range e.Ancestors {
		p := ""
		if !a.Exited {
			p = en.exePath(a.PID, a.StartBootTime)
		}
		if i == 0 {
			c.ParentExecutable = p
		}
		if p == "" {
			p = a.Comm
		}
		c.Ancestors = append(c.Ancestors, strconv.FormatUint(uint64(a.PID), 10)+":"+p)
	}
	return c
}

// FileSHA256 hashes e's executable into c where c has no hash yet. The
// hasher bounds it in size and time; a file gone leaves it unknown.
func (en *Enricher) FileSHA256(e *event.Exec, c *Context) {
	if c.SHA256 != "" || en.hasher == nil {
		return
	}
	if s, err := en.hasher.ExecSHA256(e); err == nil {
		c.SHA256 = s
	}
}

// exePath reads an ancestor's executable from /proc. Ancestors are
// long-lived more often than not (shells, services); when one is gone, or
// its pid now belongs to a younger process, the path is unknown.
func (en *Enricher) exePath(pid uint32, startBootNs uint64) string {
	proc, err := procfs.Open(en.procRoot, pid)
	if err != nil {
		return ""
	}
	defer proc.Close()
	if startBootNs != 0 && proc.CheckStart(startBootNs) != nil {
		return ""
	}
	p, err := proc.Readlink("exe")
	if err != nil {
		return ""
	}
	return p
}

// Owner returns the user name of uid from the host's user database, cached.
func (en *Enricher) Owner(uid uint32) string {
	if name, ok := en.owners.Get(uid); ok {
		return name
	}
	name := lookupUser(en.passwdPath, uid)
	en.owners.Put(uid, name)
	return name
}

// maxOwners bounds the user names remembered.
const maxOwners = 4096

func lookupUser(passwd string, uid uint32) string {
	f, err := os.Open(passwd)
	if err != nil {
		return ""
	}
	defer f.Close()
	want := strconv.FormatUint(uint64(uid), 10)
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.SplitN(s.Text(), ":", 4)
		if len(fields) >= 3 && fields[2] == want {
			return fields[0]
		}
	}
	return ""
}

var containerIDPattern = regexp.MustCompile(`(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$`)

// runtimeRoots are where container runtimes running as root put their
// containers' cgroups: systemd's system and machine slices, the kubelet's
// pods (both drivers) and docker's cgroupfs driver. Only root creates
// cgroups there; a user's delegated subtree (user@UID.service) is theirs to
// name as they like, rootless containers included.
var runtimeRoots = []string{"/system.slice/", "/machine.slice/", "/kubepods.slice/", "/kubepods/", "/kubelet.slice/", "/docker/"}

// UserDelegated reports whether a cgroup lies in a subtree systemd
// delegates to a user (user@UID.service), whose names that user chooses.
func UserDelegated(cgroup string) bool {
	for _, p := range strings.Split(cgroup, "/") {
		if strings.HasPrefix(p, "user@") {
			return true
		}
	}
	return false
}

// ContainerIDOf is ContainerID of the exec's cgroup, "" when the kernel cut
// the path at its depth bound: its innermost components, shown from the
// root, could read as any layout.
func ContainerIDOf(e *event.Exec) string {
	if e.Has(event.FlagCgroupTruncated) {
		return ""
	}
	return ContainerID(e.Cgroup)
}

// ContainerID extracts a container id from a cgroup v2 path in the layouts
// of docker (docker-ID.scope, /docker/ID), containerd (cri-containerd-ID.scope),
// cri-o (crio-ID.scope) and podman (libpod-ID.scope), only under the roots
// where root-run runtimes put them (runtimeRoots) and never in a subtree
// delegated to a user: a user's cgroup named docker-ID.scope is no
// container.
func ContainerID(cgroup string) string {
	underRuntime := false
	for _, r := range runtimeRoots {
		if strings.HasPrefix(cgroup, r) {
			underRuntime = true
		}
	}
	if !underRuntime || UserDelegated(cgroup) {
		return ""
	}
	for _, part := range []string{cgroup, filepath.Dir(cgroup)} {
		base := filepath.Base(part)
		if m := containerIDPattern.FindStringSubmatch("/" + base); m != nil {
			return m[1]
		}
	}
	return ""
}
