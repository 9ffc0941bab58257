// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

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
