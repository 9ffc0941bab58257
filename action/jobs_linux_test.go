// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	// the runner's user: unprivileged, with password-less sudo as on
	// GitHub's hosted runners (test/setup.sh creates it)
	uid, gid uint32
}

const runnerUser = "mitmexec-runner"

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
	// The runner's user names the collector (input collector) and must
	// reach it; a build directory is root's alone: a root-owned copy, as a
	// runner's tool cache would hold.
	bin := t.TempDir()
	for _, p := range []string{filepath.Dir(bin), bin} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", f.collector, filepath.Join(bin, "otelcol-custom")).CombinedOutput(); err != nil {
		t.Fatalf("copy the collector: %v %s", err, out)
	}
	f.collector = filepath.Join(bin, "otelcol-custom")
	u, err := user.Lookup(runnerUser)
	if err != nil {
		testenv.SkipOrFail(t, "no runner user %s (test/setup.sh creates it): %v", runnerUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	f.uid, f.gid = uint32(uid), uint32(gid)
	if out, err := exec.Command("su", "-s", "/bin/sh", runnerUser, "-c", "sudo -n true").CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "%s has no password-less sudo (test/setup.sh gives it): %v %s", runnerUser, err, out)
	}
	return f
}

// job is one CI job as a runner runs it: every step as the runner's user,
// in a cgroup of the job's own (a runner's service has one; a docker
// executor's job container too), so the other tests on this host, which
// the tracer sees as well, are not this job's.
type job struct {
	t      *testing.T
	f      fixture
	cgroup *os.File
	dir    string // the steps' working directory
	env    []string
}

// cgroup2Mount finds where the unified hierarchy is mounted
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
func cgroup2Mount(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if pre, post, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(post, "cgroup2 ") {
			if f := strings.Fields(pre); len(f) > 4 {
				return f[4]
			}
		}
	}
	testenv.SkipOrFail(t, "no cgroup2 hierarchy mounted")
	return ""
}

var cgroupSeq int

func newJob(t *testing.T, f fixture, dir string, env []string) *job {
	t.Helper()
	cgroupSeq++
	cg := filepath.Join(cgroup2Mount(t), fmt.Sprintf("mitmexec-action-test-%d-%d", os.Getpid(), cgroupSeq))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	// Runs last (cleanups run in reverse): whatever of the job is left (a
	// collector whose post step never ran) is killed with its cgroup.
	t.Cleanup(func() {
		fd.Close()
		_ = os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
		// A killed process leaves its cgroup once its parent reaped it.
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = os.Remove(cg); err == nil {
				return
			}
		}
		t.Errorf("remove the job's cgroup: %v", err)
	})
	return &job{t: t, f: f, cgroup: fd, dir: dir, env: env}
}

// step runs argv as the runner's user in the job's cgroup, in the steps'
// working directory.
func (j *job) step(extraEnv []string, argv ...string) (string, int) {
	j.t.Helper()
	return j.stepIn(j.dir, extraEnv, argv...)
}

// stepIn is step with another working directory (a step's
// working-directory, or its script's cd).
func (j *job) stepIn(dir string, extraEnv []string, argv ...string) (string, int) {
	j.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = append(append([]string{}, j.env...), extraEnv...), dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: j.f.uid, Gid: j.f.gid},
		UseCgroupFD: true, CgroupFD: int(j.cgroup.Fd()),
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		j.t.Fatalf("%v: %v\n%s", argv, err, out.String())
	}
	return out.String(), 0
}

// runnerDir makes a directory the runner's user owns, reachable by it.
func runnerDir(t *testing.T, f fixture) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(d, int(f.uid), int(f.gid)); err != nil {
		t.Fatal(err)
	}
	return d
}

// chownTree gives the runner's user everything under d.
func chownTree(t *testing.T, f fixture, d string) {
	t.Helper()
	_ = filepath.WalkDir(d, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			err = os.Lchown(p, int(f.uid), int(f.gid))
		}
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
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

// ghJob is a GitHub Actions job whose first step is the action.
type ghJob struct {
	*job
	gh     map[string]string
	runner string
	state  []string
	dir    string // the action's work directory (state, report)
	sink   sinkInfo
	main   string // the main step's output
}

// heartbeat is the tests' heartbeat-seconds: short, so that a stopped
// collector shows in seconds; the silence allowed is 3 heartbeats + 2 s.
const heartbeat = "2"

func startGitHubJob(t *testing.T, f fixture, inputs map[string]string) *ghJob {
	t.Helper()
	runner := runnerDir(t, f)
	gh := githubEnv(runner, fmt.Sprint(time.Now().UnixNano()))
	gh["INPUT_FAIL-ON-DETECTION"], gh["INPUT_COLLECTOR"], gh["INPUT_HEARTBEAT-SECONDS"] = "true", f.collector, heartbeat
	for k, v := range inputs {
		gh[k] = v
	}
	chownTree(t, f, runner)
	g := &ghJob{job: newJob(t, f, gh["GITHUB_WORKSPACE"], baseEnv(gh)), gh: gh, runner: runner}
	out, code := g.step(nil, f.node, filepath.Join(f.root, "action", "main.js"))
	if code != 0 {
		t.Fatalf("main: status %d\n%s", code, out)
	}
	g.state = stateEnv(t, gh["GITHUB_STATE"])
	g.dir = strings.TrimPrefix(g.state[0], "STATE_dir=")
	g.sink = readSinkInfo(t, g.dir)
	g.main = out
	return g
}

type sinkInfo struct {
	Port         int
	Dir          string
	Pid          int
	CollectorPid int
}

// readSinkInfo reads what the sink said once it listened, and removes its
// evidence directory (root's, in /tmp) when the test ends.
func readSinkInfo(t *testing.T, dir string) sinkInfo {
	t.Helper()
	var si sinkInfo
	b, err := os.ReadFile(filepath.Join(dir, "sink.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &si); err != nil || !strings.Contains(si.Dir, "mitmexec-evidence-") {
		t.Fatalf("sink.json: %v: %s", err, b)
	}
	t.Cleanup(func() { os.RemoveAll(si.Dir) })
	return si
}

func (g *ghJob) post() (string, int) {
	g.t.Helper()
	return g.step(g.state, g.f.node, filepath.Join(g.f.root, "action", "post.js"))
}

// bash runs a step's script the way the runner does (bash -e).
func (g *ghJob) bash(script string) (string, int) {
	g.t.Helper()
	return g.step([]string{"EVIDENCE=" + g.sink.Dir, "COLLECTOR=" + strconv.Itoa(g.sink.CollectorPid)}, "bash", "-e", "-c", script)
}

func (g *ghJob) waitForDetection(marker string) {
	g.t.Helper()
	waitForFile(g.t, filepath.Join(g.sink.Dir, "detections.jsonl"), marker)
}

type reportFile struct {
	Result     string
	Reasons    []string
	Problems   []string
	Detections []map[string]any
}

func readReport(t *testing.T, file string) reportFile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r reportFile
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func detectionWith(r reportFile, marker string) map[string]any {
	for _, d := range r.Detections {
		if cl, _ := d["process.command_line"].(string); strings.Contains(cl, marker) {
			return d
		}
	}
	return nil
}
