// SPDX-License-Identifier: Apache-2.0

// Package record is the contract of mitmexec's output in one place: the
// event's name, the fixed values of the rule it reports, the name of every
// attribute of the log record and of its resource, and the outcomes
// `mitmexec.action` can say. Dashboards, alert rules and users' pipelines
// depend on every name here: change one only on purpose, with them, the
// golden files and docs/record.md (whose tables are generated from
// Attributes by `go generate ./internal/record`) in the same commit.
//
// The package imports nothing of the project's, so every package that
// emits a name can import it.
package record

//go:generate go run ./cmd/recorddoc -doc ../../docs/record.md

// The log record's own fields.
const (
	EventName    = "net_mitm_tool_exec"
	SeverityText = "CRITICAL"
)

// The rule every record reports, and its place in MITRE ATT&CK: the fixed
// values of the security_rule.* and threat.* attributes.
const (
	RuleName        = EventName
	RuleCategory    = "Discovery"
	RuleDescription = "Network man-in-the-middle tool"
	RulesetName     = "mitmexec"
	ThreatFramework = "MITRE ATT&CK"
	TacticName      = "Discovery"
	TacticID        = "TA0007"
	TechniqueName   = "Network Sniffing"
	TechniqueID     = "T1040"
)

// Resource attributes: the host's stream, and the container and pod of a
// record's process.
const (
	AttrHostName          = "host.name"
	AttrHostID            = "host.id"
	AttrOSType            = "os.type"
	AttrServiceName       = "service.name"
	AttrServiceInstanceID = "service.instance.id"
	AttrK8sNodeName       = "k8s.node.name"
	AttrK8sPodUID         = "k8s.pod.uid"
	AttrK8sPodName        = "k8s.pod.name"
	AttrK8sNamespaceName  = "k8s.namespace.name"
	AttrK8sContainerName  = "k8s.container.name"
	AttrContainerImage    = "container.image.name"
	// AttrContainerID is on the resource and on the record both.
	AttrContainerID = "container.id"
)

// Attributes of every detection: the rule, the tool and the process.
const (
	AttrRuleName        = "security_rule.name"
	AttrRuleCategory    = "security_rule.category"
	AttrRuleDescription = "security_rule.description"
	AttrRulesetName     = "security_rule.ruleset.name"
	AttrThreatFramework = "threat.framework"
	AttrTacticName      = "threat.tactic.name"
	AttrTacticID        = "threat.tactic.id"
	AttrTechniqueName   = "threat.technique.name"
	AttrTechniqueID     = "threat.technique.id"

	AttrToolName         = "mitmexec.tool.name"
	AttrToolTechniqueID  = "mitmexec.tool.technique.id"
	AttrMatch            = "mitmexec.match"
	AttrMatchDetail      = "mitmexec.match.detail"
	AttrPID              = "process.pid"
	AttrVPID             = "process.vpid"
	AttrParentPID        = "process.parent_pid"
	AttrExecutablePath   = "process.executable.path"
	AttrExecutableName   = "process.executable.name"
	AttrCommandArgs      = "process.command_args"
	AttrCommandLine      = "process.command_line"
	AttrUserID           = "process.user.id"
	AttrRealUserID       = "process.real_user.id"
	AttrLoginUserID      = "mitmexec.login_user.id"
	AttrOwner            = "process.owner"
	AttrWorkingDirectory = "process.working_directory"
	AttrInteractive      = "process.interactive"
	AttrCgroup           = "process.linux.cgroup"
	AttrCreationTime     = "process.creation.time"
	AttrExecFilename     = "mitmexec.exec.filename"
	AttrExecInterpreter  = "mitmexec.exec.interpreter"
	AttrExecutableSHA256 = "mitmexec.executable.sha256"
	AttrExecutableInode  = "mitmexec.executable.inode"
	AttrExecutableDevice = "mitmexec.executable.device"
	AttrArgsTruncated    = "mitmexec.args_truncated"
	AttrPathsTruncated   = "mitmexec.paths_truncated"
	AttrParentExecutable = "mitmexec.parent.executable.path"
	AttrAncestors        = "mitmexec.ancestors"
	AttrNamespacePID     = "mitmexec.namespace.pid"
	AttrNamespaceMnt     = "mitmexec.namespace.mnt"
	// AttrAction's value is an Outcome (the name is the contract's; the
	// thing is what happened to the process).
	AttrAction          = "mitmexec.action"
	AttrActionDelay     = "mitmexec.action.delay_ms"
	AttrRepeatCount     = "mitmexec.repeat_count"
	AttrSummarizedCount = "mitmexec.summarized_count"
)

// Attributes of a network behaviour record (mitmexec.match
// network_behaviour).
const (
	AttrNetworkClaim          = "mitmexec.network.claim"
	AttrNetworkBehaviour      = "mitmexec.network.behaviour"
	AttrNetworkInterfaceName  = "network.interface.name"
	AttrNetworkInterfaceIndex = "mitmexec.network.interface.index"
	AttrNetworkClaimedAddress = "mitmexec.network.claimed_address"
	AttrNetworkClaimedMAC     = "mitmexec.network.claimed_mac"
	AttrNetworkTargetAddress  = "mitmexec.network.target_address"
	AttrNamespaceNet          = "mitmexec.namespace.net"
	AttrNetworkSenderPID      = "mitmexec.network.sender.pid"
)

// The CI job the process ran in: the semantic conventions' cicd.* and
// vcs.* registries.
const (
	AttrCICDPipelineName   = "cicd.pipeline.name"
	AttrCICDPipelineRunID  = "cicd.pipeline.run.id"
	AttrCICDPipelineRunURL = "cicd.pipeline.run.url.full"
	AttrCICDTaskName       = "cicd.pipeline.task.name"
	AttrCICDTaskRunID      = "cicd.pipeline.task.run.id"
	AttrCICDTaskRunURL     = "cicd.pipeline.task.run.url.full"
	AttrCICDWorkerName     = "cicd.worker.name"
	AttrVCSProviderName    = "vcs.provider.name"
	AttrVCSRepositoryURL   = "vcs.repository.url.full"
	AttrVCSRefHeadName     = "vcs.ref.head.name"
	AttrVCSRefHeadRevision = "vcs.ref.head.revision"
	AttrVCSChangeID        = "vcs.change.id"
)

// The code up the process tree that started the tool.
const (
	AttrOriginKind           = "mitmexec.origin.kind"
	AttrOriginManager        = "mitmexec.origin.package.manager"
	AttrOriginPackageName    = "mitmexec.origin.package.name"
	AttrOriginPackageVersion = "mitmexec.origin.package.version"
	AttrOriginDependency     = "mitmexec.origin.package.dependency"
	AttrOriginLifecycleEvent = "mitmexec.origin.lifecycle_event"
	AttrOriginTest           = "mitmexec.origin.test"
	AttrOriginMakeTarget     = "mitmexec.origin.make.target"
	AttrOriginFile           = "mitmexec.origin.file"
	AttrOriginProjectDir     = "mitmexec.origin.project.dir"
	AttrOriginPID            = "mitmexec.origin.process.pid"
	AttrOriginDepth          = "mitmexec.origin.depth"
)

// Outcome is what was done to the process: the value of mitmexec.action.
type Outcome string

const (
	// OutcomeAlerted: reported, left running (the action is alert).
	OutcomeAlerted Outcome = "alerted"
	// OutcomeKilled: the kernel's exec hook killed it before it ran.
	OutcomeKilled Outcome = "killed"
	// OutcomeKilledLate: user space killed it once it had started
	// (what only user space could judge: scripts, interpreter arguments,
	// first sight of a copy, a lie on the wire).
	OutcomeKilledLate Outcome = "killed_late"
	// OutcomeDenied: the BPF LSM refused the exec, or the frame (the
	// process that sent it is killed too).
	OutcomeDenied Outcome = "denied"
	// OutcomeKillFailed: the kill was due and did not happen.
	OutcomeKillFailed Outcome = "kill_failed"
)

// Outcomes are every Outcome, in the order the contract lists them.
func Outcomes() []Outcome {
	return []Outcome{OutcomeAlerted, OutcomeKilled, OutcomeKilledLate, OutcomeDenied, OutcomeKillFailed}
}
