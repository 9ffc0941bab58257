// SPDX-License-Identifier: Apache-2.0

package procfs

import (
	"fmt"
	"strconv"
	"strings"
)

// Creds are a process's ids from /proc/PID/status and its cgroup v2 path
// from /proc/PID/cgroup.
type Creds struct {
	UID, EUID, GID, EGID uint32
	VPID                 uint32 // its pid in its own pid namespace (the last of NSpid), 0 when not shown
	Cgroup               string // "" when the process is in no cgroup v2 hierarchy the read could see
}

// Status reads the credentials of PID and its cgroup, if PID is still the
// process that started at startBootNs, checked on both sides of the reads.
// The owner of /proc/PID is no credential: a process that drops its
// dumpable flag shows root as that owner.
func Status(procRoot string, pid uint32, startBootNs uint64) (Creds, error) {
	p, err := OpenStarted(procRoot, pid, startBootNs)
	if err != nil {
		return Creds{}, err
	}
	defer p.Close()
	status, err := p.readWhole("status", StatusMax)
	if err != nil {
		return Creds{}, err
	}
	var c Creds
	uids, gids := idsOf(status, "Uid:"), idsOf(status, "Gid:")
	if len(uids) < 2 || len(gids) < 2 {
		return Creds{}, fmt.Errorf("status of pid %d has no Uid or Gid line", pid)
	}
	c.UID, c.EUID, c.GID, c.EGID = uids[0], uids[1], gids[0], gids[1]
	if ns := idsOf(status, "NSpid:"); len(ns) > 0 {
		c.VPID = ns[len(ns)-1]
	}
	if cg, err := p.readWhole("cgroup", StatusMax); err == nil {
		c.Cgroup = unifiedCgroup(cg)
	}
	if err := p.CheckStart(startBootNs); err != nil {
		return Creds{}, err
	}
	return c, nil
}

// unifiedCgroup is the cgroup v2 path of a cgroup file ("0::/system.slice/x").
func unifiedCgroup(cg []byte) string {
	path := ""
	for _, line := range strings.Split(string(cg), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path = p
		}
	}
	return path
}

// idsOf parses the numbers of a status line ("Uid:\t1000\t1000\t1000\t1000").
func idsOf(status []byte, key string) []uint32 {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range strings.Fields(rest) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil
			}
			out = append(out, uint32(n))
		}
		return out
	}
	return nil
}
