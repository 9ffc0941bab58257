// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// safeBuffer is a buffer the backend's handler writes and the test reads.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
}

func (s *safeBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// tokens are what a job's environment holds that must never leave: the
// test puts them in every step's environment and looks for them in
// everything the collector and the steps wrote.
var tokens = map[string]string{
	"GITHUB_TOKEN":          "ghs_mitmexecTestSecret1",
	"ACTIONS_RUNTIME_TOKEN": "mitmexecTestSecret2",
	"CI_JOB_TOKEN":          "mitmexecTestSecret3",
	"CI_REGISTRY_PASSWORD":  "mitmexecTestSecret4",
	"CI_REPOSITORY_URL":     "https://gitlab-ci-token:mitmexecTestSecret5@gitlab.example/g/p.git",
}

// contract is the CI/CD table of docs/record.md.
var contract = []string{
	"cicd.pipeline.name", "cicd.pipeline.run.id", "cicd.pipeline.run.url.full", "cicd.pipeline.task.name",
	"cicd.pipeline.task.run.id", "cicd.pipeline.task.run.url.full", "cicd.worker.name", "vcs.provider.name",
	"vcs.repository.url.full", "vcs.ref.head.name", "vcs.ref.head.revision", "vcs.change.id",
}

type fixture struct {
	root, collector, node, arpspoof string
}

func setup(t *testing.T) fixture {
	t.Helper()
	testenv.RequireRoot(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The collector make test built ($MITMEXEC_OTELCOL, as test/e2e), else
	// this tree's build.
	f := fixture{root: root, collector: os.Getenv("MITMEXEC_OTELCOL")}
	if f.collector == "" {
		f.collector = filepath.Join(root, "_build", "otelcol-custom")
	}
	if _, err := os.Stat(f.collector); err != nil {
		testenv.SkipOrFail(t, "the collector is not built (make otelcol, or set MITMEXEC_OTELCOL): %v", err)
	}
	if f.node, err = exec.LookPath("node"); err != nil {
		testenv.SkipOrFail(t, "node is not installed (test/setup.sh installs nodejs): %v", err)
	}
	f.arpspoof = "/usr/sbin/arpspoof"
	if _, err := os.Stat(f.arpspoof); err != nil {
		testenv.SkipOrFail(t, "arpspoof is not installed (dsniff): %v", err)
	}
	return f
}

func baseEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8"}
	for k, v := range tokens {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// run runs argv with env in dir and returns its output and exit status.
func run(t *testing.T, env []string, dir string, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out.String())
	}
	return out.String(), 0
}

// waitForFile waits until file holds s (the sink has the detection), so
// that the post step does not race the exec's way through the pipeline.
func waitForFile(t *testing.T, file, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && bytes.Contains(b, []byte(s)) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never held %q", file, s)
}

// report reads mitmexec-report.json and returns the detection whose
// command line holds marker.
func report(t *testing.T, file, marker string) (map[string]any, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Detections []map[string]any }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Detections {
		if cl, _ := d["process.command_line"].(string); strings.Contains(cl, marker) {
			return d, len(r.Detections)
		}
	}
	t.Fatalf("no detection with %s in %s", marker, b)
	return nil, 0
}

// noTokens looks for every token's value in every file under dirs and in
// the texts.
func noTokens(t *testing.T, dirs []string, texts ...string) {
	t.Helper()
	check := func(where, s string) {
		for k, v := range tokens {
			secret := v
			if k == "CI_REPOSITORY_URL" {
				secret = "mitmexecTestSecret5"
			}
			if strings.Contains(s, secret) {
				t.Errorf("%s holds %s", where, k)
			}
		}
	}
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				check(p, string(b))
			}
			return nil
		})
	}
	for i, s := range texts {
		check(fmt.Sprintf("output %d", i), s)
	}
}

func githubEnv(runner string, runID string) map[string]string {
	for _, d := range []string{"temp", "work"} {
		_ = os.MkdirAll(filepath.Join(runner, d), 0o755)
	}
	files := map[string]string{}
	for _, n := range []string{"GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE"} {
		files[n] = filepath.Join(runner, strings.ToLower(n))
		_ = os.WriteFile(files[n], nil, 0o644)
	}
	env := map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW": "CI", "GITHUB_RUN_ID": runID,
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/app", "GITHUB_JOB": "build",
		"RUNNER_NAME": "self-hosted-7", "GITHUB_HEAD_REF": "feature/x", "GITHUB_REF_NAME": "42/merge",
		"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF": "refs/pull/42/merge",
		"GITHUB_EVENT_NAME": "pull_request", "RUNNER_TEMP": filepath.Join(runner, "temp"),
		"GITHUB_WORKSPACE": filepath.Join(runner, "work"),
	}
	for k, v := range files {
		env[k] = v
	}
	return env
}

// stateEnv turns what main wrote to $GITHUB_STATE into the STATE_*
// variables the runner gives the post step.
func stateEnv(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env = append(env, "STATE_"+k+"="+v)
		}
	}
	if len(env) == 0 {
		t.Fatalf("main wrote no state to %s", file)
	}
	return env
}

// TestActionGitHub runs the action's main step, a step that runs a real
// tool, and the post step, each with the environment a runner gives it.
func TestActionGitHub(t *testing.T) {
	f := setup(t)
	runner := t.TempDir()
	gh := githubEnv(runner, fmt.Sprint(time.Now().UnixNano()))
	// The user's OTLP endpoint: a backend that keeps what it is sent
	// (OTLP/HTTP protobuf; its strings appear as they are).
	var received safeBuffer
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		received.Write(b)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(backend.Close)
	inputs := map[string]string{"INPUT_FAIL-ON-DETECTION": "true", "INPUT_COLLECTOR": f.collector,
		"INPUT_OTLP-ENDPOINT": backend.URL, "INPUT_OTLP-HEADERS": "{x-tenant: ci}"}
	for k, v := range inputs {
		gh[k] = v
	}
	env := baseEnv(gh)
	work := gh["GITHUB_WORKSPACE"]

	out, code := run(t, env, work, f.node, filepath.Join(f.root, "action", "main.js"))
	if code != 0 {
		t.Fatalf("main: status %d\n%s", code, out)
	}
	state := stateEnv(t, gh["GITHUB_STATE"])
	dir := strings.TrimPrefix(state[0], "STATE_dir=")
	t.Cleanup(func() { // a failed post must not leave a collector running
		run(t, append(env, state...), work, f.node, filepath.Join(f.root, "action", "post.js"))
	})

	// A step: the runner runs its script with bash; the tool is one command
	// of it, and the step goes on after it (as a build does), so the step's
	// shell is alive when the receiver reads it. A tool that is a step's
	// very last command races its shell's exit: receiver/cicd_linux_test.go
	// measures that.
	marker := fmt.Sprintf("mitmexec-action-%d", os.Getpid())
	step := filepath.Join(runner, "step.sh")
	if err := os.WriteFile(step, []byte(f.arpspoof+" -h "+marker+" || true\nsleep 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, env, work, "bash", "-e", step)
	waitForFile(t, filepath.Join(dir, "detections.jsonl"), marker)

	postOut, code := run(t, append(env, state...), work, f.node, filepath.Join(f.root, "action", "post.js"))
	if code != 1 {
		t.Errorf("post: status %d, want 1 (fail-on-detection)\n%s", code, postOut)
	}
	if !strings.Contains(postOut, "::error title=MitM tool executed%3A arpspoof::") || !strings.Contains(postOut, marker) {
		t.Errorf("post: no annotation for the tool:\n%s", postOut)
	}
	output, _ := os.ReadFile(gh["GITHUB_OUTPUT"])
	if !strings.Contains(string(output), "result=fail\n") || !strings.Contains(string(output), "detections=1\n") {
		t.Errorf("GITHUB_OUTPUT:\n%s", output)
	}
	summary, _ := os.ReadFile(gh["GITHUB_STEP_SUMMARY"])
	for _, want := range []string{"| arpspoof |", "job build", marker, "/usr/bin/bash", "| tool | step context | command line | ancestry |"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	if b := received.Bytes(); !bytes.Contains(b, []byte(marker)) || !bytes.Contains(b, []byte("cicd.pipeline.run.id")) {
		t.Errorf("the user's OTLP endpoint did not get the detection with its CI context: %q", b)
	}

	d, _ := report(t, filepath.Join(dir, "mitmexec-report.json"), marker)
	want := map[string]string{
		"cicd.pipeline.name": "CI", "cicd.pipeline.run.id": gh["GITHUB_RUN_ID"],
		"cicd.pipeline.run.url.full": "https://github.com/octo/app/actions/runs/" + gh["GITHUB_RUN_ID"],
		"cicd.pipeline.task.name":    "build", "cicd.worker.name": "self-hosted-7", "vcs.provider.name": "github",
		"vcs.repository.url.full": "https://github.com/octo/app", "vcs.ref.head.name": "feature/x",
		"vcs.ref.head.revision": "0123456789abcdef0123456789abcdef01234567", "vcs.change.id": "42",
	}
	for _, k := range contract {
		if w, ok := want[k]; ok {
			if d[k] != w {
				t.Errorf("%s = %v, want %s", k, d[k], w)
			}
		} else if _, has := d[k]; has {
			t.Errorf("%s = %v: GitHub names no job run, the contract leaves it out", k, d[k])
		}
	}
	noTokens(t, []string{runner}, out, postOut, string(received.Bytes()))

	// A job where no tool ran passes.
	runner2 := t.TempDir()
	gh2 := githubEnv(runner2, fmt.Sprint(time.Now().UnixNano()))
	for k, v := range inputs {
		gh2[k] = v
	}
	gh2["INPUT_OTLP-ENDPOINT"], gh2["INPUT_OTLP-HEADERS"] = "", ""
	env2 := baseEnv(gh2)
	if out, code := run(t, env2, gh2["GITHUB_WORKSPACE"], f.node, filepath.Join(f.root, "action", "main.js")); code != 0 {
		t.Fatalf("main (clean job): status %d\n%s", code, out)
	}
	run(t, env2, gh2["GITHUB_WORKSPACE"], "bash", "-e", "-c", "true")
	postOut, code = run(t, append(env2, stateEnv(t, gh2["GITHUB_STATE"])...), gh2["GITHUB_WORKSPACE"], f.node, filepath.Join(f.root, "action", "post.js"))
	if code != 0 {
		t.Errorf("post (clean job): status %d\n%s", code, postOut)
	}
	output, _ = os.ReadFile(gh2["GITHUB_OUTPUT"])
	summary, _ = os.ReadFile(gh2["GITHUB_STEP_SUMMARY"])
	if !strings.Contains(string(output), "result=pass\n") || !strings.Contains(string(output), "detections=0\n") ||
		!strings.Contains(string(summary), "no MitM tool ran") {
		t.Errorf("clean job: output\n%s\nsummary\n%s", output, summary)
	}
}

// gitlabTemplate is the part of ci/gitlab/mitmexec.gitlab-ci.yml a job runs.
type gitlabTemplate struct {
	Mitmexec struct {
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		AfterScript  []string          `yaml:"after_script"`
		Artifacts    struct {
			When  string   `yaml:"when"`
			Paths []string `yaml:"paths"`
		} `yaml:"artifacts"`
	} `yaml:".mitmexec"`
	Check struct {
		Script []string `yaml:"script"`
	} `yaml:".mitmexec-check"`
}

// TestGitLabTemplate runs the template's before_script, a job script that
// runs a real tool and ends with the template's check, and after_script,
// each line with bash as GitLab's shell executor does.
func TestGitLabTemplate(t *testing.T) {
	f := setup(t)
	b, err := os.ReadFile(filepath.Join(f.root, "ci", "gitlab", "mitmexec.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl gitlabTemplate
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	if len(tpl.Mitmexec.BeforeScript) == 0 || len(tpl.Check.Script) == 0 || tpl.Mitmexec.Artifacts.When != "always" {
		t.Fatalf("template lacks before_script, the check or artifacts when: always: %+v", tpl)
	}

	project, builds := t.TempDir(), t.TempDir()
	jobID := fmt.Sprint(time.Now().UnixNano() % 1e9)
	gl := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": project, "CI_BUILDS_DIR": builds, "CI_JOB_ID": jobID,
		"CI_PIPELINE_NAME": "", "CI_PROJECT_PATH": "group/app", "CI_PIPELINE_ID": "1001",
		"CI_PIPELINE_URL": "https://gitlab.example/group/app/-/pipelines/1001", "CI_JOB_NAME": "test",
		"CI_JOB_URL": "https://gitlab.example/group/app/-/jobs/" + jobID, "CI_RUNNER_DESCRIPTION": "shared-3",
		"CI_PROJECT_URL": "https://gitlab.example/group/app", "CI_COMMIT_REF_NAME": "feature/y",
		"CI_COMMIT_SHA": "fedcba9876543210fedcba9876543210fedcba98", "CI_MERGE_REQUEST_IID": "17",
		"MITMEXEC_TMPDIR": builds,
	}
	// The template's variables, expanded as GitLab does; the checkout and
	// the collector are this tree's.
	for k, v := range tpl.Mitmexec.Variables {
		gl[k] = os.Expand(v, func(n string) string { return gl[n] })
	}
	gl["MITMEXEC_HOME"], gl["MITMEXEC_COLLECTOR"] = f.root, f.collector
	env := baseEnv(gl)
	sh := func(lines []string) (string, int) {
		var all strings.Builder
		for _, l := range lines {
			out, code := run(t, env, project, "bash", "-e", "-c", l)
			all.WriteString(out)
			if code != 0 {
				return all.String(), code
			}
		}
		return all.String(), 0
	}
	out, code := sh(tpl.Mitmexec.BeforeScript)
	if code != 0 {
		t.Fatalf("before_script: status %d\n%s", code, out)
	}
	t.Cleanup(func() { sh(tpl.Mitmexec.AfterScript) })

	marker := fmt.Sprintf("mitmexec-gitlab-%d", os.Getpid())
	run(t, env, project, "bash", "-e", "-c", f.arpspoof+" -h "+marker+" || true; sleep 1")
	waitForFile(t, filepath.Join(builds, "mitmexec-job-"+jobID, "detections.jsonl"), marker)

	checkOut, code := sh(tpl.Check.Script)
	if code != 1 {
		t.Errorf("check: status %d, want 1\n%s", code, checkOut)
	}
	afterOut, code := sh(tpl.Mitmexec.AfterScript)
	if code != 0 || strings.Contains(afterOut, "stopped before the end") {
		t.Errorf("after_script after the check: status %d\n%s", code, afterOut)
	}
	for _, p := range tpl.Mitmexec.Artifacts.Paths {
		if _, err := os.Stat(filepath.Join(project, p)); err != nil {
			t.Errorf("artifact %s: %v", p, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(project, "mitmexec-report.md"))
	if !strings.Contains(string(md), "| arpspoof |") || !strings.Contains(string(md), marker) {
		t.Errorf("report:\n%s", md)
	}
	d, _ := report(t, filepath.Join(project, "mitmexec-report.json"), marker)
	want := map[string]string{
		"cicd.pipeline.name": "group/app", "cicd.pipeline.run.id": "1001",
		"cicd.pipeline.run.url.full": "https://gitlab.example/group/app/-/pipelines/1001", "cicd.pipeline.task.name": "test",
		"cicd.pipeline.task.run.id": jobID, "cicd.pipeline.task.run.url.full": "https://gitlab.example/group/app/-/jobs/" + jobID,
		"cicd.worker.name": "shared-3", "vcs.provider.name": "gitlab", "vcs.repository.url.full": "https://gitlab.example/group/app",
		"vcs.ref.head.name": "feature/y", "vcs.ref.head.revision": "fedcba9876543210fedcba9876543210fedcba98", "vcs.change.id": "17",
	}
	for _, k := range contract {
		if d[k] != want[k] {
			t.Errorf("%s = %v, want %s", k, d[k], want[k])
		}
	}
	noTokens(t, []string{project, builds}, out, checkOut, afterOut)
}
