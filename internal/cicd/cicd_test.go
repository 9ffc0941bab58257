// SPDX-License-Identifier: Apache-2.0

package cicd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/procfs"
	"github.com/mitmexec/mitmexec/internal/record"
)

// Secrets is what a CI job's environment holds that must never leave.
var secretEnv = map[string]string{
	"GITHUB_TOKEN":                   "ghs_SECRETgithubtoken",
	"ACTIONS_RUNTIME_TOKEN":          "SECRETruntime",
	"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "SECRETidtoken",
	"CI_JOB_TOKEN":                   "SECRETjobtoken",
	"CI_REGISTRY_PASSWORD":           "SECRETregistry",
	"CI_REPOSITORY_URL":              "https://gitlab-ci-token:SECRETclone@gitlab.example/g/p.git",
	"AWS_SECRET_ACCESS_KEY":          "SECRETaws",
}

// GitHubEnv is a pull request's job as the runner sets it.
func GitHubEnv() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW": "CI", "GITHUB_RUN_ID": "9876543210",
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/app", "GITHUB_JOB": "build",
		"RUNNER_NAME": "runner-7", "GITHUB_HEAD_REF": "feature/x", "GITHUB_REF_NAME": "42/merge",
		"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF": "refs/pull/42/merge",
	}
}

func GitLabEnv() map[string]string {
	return map[string]string{
		"GITLAB_CI": "true", "CI_PIPELINE_NAME": "", "CI_PROJECT_PATH": "group/app", "CI_PIPELINE_ID": "1001",
		"CI_PIPELINE_URL": "https://gitlab.example/group/app/-/pipelines/1001", "CI_JOB_NAME": "test",
		"CI_JOB_ID": "5005", "CI_JOB_URL": "https://gitlab.example/group/app/-/jobs/5005",
		"CI_RUNNER_DESCRIPTION": "shared-runner-3", "CI_PROJECT_URL": "https://gitlab.example/group/app",
		"CI_COMMIT_REF_NAME": "feature/y", "CI_COMMIT_SHA": "fedcba9876543210fedcba9876543210fedcba98",
		"CI_MERGE_REQUEST_IID": "17",
	}
}

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func block(env map[string]string) []byte {
	var b []byte
	for k, v := range env {
		b = append(append(b, k+"="+v...), 0)
	}
	return b
}

func attrs(c Context) map[string]string {
	m := map[string]string{}
	for _, kv := range c.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func checkAttrs(t *testing.T, got Context, want map[string]string) {
	t.Helper()
	g := attrs(got)
	for k, v := range want {
		if g[k] != v {
			t.Errorf("%s = %q, want %q", k, g[k], v)
		}
	}
	for k, v := range g {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %q", k, v)
		}
	}
}

func TestGitHubContract(t *testing.T) {
	c := FromEnv(Parse(block(with(GitHubEnv(), secretEnv))))
	checkAttrs(t, c, map[string]string{
		record.AttrCICDPipelineName: "CI", record.AttrCICDPipelineRunID: "9876543210",
		record.AttrCICDPipelineRunURL: "https://github.com/octo/app/actions/runs/9876543210", record.AttrCICDTaskName: "build",
		record.AttrCICDWorkerName: "runner-7", record.AttrVCSProviderName: "github", record.AttrVCSRepositoryURL: "https://github.com/octo/app",
		record.AttrVCSRefHeadName: "feature/x", record.AttrVCSRefHeadRevision: "0123456789abcdef0123456789abcdef01234567",
		record.AttrVCSChangeID: "42",
	})
	// A push build: no head ref, the branch name, no change.
	env := GitHubEnv()
	env["GITHUB_HEAD_REF"], env["GITHUB_REF_NAME"], env["GITHUB_REF"] = "", "main", "refs/heads/main"
	c = FromEnv(env)
	if c.RefHeadName != "main" || c.ChangeID != "" {
		t.Errorf("push: head %q change %q", c.RefHeadName, c.ChangeID)
	}
}

func TestGitLabContract(t *testing.T) {
	c := FromEnv(Parse(block(with(GitLabEnv(), secretEnv))))
	checkAttrs(t, c, map[string]string{
		record.AttrCICDPipelineName: "group/app", record.AttrCICDPipelineRunID: "1001",
		record.AttrCICDPipelineRunURL: "https://gitlab.example/group/app/-/pipelines/1001", record.AttrCICDTaskName: "test",
		record.AttrCICDTaskRunID: "5005", record.AttrCICDTaskRunURL: "https://gitlab.example/group/app/-/jobs/5005",
		record.AttrCICDWorkerName: "shared-runner-3", record.AttrVCSProviderName: "gitlab",
		record.AttrVCSRepositoryURL: "https://gitlab.example/group/app", record.AttrVCSRefHeadName: "feature/y",
		record.AttrVCSRefHeadRevision: "fedcba9876543210fedcba9876543210fedcba98", record.AttrVCSChangeID: "17",
	})
	env := GitLabEnv()
	env["CI_PIPELINE_NAME"] = "nightly"
	if c := FromEnv(env); c.PipelineName != "nightly" {
		t.Errorf("pipeline name %q, want CI_PIPELINE_NAME", c.PipelineName)
	}
}

func TestOtherSystems(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{"jenkins", map[string]string{
			"JENKINS_URL": "https://ci.example/", "JOB_NAME": "app/PR-5", "BUILD_NUMBER": "12",
			"BUILD_URL": "https://ci.example/job/app/job/PR-5/12/", "STAGE_NAME": "Build", "NODE_NAME": "agent-1",
			"GIT_URL": "https://bot:SECRETpat@github.com/octo/app.git", "CHANGE_BRANCH": "fix", "BRANCH_NAME": "PR-5",
			"GIT_COMMIT": "abc", "CHANGE_ID": "5",
		}, map[string]string{
			record.AttrCICDPipelineName: "app/PR-5", record.AttrCICDPipelineRunID: "12", record.AttrCICDPipelineRunURL: "https://ci.example/job/app/job/PR-5/12/",
			record.AttrCICDTaskName: "Build", record.AttrCICDWorkerName: "agent-1", record.AttrVCSProviderName: "github",
			record.AttrVCSRepositoryURL: "https://github.com/octo/app.git", record.AttrVCSRefHeadName: "fix", record.AttrVCSRefHeadRevision: "abc",
			record.AttrVCSChangeID: "5",
		}},
		{"buildkite", map[string]string{
			"BUILDKITE": "true", "BUILDKITE_PIPELINE_SLUG": "app", "BUILDKITE_BUILD_ID": "b-1",
			"BUILDKITE_BUILD_URL": "https://buildkite.com/org/app/builds/3", "BUILDKITE_LABEL": ":go: test",
			"BUILDKITE_JOB_ID": "j-1", "BUILDKITE_AGENT_NAME": "agent-2", "BUILDKITE_PIPELINE_PROVIDER": "github",
			"BUILDKITE_REPO": "git@github.com:org/app.git", "BUILDKITE_BRANCH": "dev", "BUILDKITE_COMMIT": "def",
			"BUILDKITE_PULL_REQUEST": "false", "BUILDKITE_AGENT_ACCESS_TOKEN": "SECRETagent",
		}, map[string]string{
			record.AttrCICDPipelineName: "app", record.AttrCICDPipelineRunID: "b-1", record.AttrCICDPipelineRunURL: "https://buildkite.com/org/app/builds/3",
			record.AttrCICDTaskName: ":go: test", record.AttrCICDTaskRunID: "j-1", record.AttrCICDTaskRunURL: "https://buildkite.com/org/app/builds/3#j-1",
			record.AttrCICDWorkerName: "agent-2", record.AttrVCSProviderName: "github", record.AttrVCSRepositoryURL: "git@github.com:org/app.git",
			record.AttrVCSRefHeadName: "dev", record.AttrVCSRefHeadRevision: "def",
		}},
		{"circleci", map[string]string{
			"CIRCLECI": "true", "CIRCLE_PROJECT_USERNAME": "org", "CIRCLE_PROJECT_REPONAME": "app",
			"CIRCLE_WORKFLOW_ID": "w-1", "CIRCLE_JOB": "test", "CIRCLE_BUILD_NUM": "77",
			"CIRCLE_BUILD_URL": "https://circleci.com/gh/org/app/77", "CIRCLE_REPOSITORY_URL": "git@github.com:org/app.git",
			"CIRCLE_BRANCH": "pr-branch", "CIRCLE_SHA1": "123", "CIRCLE_PULL_REQUEST": "https://github.com/org/app/pull/9",
		}, map[string]string{
			record.AttrCICDPipelineName: "org/app", record.AttrCICDPipelineRunID: "w-1", record.AttrCICDTaskName: "test", record.AttrCICDTaskRunID: "77",
			record.AttrCICDTaskRunURL: "https://circleci.com/gh/org/app/77", record.AttrVCSProviderName: "github",
			record.AttrVCSRepositoryURL: "git@github.com:org/app.git", record.AttrVCSRefHeadName: "pr-branch", record.AttrVCSRefHeadRevision: "123",
			record.AttrVCSChangeID: "9",
		}},
		{"azure", map[string]string{
			"TF_BUILD": "True", "BUILD_DEFINITIONNAME": "app-ci", "BUILD_BUILDID": "300",
			"SYSTEM_COLLECTIONURI": "https://dev.azure.com/org/", "SYSTEM_TEAMPROJECT": "My Project",
			"SYSTEM_JOBDISPLAYNAME": "Build job", "SYSTEM_JOBID": "jid", "AGENT_NAME": "Hosted Agent",
			"BUILD_REPOSITORY_PROVIDER": "GitHub", "BUILD_REPOSITORY_URI": "https://github.com/org/app",
			"SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/topic", "BUILD_SOURCEBRANCHNAME": "merge",
			"BUILD_SOURCEVERSION": "456", "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "11", "SYSTEM_ACCESSTOKEN": "SECRETazure",
		}, map[string]string{
			record.AttrCICDPipelineName: "app-ci", record.AttrCICDPipelineRunID: "300",
			record.AttrCICDPipelineRunURL: "https://dev.azure.com/org/My%20Project/_build/results?buildId=300",
			record.AttrCICDTaskName:       "Build job", record.AttrCICDTaskRunID: "jid", record.AttrCICDWorkerName: "Hosted Agent", record.AttrVCSProviderName: "github",
			record.AttrVCSRepositoryURL: "https://github.com/org/app", record.AttrVCSRefHeadName: "topic", record.AttrVCSRefHeadRevision: "456",
			record.AttrVCSChangeID: "11",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAttrs(t, FromEnv(Parse(block(tc.env))), tc.want) })
	}
}

func TestNoCI(t *testing.T) {
	if c := FromEnv(Parse(block(with(secretEnv, map[string]string{"HOME": "/root", "CI": "true"})))); !c.Empty() {
		t.Errorf("no CI system named, got %+v", c)
	}
}

// TestParseKeepsOnlyAllowed: tokens are dropped while parsing, so nothing
// downstream can hand them on.
func TestParseKeepsOnlyAllowed(t *testing.T) {
	env := Parse(block(with(with(GitHubEnv(), GitLabEnv()), secretEnv)))
	for k, v := range env {
		if !Allowed(k) {
			t.Errorf("kept %s", k)
		}
		if strings.Contains(v, "SECRET") {
			t.Errorf("kept a secret in %s", k)
		}
	}
	if _, ok := env["GITHUB_TOKEN"]; ok {
		t.Error("GITHUB_TOKEN kept")
	}
	// first definition wins; oversized values and malformed entries are
	// dropped, and a later definition of an oversized one does not stand in
	got := Parse([]byte("GITHUB_JOB=a\x00GITHUB_JOB=b\x00=x\x00NOEQUALS\x00GITHUB_SHA=" + strings.Repeat("f", maxValue+1) + "\x00GITHUB_SHA=blame\x00"))
	if got["GITHUB_JOB"] != "a" || got["GITHUB_SHA"] != "" || len(got) != 2 {
		t.Errorf("parse: %v", got)
	}
}

// TestMappingsReadOnlyAllowed runs every mapping with a getter that fails
// on a name off the allow-list.
func TestMappingsReadOnlyAllowed(t *testing.T) {
	for _, marker := range []string{"GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "TF_BUILD", "JENKINS_URL"} {
		fromGetter(func(n string) string {
			if !Allowed(n) {
				t.Errorf("%s mapping reads %s, not on the allow-list", marker, n)
			}
			if n == marker {
				return "true"
			}
			return "x"
		})
	}
	if Allowed("GITHUB_TOKEN") || Allowed("CI_JOB_TOKEN") || Allowed("") || Allowed("GITHUB_JOB GITHUB_SHA") {
		t.Error("allow-list too wide")
	}
}

func TestStripUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/x":     "https://host/x",
		"https://host/x":         "https://host/x",
		"git@github.com:o/r.git": "git@github.com:o/r.git",
		"user:pass@host:o/r":     "",
		"":                       "",
		"https://tok@host/r.git": "https://host/r.git",
	} {
		if got := stripUserinfo(in); got != want {
			t.Errorf("stripUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeProc writes procRoot/PID/{stat,environ}.
func fakeProc(t *testing.T, root string, pid int, startTicks int, env []byte) {
	t.Helper()
	d := filepath.Join(root, itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := itoa(pid) + " (sh) S 1 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " + itoa(startTicks) + " 0 0\n"
	if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if env != nil {
		if err := os.WriteFile(filepath.Join(d, "environ"), env, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLookupPaths(t *testing.T) {
	root := t.TempDir()
	gh := block(GitHubEnv())
	// 100: the tool, alive. 200: its step shell. 300: a reused pid.
	fakeProc(t, root, 100, 500, block(with(GitHubEnv(), map[string]string{"GITHUB_JOB": "tool"})))
	fakeProc(t, root, 200, 400, gh)
	fakeProc(t, root, 300, 999, block(GitLabEnv()))
	anc := []event.Ancestor{{PID: 300, StartBootTime: 300 * 1e7}, {PID: 200, StartBootTime: 400 * 1e7}}

	r := Lookup(root, 100, 500*1e7, anc)
	if r.Source != SourceProcess || r.Context.TaskName != "tool" {
		t.Errorf("alive: %+v", r)
	}
	// The tool is gone (its pid now names another start): the reused pid
	// 300 is skipped, the shell serves.
	r = Lookup(root, 100, 510*1e7, anc)
	if r.Source != SourceAncestor || r.Depth != 1 || r.Context.TaskName != "build" {
		t.Errorf("gone: %+v", r)
	}
	// The tool runs with a cleared environment (env -i): its step shell names the job.
	fakeProc(t, root, 500, 800, []byte("PATH=/bin\x00"))
	r = Lookup(root, 500, 800*1e7, []event.Ancestor{{PID: 200, StartBootTime: 400 * 1e7}})
	if r.Source != SourceAncestor || r.Context.TaskName != "build" {
		t.Errorf("cleared environment: %+v", r)
	}
	// Exited ancestors are skipped, an empty environ (a zombie) does not serve.
	fakeProc(t, root, 400, 600, []byte{})
	r = Lookup(root, 100, 1, []event.Ancestor{{PID: 400, StartBootTime: 600 * 1e7}, {PID: 200, StartBootTime: 400 * 1e7, Exited: true}})
	if r.Source != SourceNone || !r.Context.Empty() {
		t.Errorf("none: %+v", r)
	}
}

func TestEnvironBounds(t *testing.T) {
	root := t.TempDir()
	env := []byte("GITHUB_ACTIONS=true\x00GITHUB_JOB=build\x00GITHUB_SHA=abcdef\x00")
	fakeProc(t, root, 10, 7, env)
	got, err := Environ(root, 10, 7*1e7, len("GITHUB_ACTIONS=true\x00GITHUB_JOB=build\x00GITHUB_SHA=ab"))
	if err != nil {
		t.Fatal(err)
	}
	if got["GITHUB_JOB"] != "build" || got["GITHUB_SHA"] != "" {
		t.Errorf("cut read kept a cut value: %v", got)
	}
	if _, err := Environ(root, 10, 7*1e7, 0); err == nil || !strings.Contains(err.Error(), "maxBytes is 0") {
		t.Errorf("zero bound: %v", err)
	}
	// The pid is reused between the read and the second check.
	_, err = environ(root, 10, 7*1e7, MaxEnviron, Allowed, func() { fakeProc(t, root, 10, 20, nil) })
	if err == nil || !strings.Contains(err.Error(), "reused") {
		t.Errorf("reuse during read: %v", err)
	}
}

// TestEnvironOwnProcess reads a real /proc entry: a child's own environ.
func TestEnvironOwnProcess(t *testing.T) {
	st, err := procfs.ReadStat("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Skip("no /proc")
	}
	got, err := Environ("/proc", uint32(os.Getpid()), st.StartTicks*1e7, MaxEnviron)
	if err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if !Allowed(k) {
			t.Errorf("kept %s", k)
		}
	}
}
