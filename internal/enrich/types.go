// SPDX-License-Identifier: Apache-2.0

package enrich

// Context is what enrichment adds to an exec beyond what the kernel sent.
// An empty field means unknown and is left out of the record.
type Context struct {
	Owner            string   // user name of the effective uid
	ContainerID      string   // from the cgroup path
	SHA256           string   // of the executable file, hex
	ParentExecutable string   // path of the parent's executable
	Ancestors        []string // nearest first, each "pid:path"
}
