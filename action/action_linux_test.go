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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestActionGitHub runs the action's main step, a step that runs a real
// tool, and the post step, each as the runner's user with the environment a
// runner gives it.
func TestActionGitHub(t *testing.T) {
	f := setup(t)
	// The user's OTLP endpoint: a backend that keeps what it is sent
	// (OTLP/HTTP protobuf; its strings appear as they are).
	var received safeBuffer
	var metricsPushes atomic.Int64
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
		if r.URL.Path == "/v1/metrics" {
			metricsPushes.Add(1)
		} else {
			received.Write(b)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(backend.Close)
	g := startGitHubJob(t, f, map[string]string{"INPUT_OTLP-ENDPOINT": backend.URL, "INPUT_OTLP-HEADERS": "{x-tenant: ci}"})

	// A step: the runner runs its script with bash; the tool is one command
	// of it, and the step goes on after it (as a build does), so the step's
	// shell is alive when the receiver reads it. A tool that is a step's
	// very last command races its shell's exit: receiver/mitmexecreceiver/cicd_linux_test.go
	// measures that.
	marker := fmt.Sprintf("mitmexec-action-%d", os.Getpid())
	g.bash(f.arpspoof + " -h " + marker + " || true\nsleep 1\n")
	g.waitForDetection(marker)
	// Detections leave the runner as they happen, not at the end of the job.
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains(received.Bytes(), []byte(marker)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if b := received.Bytes(); !bytes.Contains(b, []byte(marker)) || !bytes.Contains(b, []byte("cicd.pipeline.run.id")) {
		t.Errorf("the user's OTLP endpoint did not get the detection with its CI context before the job ended: %q", b)
	}

	// The collector's heartbeat reaches the endpoint too, while the job
	// runs.
	for metricsPushes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if metricsPushes.Load() == 0 {
		t.Errorf("the user's OTLP endpoint got no heartbeat (the collector's metrics on /v1/metrics)")
	}
	postOut, code := g.post()
	if code != 1 {
		t.Errorf("post: status %d, want 1 (fail-on-detection)\n%s", code, postOut)
	}
	if !strings.Contains(postOut, "::error title=MitM tool executed%3A arpspoof::") || !strings.Contains(postOut, marker) {
		t.Errorf("post: no annotation for the tool:\n%s", postOut)
	}
	output, _ := os.ReadFile(g.gh["GITHUB_OUTPUT"])
	if !strings.Contains(string(output), "result=fail\n") || !strings.Contains(string(output), "detections=1\n") {
		t.Errorf("GITHUB_OUTPUT:\n%s", output)
	}
	summary, _ := os.ReadFile(g.gh["GITHUB_STEP_SUMMARY"])
	for _, want := range []string{"| arpspoof |", "job build", marker, "/usr/bin/bash", "| tool | step context | command line | ancestry |",
		"The gate failed", "1 MitM tool execution(s) during this job", "process_tree"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	r := readReport(t, filepath.Join(g.dir, "mitmexec-report.json"))
	d := detectionWith(r, marker)
	if d == nil || len(r.Detections) != 1 || len(r.Problems) != 0 {
		t.Fatalf("report: want the one detection and no problem: %+v", r)
	}
	want := map[string]string{
		"cicd.pipeline.name": "CI", "cicd.pipeline.run.id": g.gh["GITHUB_RUN_ID"],
		"cicd.pipeline.run.url.full": "https://github.com/octo/app/actions/runs/" + g.gh["GITHUB_RUN_ID"],
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
	if d["mitmexec.job.match"] != "process_tree" || d["mitmexec.cicd.mismatch"] != nil {
		t.Errorf("job.match = %v, cicd.mismatch = %v: want process_tree and no mismatch", d["mitmexec.job.match"], d["mitmexec.cicd.mismatch"])
	}
	noTokens(t, []string{g.runner, g.sink.Dir}, postOut, string(received.Bytes()))

	// A job where no tool ran passes, whatever other tests on this host
	// run meanwhile.
	g2 := startGitHubJob(t, f, nil)
	g2.bash("true")
	postOut, code = g2.post()
	if code != 0 {
		t.Errorf("post (clean job): status %d\n%s", code, postOut)
	}
	output, _ = os.ReadFile(g2.gh["GITHUB_OUTPUT"])
	summary, _ = os.ReadFile(g2.gh["GITHUB_STEP_SUMMARY"])
	if !strings.Contains(string(output), "result=pass\n") || !strings.Contains(string(output), "detections=0\n") ||
		!strings.Contains(string(summary), "no MitM tool ran") || strings.Contains(string(summary), "gate failed") {
		t.Errorf("clean job: output\n%s\nsummary\n%s", output, summary)
	}
}

// TestActionGitHubTricks plays what the code under review can do to the
// gate, each in a job of its own, and wants the job failed with the reason
// in the summary. The tricks that need no privilege run as the runner's
// user without sudo; the others use the sudo a hosted runner gives it.
func TestActionGitHubTricks(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		name   string
		script string // $EVIDENCE is the evidence directory, $COLLECTOR the collector's pid; MARKER the tool's marker
		// the step's own status: 0, or 1 when the trick itself must fail
		stepStatus int
		// what the summary must say
		why []string
		// the marker's detection must be in the report
		detected bool
	}{{
		name: "another job's name in the tool's environment",
		// the second form also leaves the job's process tree (setsid, its
		// parent gone before the exec): the cgroup still holds it
		// (a shell in between keeps the forged environment alive for the
		// receiver's read after the tool exits). -c leaves the job's
		// process tree as the kernel shows it now (setsid, its parent gone
		// before the exec); -d runs below a chain of shells deeper than
		// the ancestry a record carries: the cgroup still holds both.
		script: f.arpspoof + " -h MARKER-a || true\n" +
			"env GITHUB_JOB=other sh -c '" + f.arpspoof + " -h MARKER-b; sleep 3'\n" +
			"setsid -f env GITHUB_JOB=other GITHUB_RUN_ID=1 sh -c 'sleep 0.5; " + f.arpspoof + " -h MARKER-c; sleep 3'\n" +
			"cat > deep.sh <<'EOF'\nif [ $1 -gt 0 ]; then sh deep.sh $(($1 - 1)); true; else " + f.arpspoof + " -h MARKER-d; sleep 1; fi\nEOF\n" +
			"sh deep.sh 10\nsleep 2\n",
		why:      []string{"4 MitM tool execution(s) during this job", "2 of them with a CI context that disagrees with the job's process tree"},
		detected: true,
	}, {
		name: "emptying the detections file as the runner's user",
		script: f.arpspoof + " -h MARKER || true\n" +
			"for i in $(seq 100); do grep -q MARKER \"$EVIDENCE/detections.jsonl\" && break; sleep 0.2; done\n" +
			": > \"$EVIDENCE/detections.jsonl\" || { rm -rf \"$EVIDENCE\" || mv \"$EVIDENCE\" \"$EVIDENCE.x\" ||\n" +
			"  kill -STOP $COLLECTOR || kill -KILL $COLLECTOR || exit 1; }\n",
		stepStatus: 1,
		why:        []string{"1 MitM tool execution(s) during this job"},
		detected:   true,
	}, {
		name: "feeding the sink as the runner's user",
		script: f.arpspoof + " -h MARKER || true\nsleep 1\n" +
			`port=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).port)' "$STATE_DIR/sink.json")` + "\n" +
			`node -e 'fetch("http://127.0.0.1:" + process.argv[1] + "/v1/metrics", {method: "POST", body: ""}).then((r) => console.log(r.status))' "$port"` + "\n",
		why:      []string{"request(s) to the evidence sink from uid", "not the collector's, were refused"},
		detected: true,
	}, {
		name: "emptying the detections file with sudo",
		script: f.arpspoof + " -h MARKER || true\n" +
			"for i in $(seq 100); do grep -q MARKER \"$EVIDENCE/detections.jsonl\" && break; sleep 0.2; done\n" +
			"sudo -n truncate -s 0 \"$EVIDENCE/detections.jsonl\"\n",
		// (other tests' detections may arrive later: counts vary)
		why:      []string{"the detections file holds", "(request 1 is not where it belongs): it was changed", "detection(s), the sink received"},
		detected: false,
	}, {
		name:     "stopping the collector (SIGSTOP)",
		script:   "sudo -n kill -STOP $COLLECTOR\n" + f.arpspoof + " -h MARKER || true\nsleep 12\nsudo -n kill -CONT $COLLECTOR\nsleep 1\n",
		why:      []string{"the collector was stopped (SIGSTOP) from", "the collector was silent for"},
		detected: false,
	}, {
		name:     "killing the collector",
		script:   "sudo -n kill -KILL $COLLECTOR\nsleep 1\n" + f.arpspoof + " -h MARKER || true\nsleep 1\n",
		why:      []string{"the collector exited during the job", "killed by SIGKILL"},
		detected: false,
	}, {
		name: "restarting the collector",
		// a fresh collector (an empty ring buffer, no memory of the stop)
		// with the job's own configuration, posting to the same sink
		script: "sudo -n kill -KILL $COLLECTOR\n" +
			`port=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).port)' "$STATE_DIR/sink.json")` + "\n" +
			"sudo -n env MITMEXEC_SINK_PORT=$port " + f.collector + " --config file:$STATE_DIR/config.yaml >/dev/null 2>&1 &\n" +
			"sleep 8\n",
		why:      []string{"the collector exited during the job", "the collector was restarted during the job", "reached the sink after the collector it started had exited"},
		detected: false,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGitHubJob(t, f, nil)
			marker := fmt.Sprintf("mitmexec-trick-%d-%d", os.Getpid(), time.Now().UnixNano())
			script := strings.ReplaceAll(tc.script, "MARKER", marker)
			out, code := g.step([]string{"EVIDENCE=" + g.sink.Dir, "COLLECTOR=" + strconv.Itoa(g.sink.CollectorPid), "STATE_DIR=" + g.dir},
				"bash", "-e", "-c", script)
			if code != tc.stepStatus {
				t.Errorf("the trick's step: status %d, want %d\n%s", code, tc.stepStatus, out)
			}
			if tc.detected {
				g.waitForDetection(marker)
			}
			postOut, code := g.post()
			if code != 1 {
				t.Errorf("post: status %d, want 1: the gate must fail\n%s", code, postOut)
			}
			output, _ := os.ReadFile(g.gh["GITHUB_OUTPUT"])
			if !strings.Contains(string(output), "result=fail\n") {
				t.Errorf("GITHUB_OUTPUT:\n%s", output)
			}
			summary, _ := os.ReadFile(g.gh["GITHUB_STEP_SUMMARY"])
			for _, w := range append([]string{"The gate failed"}, tc.why...) {
				if !strings.Contains(string(summary), w) {
					t.Errorf("the summary does not say %q:\n%s", w, summary)
				}
			}
			r := readReport(t, filepath.Join(g.dir, "mitmexec-report.json"))
			if tc.detected && detectionWith(r, marker) == nil {
				t.Errorf("the report lacks the tool's detection: %+v", r)
			}
			for _, d := range r.Detections {
				cl, _ := d["process.command_line"].(string)
				if !strings.Contains(cl, marker) {
					t.Errorf("a detection that is not this job's: %s", cl)
				}
				forged := d["cicd.pipeline.task.name"] == "other"
				if mm, _ := d["mitmexec.cicd.mismatch"].(bool); mm != forged {
					t.Errorf("%s: mitmexec.cicd.mismatch = %v with task name %v", cl, d["mitmexec.cicd.mismatch"], d["cicd.pipeline.task.name"])
				}
				if m := d["mitmexec.job.match"]; strings.HasSuffix(cl, marker+"-c") && m != "cgroup" && m != "process_tree" ||
					strings.HasSuffix(cl, marker+"-d") && m != "cgroup" {
					t.Errorf("%s: tied by %v, want cgroup (it left the job's process tree): ancestors %v", cl, d["mitmexec.job.match"], d["mitmexec.ancestors"])
				}
			}
		})
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
