// SPDX-License-Identifier: Apache-2.0

package record

import "strings"

// Where an attribute is put: on the record, or on the resource the record
// is emitted under.
type Where string

const (
	OnRecord   Where = "record"
	OnResource Where = "resource"
)

// Type is an attribute's value type, as docs/record.md names it.
type Type string

const (
	TypeString  Type = "string"
	TypeInt     Type = "int"
	TypeBool    Type = "bool"
	TypeDouble  Type = "double"
	TypeStrings Type = "string[]"
)

// Section is the table of docs/record.md an attribute is listed in.
type Section string

const (
	SectionResource  Section = "resource"
	SectionDetection Section = "detection"
	SectionNetwork   Section = "network"
	SectionCICD      Section = "cicd"
	SectionOrigin    Section = "origin"
)

// Sections are the attribute tables, in the order docs/record.md has them.
func Sections() []Section {
	return []Section{SectionResource, SectionDetection, SectionNetwork, SectionCICD, SectionOrigin}
}

// Attribute is one name of the contract: where it goes, its type and what
// it says. Every attribute is left out when it has nothing true to say.
type Attribute struct {
	Name    string
	Where   Where
	Type    Type
	Section Section
	Meaning string // one line of Markdown
	// When says when an attribute is present, where the table has no
	// meaning column of its own to say it (origin).
	When string
	// Source is where the value comes from (origin).
	Source string
	// GitHub and GitLab name the variables a CI attribute is read from.
	GitHub, GitLab string
}

// Field is one field of the log record besides its attributes.
type Field struct{ Name, Value string }

// Fields are the log record's own fields.
func Fields() []Field {
	return []Field{
		{"EventName", code(EventName)},
		{"Timestamp", "when the exec happened, from the kernel's clock, converted to wall time"},
		{"ObservedTimestamp", "when the receiver turned it into a record"},
		{"SeverityNumber / SeverityText", "21 (FATAL) / " + code(SeverityText) + ": the rule's importance is critical"},
		{"Body", "one readable line, e.g. `MitM tool executed: ettercap (/usr/bin/ettercap) pid 4242 uid 0 parent bash (4100)`"},
	}
}

// Attributes is every attribute the receiver emits, section by section in
// the contract's order. container.id is listed twice: on the resource
// and on the record.
func Attributes() []Attribute {
	var out []Attribute
	out = append(out, resourceAttributes()...)
	out = append(out, detectionAttributes()...)
	out = append(out, networkAttributes()...)
	out = append(out, cicdAttributes()...)
	return append(out, originAttributes()...)
}

// Names are the distinct attribute names of Attributes, record's and
// resource's together.
func Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range Attributes() {
		if !seen[a.Name] {
			seen[a.Name] = true
			out = append(out, a.Name)
		}
	}
	return out
}

func code(s string) string { return "`" + s + "`" }

func resourceAttributes() []Attribute {
	a := func(name string, t Type, meaning string) Attribute {
		return Attribute{Name: name, Where: OnResource, Type: t, Section: SectionResource, Meaning: meaning}
	}
	return []Attribute{
		a(AttrHostName, TypeString, "the host's name, always"),
		a(AttrHostID, TypeString, "the machine id, where known"),
		a(AttrOSType, TypeString, "the operating system (`linux`), where known"),
		a(AttrServiceName, TypeString, "the receiver's type (`mitmexec`) unless the user overrides it"),
		a(AttrServiceInstanceID, TypeString, "the host's stream, stable across restarts: a UUIDv5 of the machine id (the node's or host's name where there is none)"),
		a(AttrK8sNodeName, TypeString, "the node, where the environment names it (`K8S_NODE_NAME`)"),
		a(AttrContainerID, TypeString, "the container the process ran in"),
		a(AttrK8sPodUID, TypeString, "the container's pod, from the cgroup path"),
		a(AttrK8sPodName, TypeString, "the pod's name, from the container runtime"),
		a(AttrK8sNamespaceName, TypeString, "the pod's namespace, from the container runtime"),
		a(AttrK8sContainerName, TypeString, "the container's name in the pod, from the container runtime"),
		a(AttrContainerImage, TypeString, "the container's image, from the container runtime, without tag or digest"),
	}
}

func detectionAttributes() []Attribute {
	a := func(name string, t Type, meaning string) Attribute {
		return Attribute{Name: name, Where: OnRecord, Type: t, Section: SectionDetection, Meaning: meaning}
	}
	outcomes := make([]string, 0, 5)
	for _, o := range Outcomes() {
		outcomes = append(outcomes, code(string(o)))
	}
	return []Attribute{
		a(AttrRuleName, TypeString, code(RuleName)),
		a(AttrRuleCategory, TypeString, code(RuleCategory)),
		a(AttrRuleDescription, TypeString, code(RuleDescription)),
		a(AttrRulesetName, TypeString, code(RulesetName)),
		a(AttrThreatFramework, TypeString, code(ThreatFramework)),
		a(AttrTacticName, TypeString, code(TacticName)),
		a(AttrTacticID, TypeString, code(TacticID)),
		a(AttrTechniqueName, TypeString, code(TechniqueName)),
		a(AttrTechniqueID, TypeString, code(TechniqueID)),
		a(AttrToolName, TypeString, "canonical tool name from the catalog (`ettercap`, `mitmdump`, ...), whatever name the file had; for a `network_behaviour` record whose process no catalog tool names, the class of the lie (below)"),
		a(AttrToolTechniqueID, TypeString, "the tool's own ATT&CK technique from the catalog (`T1557.002`, ...); for a `network_behaviour` record, the lie's (below)"),
		a(AttrMatch, TypeString, "how it was recognised: `executable_name`, `invoked_name`, `script`, `interpreter_args`, `content_hash`, `content_fingerprint`, `inode`, `elf_structure`, `module_load`, `network_behaviour` (README, \"What is recognised\")"),
		a(AttrPID, TypeInt, "pid of the process that exec'd, as seen from the host"),
		a(AttrVPID, TypeInt, "pid inside its own pid namespace, when that differs"),
		a(AttrParentPID, TypeInt, "host pid of the parent"),
		a(AttrExecutablePath, TypeString, "full path of the file the kernel actually loaded (the interpreter for a script)"),
		a(AttrExecutableName, TypeString, "base name of that file"),
		a(AttrCommandArgs, TypeStrings, "argv as captured (bounded; secrets redacted)"),
		a(AttrCommandLine, TypeString, "argv joined with spaces (same bound, same redaction)"),
		a(AttrUserID, TypeInt, "effective uid"),
		a(AttrRealUserID, TypeInt, "real uid"),
		a(AttrLoginUserID, TypeInt, "the audit login uid (who logged in, whatever user the tool now runs as), when there is a login session"),
		a(AttrOwner, TypeString, "user name of the effective uid, when resolvable"),
		a(AttrWorkingDirectory, TypeString, "cwd at exec, when known"),
		a(AttrInteractive, TypeBool, "whether it has a controlling tty"),
		a(AttrCgroup, TypeString, "cgroup path"),
		a(AttrCreationTime, TypeString, "when the process started (RFC 3339), when known"),
		a(AttrExecFilename, TypeString, "the path exactly as passed to execve (a symlink, `/dev/fd/3`, a script)"),
		a(AttrExecInterpreter, TypeString, "the script's interpreter, when the file was a script"),
		a(AttrExecutableSHA256, TypeString, "SHA-256 of the executable file, when it could be read"),
		a(AttrExecutableInode, TypeInt, "identity of that file: its inode"),
		a(AttrExecutableDevice, TypeInt, "identity of that file: its device"),
		a(AttrArgsTruncated, TypeBool, "argv was longer than the capture bound"),
		a(AttrPathsTruncated, TypeStrings, "which of `executable`, `working_directory`, `cgroup` the kernel cut at its depth bound (only the innermost components are shown); such a path never satisfies an allow-list entry"),
		a(AttrParentExecutable, TypeString, "the parent's executable"),
		a(AttrAncestors, TypeStrings, "ancestry nearest first, each `pid:path`"),
		a(AttrContainerID, TypeString, "the container the process ran in (on the resource too)"),
		a(AttrNamespacePID, TypeInt, "pid namespace inode number"),
		a(AttrNamespaceMnt, TypeInt, "mount namespace inode number"),
		a(AttrAction, TypeString, "what was done: "+strings.Join(outcomes, ", ")),
		a(AttrActionDelay, TypeDouble, "how late a user-space kill came (`killed_late`): from the exec to the kill, in milliseconds"),
		a(AttrRepeatCount, TypeInt, "when repeats were folded into this record, how many execs it stands for"),
		a(AttrSummarizedCount, TypeInt, "when the per-host records-per-second ceiling held detections back, how many since the previous record (with `repeat_count`, the records' counts add up to every detection)"),
		a(AttrMatchDetail, TypeString, "what exactly matched, for the analyst: the name, the hash, the Go module path, the library, the module file the interpreter loaded, ..."),
	}
}

func networkAttributes() []Attribute {
	a := func(name string, t Type, meaning string) Attribute {
		return Attribute{Name: name, Where: OnRecord, Type: t, Section: SectionNetwork, Meaning: meaning}
	}
	return []Attribute{
		a(AttrNetworkClaim, TypeString, "what the frame claims: `arp` (an ARP request or reply whose sender address the interface does not hold), `ndp_neighbor_advertisement` (an NA with the override flag, or unsolicited, for an address the interface does not hold), `ndp_router_advertisement`, `icmpv6_redirect`, `dhcpv6_server` (an advertise or reply: a packet socket is never how a legitimate server sends these)"),
		a(AttrNetworkBehaviour, TypeString, "the class of tool that tells such lies: `arp_spoofer`, `ndp_spoofer`, `rogue_ipv6_router`, `icmpv6_redirector`, `rogue_dhcpv6_server` (the record's `mitmexec.tool.name` when no catalog tool names the process)"),
		a(AttrNetworkInterfaceName, TypeString, "the interface it was sent on, as its namespace names it"),
		a(AttrNetworkInterfaceIndex, TypeInt, "its ifindex in that namespace"),
		a(AttrNetworkClaimedAddress, TypeString, "the address claimed: ARP's sender address, the NA's target, the IPv6 source of an RA, redirect or DHCPv6 answer"),
		a(AttrNetworkClaimedMAC, TypeString, "the hardware address claimed for it (ARP's sender, the NA's target link-layer option, else the frame's source), when the frame carries one"),
		a(AttrNetworkTargetAddress, TypeString, "who the claim was told to (ARP's target address, the IPv6 destination)"),
		a(AttrNamespaceNet, TypeInt, "inode of the socket's network namespace"),
		a(AttrNetworkSenderPID, TypeInt, "the process that sent, when it is not `process.pid` (it forked from it without exec'ing)"),
	}
}

func cicdAttributes() []Attribute {
	a := func(name, github, gitlab string) Attribute {
		return Attribute{Name: name, Where: OnRecord, Type: TypeString, Section: SectionCICD, GitHub: github, GitLab: gitlab}
	}
	return []Attribute{
		a(AttrCICDPipelineName, "`GITHUB_WORKFLOW`", "`CI_PIPELINE_NAME`, else `CI_PROJECT_PATH`"),
		a(AttrCICDPipelineRunID, "`GITHUB_RUN_ID`", "`CI_PIPELINE_ID`"),
		a(AttrCICDPipelineRunURL, "`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`", "`CI_PIPELINE_URL`"),
		a(AttrCICDTaskName, "`GITHUB_JOB`", "`CI_JOB_NAME`"),
		a(AttrCICDTaskRunID, "-", "`CI_JOB_ID`"),
		a(AttrCICDTaskRunURL, "-", "`CI_JOB_URL`"),
		a(AttrCICDWorkerName, "`RUNNER_NAME`", "`CI_RUNNER_DESCRIPTION`"),
		a(AttrVCSProviderName, "`github`", "`gitlab`"),
		a(AttrVCSRepositoryURL, "`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY`", "`CI_PROJECT_URL`"),
		a(AttrVCSRefHeadName, "`GITHUB_HEAD_REF`, else `GITHUB_REF_NAME`", "`CI_COMMIT_REF_NAME`"),
		a(AttrVCSRefHeadRevision, "`GITHUB_SHA`", "`CI_COMMIT_SHA`"),
		a(AttrVCSChangeID, "the number in `GITHUB_REF` `refs/pull/N/merge`", "`CI_MERGE_REQUEST_IID`"),
	}
}

func originAttributes() []Attribute {
	a := func(name string, t Type, when, meaning, source string) Attribute {
		return Attribute{Name: name, Where: OnRecord, Type: t, Section: SectionOrigin, When: when, Meaning: meaning, Source: source}
	}
	const chain = "the kernel's ancestor chain (the process table where there is none)"
	return []Attribute{
		a(AttrOriginKind, TypeString, "", "`package_script` (npm, yarn, pnpm lifecycle or run script), `python_build` (setuptools or PEP 517 build or install of a distribution), `pytest` (a pytest test), `go_test` (a Go test binary), `cargo_build_script` (a Cargo build script), `cargo` (a binary `cargo run` or `cargo test` runs), `make` (a make recipe), `script` (none of those: the nearest script file an interpreter runs, above the tool's own process)",
			"the kind's variables (environment) or command line"),
		a(AttrOriginManager, TypeString, "when known", "`npm`, `yarn`, `pnpm` (first word of `npm_config_user_agent`), `pip` (pip's hook runner or setuptools shim on the command line), `cargo`, `go`",
			"environment, command line"),
		a(AttrOriginPackageName, TypeString, "when known", "the package whose script, build or crate it is",
			"`npm_package_name`; `CARGO_PKG_NAME`; for a Python build `Name` of `PKG-INFO`, else `name` of `pyproject.toml`'s `[project]`, else of `setup.cfg`'s `[metadata]`, in the build's working directory (the source tree; 64 KiB each; a name only setup.py's code sets is not read)"),
		a(AttrOriginPackageVersion, TypeString, "when known", "its version",
			"`npm_package_version`; `CARGO_PKG_VERSION`; `Version` / `version` of the same files (a dynamic version is left out)"),
		a(AttrOriginDependency, TypeBool, "package scripts only", "true when the package lies under a `node_modules` directory (or yarn's `.yarn/unplugged`): a dependency; false: the project itself",
			"the directory of `npm_package_json`, else the script's working directory"),
		a(AttrOriginLifecycleEvent, TypeString, "package scripts", "`postinstall`, `install`, `prepare`, `test`, a `run` script's name",
			"`npm_lifecycle_event`"),
		a(AttrOriginTest, TypeString, "tests", "pytest: the node id (`tests/test_net.py::test_proxy`, the phase dropped); go test: the package name of the test binary (`netprobe` for `netprobe.test`)",
			"`PYTEST_CURRENT_TEST`; the binary's name"),
		a(AttrOriginMakeTarget, TypeString, "when make's command line names one", "the first goal on make's command line (options and their values, and `VAR=value`, skipped)",
			"command line"),
		a(AttrOriginFile, TypeString, "when known", "the file the origin names: the package's `package.json`, the test file (relative to pytest's root directory), the Go package's directory, the crate's `Cargo.toml`, the Python source tree's metadata file the name came from (else the first of them found, else the `setup.py` the build runs), make's `-f` file (made absolute with make's working directory), the script (made absolute with the process's working directory)",
			"environment, command line, working directory"),
		a(AttrOriginProjectDir, TypeString, "package scripts", "where the package manager was started: the project that installs the dependency",
			"`INIT_CWD`"),
		a(AttrOriginPID, TypeInt, "", "the process whose entry named the origin", chain),
		a(AttrOriginDepth, TypeInt, "", "0: the tool's process itself; n: its n-th ancestor", chain),
	}
}
