// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

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

// pinnedRepo makes a git repository of this tree's action and template,
// committed, as the repository a pipeline pins by commit; it returns its
// path and the commit.
func pinnedRepo(t *testing.T, f fixture) (string, string) {
	t.Helper()
	repo := t.TempDir()
	for _, dir := range []string{"action", "ci/gitlab"} {
		if err := os.MkdirAll(filepath.Join(repo, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(f.root, "action", "*.js"))
	files = append(files, filepath.Join(f.root, "action.yml"), filepath.Join(f.root, "ci", "gitlab", "mitmexec.gitlab-ci.yml"))
	for _, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(f.root, src)
		if err := os.WriteFile(filepath.Join(repo, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, argv := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "pinned"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, argv...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", argv, err, out)
		}
	}
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return repo, strings.TrimSpace(string(out))
}

// glJob is a GitLab CI job that extends the template.
type glJob struct {
	*job
	tpl      gitlabTemplate
	gl       map[string]string
	project  string
	builds   string
	jobID    string
	sink     sinkInfo
	beforeSc string // before_script's output
}

func newGitLabJob(t *testing.T, f fixture, tpl gitlabTemplate, repo, ref string) *glJob {
	t.Helper()
	project, builds := runnerDir(t, f), runnerDir(t, f)
	// Where root keeps the pinned code: a directory of root's (the
	// template's default is /var/lib/mitmexec/job-ID).
	lib := t.TempDir()
	for _, p := range []string{filepath.Dir(lib), lib} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	jobID := fmt.Sprint(time.Now().UnixNano() % 1e9)
	gl := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": project, "CI_BUILDS_DIR": builds, "CI_JOB_ID": jobID,
		"CI_PIPELINE_NAME": "", "CI_PROJECT_PATH": "group/app", "CI_PIPELINE_ID": "1001",
		"CI_PIPELINE_URL": "https://gitlab.example/group/app/-/pipelines/1001", "CI_JOB_NAME": "test",
		"CI_JOB_URL": "https://gitlab.example/group/app/-/jobs/" + jobID, "CI_RUNNER_DESCRIPTION": "shared-3",
		"CI_PROJECT_URL": "https://gitlab.example/group/app", "CI_COMMIT_REF_NAME": "feature/y",
		"CI_COMMIT_SHA": "fedcba9876543210fedcba9876543210fedcba98", "CI_MERGE_REQUEST_IID": "17",
	}
	// The template's variables, expanded as GitLab does; then the job's:
	// the pinned repository and commit, root's directory, the collector.
	for k, v := range tpl.Mitmexec.Variables {
		gl[k] = os.Expand(v, func(n string) string { return gl[n] })
	}
	if !strings.HasPrefix(gl["MITMEXEC_HOME"], "/var/lib/mitmexec/job-"+jobID) {
		t.Errorf("MITMEXEC_HOME = %s: want root's /var/lib/mitmexec/job-%s", gl["MITMEXEC_HOME"], jobID)
	}
	gl["MITMEXEC_REPO"], gl["MITMEXEC_REF"], gl["MITMEXEC_HOME"] = repo, ref, filepath.Join(lib, "mitmexec", "job-"+jobID)
	gl["MITMEXEC_COLLECTOR"], gl["MITMEXEC_TMPDIR"], gl["MITMEXEC_HEARTBEAT_SECONDS"] = f.collector, builds, heartbeat
	return &glJob{job: newJob(t, f, project, baseEnv(gl)), tpl: tpl, gl: gl, project: project, builds: builds, jobID: jobID}
}

// sh runs lines as GitLab's shell executor does, each with bash -e, up to
// the first that fails.
func (g *glJob) sh(lines []string) (string, int) {
	g.t.Helper()
	var all strings.Builder
	for _, l := range lines {
		out, code := g.step(nil, "bash", "-e", "-c", l)
		all.WriteString(out)
		if code != 0 {
			return all.String(), code
		}
	}
	return all.String(), 0
}

// start runs before_script, which must succeed.
func (g *glJob) start() {
	g.t.Helper()
	out, code := g.sh(g.tpl.Mitmexec.BeforeScript)
	if code != 0 {
		g.t.Fatalf("before_script: status %d\n%s", code, out)
	}
	g.beforeSc = out
	g.sink = readSinkInfo(g.t, filepath.Join(g.builds, "mitmexec-job-"+g.jobID))
}

func loadTemplate(t *testing.T, f fixture) gitlabTemplate {
	t.Helper()
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
	return tpl
}

// TestGitLabTemplate runs the template's before_script, a job script that
// runs a real tool and ends with the template's check, and after_script,
// each line as the runner's user with bash as GitLab's shell executor does;
// then a job with no tool, which passes.
func TestGitLabTemplate(t *testing.T) {
	f := setup(t)
	tpl := loadTemplate(t, f)
	repo, ref := pinnedRepo(t, f)

	g := newGitLabJob(t, f, tpl, repo, ref)
	g.start()
	marker := fmt.Sprintf("mitmexec-gitlab-%d", os.Getpid())
	g.step(nil, "bash", "-e", "-c", f.arpspoof+" -h "+marker+" || true; sleep 1")
	// and one under another job's id, which the tree or cgroup ties to
	// this job
	forged := fmt.Sprintf("mitmexec-forged-gitlab-%d", os.Getpid())
	g.step(nil, "bash", "-e", "-c", "env CI_JOB_ID=1 CI_JOB_NAME=other sh -c '"+f.arpspoof+" -h "+forged+"; sleep 3'")
	waitForFile(t, filepath.Join(g.sink.Dir, "detections.jsonl"), marker)
	waitForFile(t, filepath.Join(g.sink.Dir, "detections.jsonl"), forged)

	checkOut, code := g.sh(tpl.Check.Script)
	if code != 1 {
		t.Errorf("check: status %d, want 1\n%s", code, checkOut)
	}
	afterOut, code := g.sh(tpl.Mitmexec.AfterScript)
	if code != 0 || strings.Contains(afterOut, "killed during the job") || strings.Contains(afterOut, "replaced") {
		t.Errorf("after_script after the check: status %d\n%s", code, afterOut)
	}
	for _, p := range tpl.Mitmexec.Artifacts.Paths {
		if _, err := os.Stat(filepath.Join(g.project, p)); err != nil {
			t.Errorf("artifact %s: %v", p, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(g.project, "mitmexec-report.md"))
	for _, want := range []string{"| arpspoof |", marker, "The gate failed", "2 MitM tool execution(s) during this job",
		"1 of them with a CI context that disagrees with the job's process tree (other)", "CI context NOT this job's"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	d, _ := report(t, filepath.Join(g.project, "mitmexec-report.json"), marker)
	want := map[string]string{
		"cicd.pipeline.name": "group/app", "cicd.pipeline.run.id": "1001",
		"cicd.pipeline.run.url.full": "https://gitlab.example/group/app/-/pipelines/1001", "cicd.pipeline.task.name": "test",
		"cicd.pipeline.task.run.id": g.jobID, "cicd.pipeline.task.run.url.full": "https://gitlab.example/group/app/-/jobs/" + g.jobID,
		"cicd.worker.name": "shared-3", "vcs.provider.name": "gitlab", "vcs.repository.url.full": "https://gitlab.example/group/app",
		"vcs.ref.head.name": "feature/y", "vcs.ref.head.revision": "fedcba9876543210fedcba9876543210fedcba98", "vcs.change.id": "17",
	}
	for _, k := range contract {
		if d[k] != want[k] {
			t.Errorf("%s = %v, want %s", k, d[k], want[k])
		}
	}
	if d["mitmexec.cicd.mismatch"] != nil {
		t.Errorf("mitmexec.cicd.mismatch = %v on the job's own detection", d["mitmexec.cicd.mismatch"])
	}
	if fd, _ := report(t, filepath.Join(g.project, "mitmexec-report.json"), forged); fd["mitmexec.cicd.mismatch"] != true || fd["mitmexec.job.match"] != "cgroup" && fd["mitmexec.job.match"] != "process_tree" {
		t.Errorf("the detection under another job's id: mismatch %v, tied by %v; want true, by cgroup or process tree", fd["mitmexec.cicd.mismatch"], fd["mitmexec.job.match"])
	}
	noTokens(t, []string{g.project, g.builds, g.sink.Dir}, g.beforeSc, checkOut, afterOut)

	clean := newGitLabJob(t, f, tpl, repo, ref)
	clean.start()
	clean.step(nil, "bash", "-e", "-c", "true")
	if out, code := clean.sh(tpl.Check.Script); code != 0 {
		t.Errorf("check (clean job): status %d\n%s", code, out)
	}
}

// TestGitLabTemplateTricks: a job's script replaces the post script the
// check runs, first as the runner's user (which the directory of root's
// refuses), then with sudo, which the check sees; and a ref that is not a
// commit is refused before anything runs.
func TestGitLabTemplateTricks(t *testing.T) {
	f := setup(t)
	tpl := loadTemplate(t, f)
	repo, ref := pinnedRepo(t, f)

	g := newGitLabJob(t, f, tpl, repo, ref)
	g.start()
	marker := fmt.Sprintf("mitmexec-gitlab-trick-%d", os.Getpid())
	replace := `printf 'process.exit(0)\n' > "$MITMEXEC_HOME/action/post.js"`
	if out, code := g.step(nil, "bash", "-e", "-c", replace); code == 0 {
		t.Errorf("the runner's user replaced the post script:\n%s", out)
	}
	g.step(nil, "bash", "-e", "-c", f.arpspoof+" -h "+marker+" || true; sleep 1")
	waitForFile(t, filepath.Join(g.sink.Dir, "detections.jsonl"), marker)
	if out, code := g.step(nil, "bash", "-e", "-c", `sudo -n sh -c "printf 'process.exit(0)\\n' > $MITMEXEC_HOME/action/post.js"`); code != 0 {
		t.Fatalf("sudo did not replace the post script: %s", out)
	}
	checkOut, code := g.sh(tpl.Check.Script)
	if code != 1 || !strings.Contains(checkOut, "is not commit "+ref+" any more: it was replaced during the job") {
		t.Errorf("check after the post script was replaced: status %d, want 1 and why\n%s", code, checkOut)
	}
	afterOut, _ := g.sh(tpl.Mitmexec.AfterScript)
	if !strings.Contains(afterOut, "it was replaced during the job") {
		t.Errorf("after_script after the post script was replaced:\n%s", afterOut)
	}

	// A branch name is not a pin: refused before anything is fetched.
	bad := newGitLabJob(t, f, tpl, repo, "main")
	out, code := bad.sh(tpl.Mitmexec.BeforeScript)
	if code == 0 || !strings.Contains(out, "MITMEXEC_REF must be a full commit sha") {
		t.Errorf("before_script with MITMEXEC_REF=main: status %d\n%s", code, out)
	}
	if out, _ := bad.sh(tpl.Mitmexec.AfterScript); !strings.Contains(out, "holds no pinned checkout: before_script did not run to its end") {
		t.Errorf("after_script after before_script failed:\n%s", out)
	}
}
