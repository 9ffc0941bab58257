// SPDX-License-Identifier: Apache-2.0

// Package cicd tells which CI job a process runs in, from that process's
// environment: the cicd.* and vcs.* attributes of docs/record.md. Only the
// variables named in the allow-list below are ever kept; every other
// variable (tokens, passwords, a user's secrets) is dropped while the
// environment is parsed and never leaves this package.
package cicd

import (
	"net/url"
	"strings"

	"github.com/mitmexec/mitmexec/internal/record"
)

// Context is the CI job a process runs in. An empty field has nothing true
// to say and is left out of the record.
type Context struct {
	PipelineName, PipelineRunID, PipelineRunURL string
	TaskName, TaskRunID, TaskRunURL             string
	WorkerName                                  string
	VCSProvider, RepositoryURL                  string
	RefHeadName, RefHeadRevision, ChangeID      string
}

// KV is one attribute.
type KV struct{ Key, Value string }

// Attributes returns the non-empty attributes in the contract's order.
func (c Context) Attributes() []KV {
	all := [...]KV{
		{record.AttrCICDPipelineName, c.PipelineName}, {record.AttrCICDPipelineRunID, c.PipelineRunID}, {record.AttrCICDPipelineRunURL, c.PipelineRunURL},
		{record.AttrCICDTaskName, c.TaskName}, {record.AttrCICDTaskRunID, c.TaskRunID}, {record.AttrCICDTaskRunURL, c.TaskRunURL},
		{record.AttrCICDWorkerName, c.WorkerName}, {record.AttrVCSProviderName, c.VCSProvider}, {record.AttrVCSRepositoryURL, c.RepositoryURL},
		{record.AttrVCSRefHeadName, c.RefHeadName}, {record.AttrVCSRefHeadRevision, c.RefHeadRevision}, {record.AttrVCSChangeID, c.ChangeID},
	}
	out := make([]KV, 0, len(all))
	for _, kv := range all {
		if kv.Value != "" {
			out = append(out, kv)
		}
	}
	return out
}

// Empty reports whether the process runs in no CI job known here.
func (c Context) Empty() bool { return c == Context{} }

// allowedNames is every variable name the mappings read, each between
// spaces. A name not here is dropped by Parse, so no mapping can reach a
// variable by mistake (a test checks every name the mappings read is
// listed). A constant: nothing can add a name at run time.
const allowedNames = " " +
	// which system
	"GITHUB_ACTIONS GITLAB_CI JENKINS_URL BUILDKITE CIRCLECI TF_BUILD " +
	// GitHub Actions
	"GITHUB_WORKFLOW GITHUB_RUN_ID GITHUB_SERVER_URL GITHUB_REPOSITORY GITHUB_JOB RUNNER_NAME " +
	"GITHUB_HEAD_REF GITHUB_REF_NAME GITHUB_SHA GITHUB_REF " +
	// GitLab CI
	"CI_PIPELINE_NAME CI_PROJECT_PATH CI_PIPELINE_ID CI_PIPELINE_URL CI_JOB_NAME CI_JOB_ID " +
	"CI_JOB_URL CI_RUNNER_DESCRIPTION CI_PROJECT_URL CI_COMMIT_REF_NAME CI_COMMIT_SHA CI_MERGE_REQUEST_IID " +
	// Jenkins
	"JOB_NAME BUILD_NUMBER BUILD_URL STAGE_NAME NODE_NAME GIT_URL CHANGE_BRANCH BRANCH_NAME GIT_BRANCH GIT_COMMIT CHANGE_ID " +
	// Buildkite
	"BUILDKITE_PIPELINE_SLUG BUILDKITE_BUILD_ID BUILDKITE_BUILD_URL BUILDKITE_LABEL BUILDKITE_JOB_ID " +
	"BUILDKITE_AGENT_NAME BUILDKITE_PIPELINE_PROVIDER BUILDKITE_REPO BUILDKITE_BRANCH BUILDKITE_COMMIT BUILDKITE_PULL_REQUEST " +
	// CircleCI
	"CIRCLE_PROJECT_USERNAME CIRCLE_PROJECT_REPONAME CIRCLE_WORKFLOW_ID CIRCLE_JOB CIRCLE_BUILD_NUM " +
	"CIRCLE_BUILD_URL CIRCLE_REPOSITORY_URL CIRCLE_BRANCH CIRCLE_SHA1 CIRCLE_PULL_REQUEST " +
	// Azure Pipelines
	"BUILD_DEFINITIONNAME BUILD_BUILDID SYSTEM_COLLECTIONURI SYSTEM_TEAMPROJECT SYSTEM_JOBDISPLAYNAME " +
	"SYSTEM_JOBID AGENT_NAME BUILD_REPOSITORY_PROVIDER BUILD_REPOSITORY_URI " +
	"SYSTEM_PULLREQUEST_SOURCEBRANCH BUILD_SOURCEBRANCHNAME BUILD_SOURCEVERSION " +
	"SYSTEM_PULLREQUEST_PULLREQUESTNUMBER SYSTEM_PULLREQUEST_PULLREQUESTID "

// Allowed reports whether name is on the allow-list.
func Allowed(name string) bool {
	return name != "" && !strings.ContainsAny(name, " ") && strings.Contains(allowedNames, " "+name+" ")
}

// maxValue bounds one kept value: the longest fact here is a URL; a
// longer value is a process's attempt to inflate records, and is dropped.
const maxValue = 2048

// Parse keeps the allow-listed variables of a NUL-separated environment
// block (/proc/PID/environ). The first definition of a name wins, as in
// getenv.
func Parse(block []byte) map[string]string { return parse(block, Allowed) }

func parse(block []byte, allowed func(string) bool) map[string]string {
	env := map[string]string{}
	for len(block) > 0 {
		var entry []byte
		if i := indexByte(block, 0); i >= 0 {
			entry, block = block[:i], block[i+1:]
		} else {
			entry, block = block, nil
		}
		eq := indexByte(entry, '=')
		if eq <= 0 {
			continue
		}
		name := string(entry[:eq])
		if !allowed(name) {
			continue
		}
		if _, seen := env[name]; seen {
			continue
		}
		if len(entry)-eq-1 > maxValue {
			// Kept as empty, so that a later definition of the name
			// (which getenv would never return) cannot stand in for it.
			env[name] = ""
			continue
		}
		env[name] = string(entry[eq+1:])
	}
	return env
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// FromEnv maps allow-listed variables to the contract, for the first CI
// system whose marker variable is set; the zero Context when none is.
func FromEnv(env map[string]string) Context {
	return fromGetter(func(n string) string {
		if !Allowed(n) {
			// A mapping reading a name off the list is a bug caught by the
			// tests, never a way for a variable to leave.
			return ""
		}
		return strings.TrimSpace(env[n])
	})
}

func fromGetter(g getter) Context {
	var c Context
	switch {
	case g("GITHUB_ACTIONS") == "true":
		c = github(g)
	case g("GITLAB_CI") == "true":
		c = gitlab(g)
	case g("BUILDKITE") == "true":
		c = buildkite(g)
	case g("CIRCLECI") == "true":
		c = circleci(g)
	case strings.EqualFold(g("TF_BUILD"), "true"):
		c = azure(g)
	case g("JENKINS_URL") != "":
		c = jenkins(g)
	default:
		return Context{}
	}
	// A clone URL may carry credentials (https://user:token@host/...):
	// only the URL without them leaves.
	c.PipelineRunURL = stripUserinfo(c.PipelineRunURL)
	c.TaskRunURL = stripUserinfo(c.TaskRunURL)
	c.RepositoryURL = stripUserinfo(c.RepositoryURL)
	return c
}

type getter func(string) string

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// join concatenates parts only when every part is known: a URL built from
// a missing part would point somewhere else.
func join(parts ...string) string {
	for _, p := range parts {
		if p == "" {
			return ""
		}
	}
	return strings.Join(parts, "")
}

// pullNumber is N of refs/pull/N/merge (or /head): GitHub's ref of a pull
// request's build.
func pullNumber(ref string) string {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		return ""
	}
	n, tail, ok := strings.Cut(rest, "/")
	if !ok || (tail != "merge" && tail != "head") || !digits(n) {
		return ""
	}
	return n
}

// lastNumber is the trailing number of a pull request's URL.
func lastNumber(u string) string {
	u = strings.TrimSuffix(u, "/")
	n := u[strings.LastIndexByte(u, '/')+1:]
	if !digits(n) {
		return ""
	}
	return n
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func github(g getter) Context {
	server, repo, run := strings.TrimSuffix(g("GITHUB_SERVER_URL"), "/"), g("GITHUB_REPOSITORY"), g("GITHUB_RUN_ID")
	c := Context{
		PipelineName: g("GITHUB_WORKFLOW"), PipelineRunID: run,
		PipelineRunURL: join(server, "/", repo, "/actions/runs/", run),
		TaskName:       g("GITHUB_JOB"), WorkerName: g("RUNNER_NAME"), VCSProvider: "github",
		RepositoryURL: join(server, "/", repo), RefHeadName: first(g("GITHUB_HEAD_REF"), g("GITHUB_REF_NAME")),
		RefHeadRevision: g("GITHUB_SHA"),
	}
	c.ChangeID = pullNumber(g("GITHUB_REF"))
	return c
}

func gitlab(g getter) Context {
	return Context{
		PipelineName: first(g("CI_PIPELINE_NAME"), g("CI_PROJECT_PATH")), PipelineRunID: g("CI_PIPELINE_ID"),
		PipelineRunURL: g("CI_PIPELINE_URL"), TaskName: g("CI_JOB_NAME"), TaskRunID: g("CI_JOB_ID"),
		TaskRunURL: g("CI_JOB_URL"), WorkerName: g("CI_RUNNER_DESCRIPTION"), VCSProvider: "gitlab",
		RepositoryURL: g("CI_PROJECT_URL"), RefHeadName: g("CI_COMMIT_REF_NAME"), RefHeadRevision: g("CI_COMMIT_SHA"),
		ChangeID: g("CI_MERGE_REQUEST_IID"),
	}
}

// jenkins: the Git plugin and multibranch pipelines set these; a freestyle
// job without Git has only the job and build.
func jenkins(g getter) Context {
	repo := g("GIT_URL")
	return Context{
		PipelineName: g("JOB_NAME"), PipelineRunID: g("BUILD_NUMBER"), PipelineRunURL: g("BUILD_URL"),
		TaskName: g("STAGE_NAME"), WorkerName: g("NODE_NAME"), VCSProvider: providerOfURL(repo),
		RepositoryURL: repo, RefHeadName: first(g("CHANGE_BRANCH"), g("BRANCH_NAME"), g("GIT_BRANCH")),
		RefHeadRevision: g("GIT_COMMIT"), ChangeID: g("CHANGE_ID"),
	}
}

func buildkite(g getter) Context {
	buildURL, job := g("BUILDKITE_BUILD_URL"), g("BUILDKITE_JOB_ID")
	pr := g("BUILDKITE_PULL_REQUEST")
	if pr == "false" {
		pr = ""
	}
	provider := strings.ToLower(g("BUILDKITE_PIPELINE_PROVIDER"))
	if !knownProvider(provider) {
		provider = providerOfURL(g("BUILDKITE_REPO"))
	}
	return Context{
		PipelineName: g("BUILDKITE_PIPELINE_SLUG"), PipelineRunID: g("BUILDKITE_BUILD_ID"), PipelineRunURL: buildURL,
		TaskName: g("BUILDKITE_LABEL"), TaskRunID: job, TaskRunURL: join(buildURL, "#", job),
		WorkerName: g("BUILDKITE_AGENT_NAME"), VCSProvider: provider, RepositoryURL: g("BUILDKITE_REPO"),
		RefHeadName: g("BUILDKITE_BRANCH"), RefHeadRevision: g("BUILDKITE_COMMIT"), ChangeID: pr,
	}
}

// circleci: the workflow is the pipeline run; a job's number and URL are
// CIRCLE_BUILD_NUM and CIRCLE_BUILD_URL. CircleCI names no runner.
func circleci(g getter) Context {
	c := Context{
		PipelineName:  join(g("CIRCLE_PROJECT_USERNAME"), "/", g("CIRCLE_PROJECT_REPONAME")),
		PipelineRunID: g("CIRCLE_WORKFLOW_ID"), TaskName: g("CIRCLE_JOB"), TaskRunID: g("CIRCLE_BUILD_NUM"),
		TaskRunURL: g("CIRCLE_BUILD_URL"), VCSProvider: providerOfURL(g("CIRCLE_REPOSITORY_URL")),
		RepositoryURL: g("CIRCLE_REPOSITORY_URL"), RefHeadName: g("CIRCLE_BRANCH"), RefHeadRevision: g("CIRCLE_SHA1"),
	}
	c.ChangeID = lastNumber(g("CIRCLE_PULL_REQUEST"))
	return c
}

func azure(g getter) Context {
	coll, project, build := strings.TrimSuffix(g("SYSTEM_COLLECTIONURI"), "/"), g("SYSTEM_TEAMPROJECT"), g("BUILD_BUILDID")
	var provider string
	switch g("BUILD_REPOSITORY_PROVIDER") {
	case "GitHub", "GitHubEnterprise":
		provider = "github"
	case "Bitbucket":
		provider = "bitbucket"
	}
	return Context{
		PipelineName: g("BUILD_DEFINITIONNAME"), PipelineRunID: build,
		PipelineRunURL: join(coll, "/", url.PathEscape(project), "/_build/results?buildId=", build),
		TaskName:       g("SYSTEM_JOBDISPLAYNAME"), TaskRunID: g("SYSTEM_JOBID"), WorkerName: g("AGENT_NAME"),
		VCSProvider: provider, RepositoryURL: g("BUILD_REPOSITORY_URI"),
		RefHeadName:     first(strings.TrimPrefix(g("SYSTEM_PULLREQUEST_SOURCEBRANCH"), "refs/heads/"), g("BUILD_SOURCEBRANCHNAME")),
		RefHeadRevision: g("BUILD_SOURCEVERSION"),
		ChangeID:        first(g("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER"), g("SYSTEM_PULLREQUEST_PULLREQUESTID")),
	}
}

func knownProvider(p string) bool {
	switch p {
	case "github", "gitlab", "bitbucket", "gitea":
		return true
	}
	return false
}

// providerOfURL names the provider only for the hosts whose name says it;
// a self-hosted server's name says nothing true about its software.
func providerOfURL(raw string) string {
	host := raw
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if at := strings.IndexByte(raw, '@'); at >= 0 { // scp-like git@host:org/repo
		host = raw[at+1:]
		if c := strings.IndexByte(host, ':'); c >= 0 {
			host = host[:c]
		}
	} else {
		return ""
	}
	switch strings.ToLower(host) {
	case "github.com":
		return "github"
	case "gitlab.com":
		return "gitlab"
	case "bitbucket.org":
		return "bitbucket"
	}
	return ""
}

// stripUserinfo drops user:password@ from a URL. A scp-like address
// (git@host:path) keeps its user, a login name and no secret; one whose
// user part holds a ':' (user:password@) is dropped whole rather than
// risk a secret, as is a URL that does not parse.
func stripUserinfo(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		if at := strings.IndexByte(raw, '@'); at >= 0 && strings.Contains(raw[:at], ":") {
			return ""
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
