// SPDX-License-Identifier: Apache-2.0

package detect

// Match says how an exec was recognised; it becomes mitmexec.match.
type Match string

const (
	MatchExecutableName   Match = "executable_name"     // the loaded file's own name
	MatchInvokedName      Match = "invoked_name"        // the name it was exec'd by (symlink, fd target)
	MatchScript           Match = "script"              // a script run through its shebang or an interpreter
	MatchInterpreterArgs  Match = "interpreter_args"    // python -m / -c naming a tool's module
	MatchContentHash      Match = "content_hash"        // SHA-256 of the file equals a known build
	MatchFingerprint      Match = "content_fingerprint" // first bytes (section-header fields masked) equal a known build's
	MatchInode            Match = "inode"               // same file identity as an installed tool (hard link, cached verdict)
	MatchStructure        Match = "elf_structure"       // Go module, code/constant section hash or string signature of a build
	MatchModuleLoad       Match = "module_load"         // the process opened a tool's own module file (fanotify)
	MatchNetworkBehaviour Match = "network_behaviour"   // the process sent a frame claiming an address its interface does not hold
)

// Detection is the rule's verdict on one exec.
type Detection struct {
	Tool  *Tool
	Match Match
	// Detail says what matched, for the analyst (the module, the script path, ...).
	Detail string
	// Script is the path of the tool's script when a script was recognised.
	Script string
}
