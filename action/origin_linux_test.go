// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

// fakeGitHub plays the part of the GitHub REST API the pull-request
// comment uses, and records every request.
type fakeGitHub struct {
	mu       sync.Mutex
	token    string
	comments map[int]string // id -> body
	next     int
	requests []string // "METHOD path"
	sarifs   [][]byte // uploads to code scanning, decoded
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		http.Error(w, `{"message":"Resource not accessible by integration"}`, http.StatusForbidden)
		return
	}
	var in struct {
		Body, Sarif, Ref string
		CommitSHA        string `json:"commit_sha"`
	}
	_ = json.Unmarshal(b, &in)
	switch {
	case r.Method == "POST" && r.URL.Path == "/repos/octo/app/code-scanning/sarifs":
		var sarif []byte
		if z, err := base64.StdEncoding.DecodeString(in.Sarif); err == nil {
			if zr, err := gzip.NewReader(bytes.NewReader(z)); err == nil {
				sarif, _ = io.ReadAll(zr)
			}
		}
		if len(sarif) == 0 || in.CommitSHA == "" || in.Ref != "refs/pull/42/merge" {
			http.Error(w, `{"message":"bad upload"}`, http.StatusBadRequest)
			return
		}
		g.sarifs = append(g.sarifs, sarif)
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "47177e22"})
	case r.Method == "GET" && r.URL.Path == "/repos/octo/app/issues/42/comments":
		list := []map[string]any{{"id": 1, "body": "an unrelated comment"}}
		for id, body := range g.comments {
			list = append(list, map[string]any{"id": id, "body": body})
		}
		_ = json.NewEncoder(w).Encode(list)
	case r.Method == "POST" && r.URL.Path == "/repos/octo/app/issues/42/comments":
		g.next++
		g.comments[g.next] = in.Body
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": g.next})
	case r.Method == "PATCH" && strings.HasPrefix(r.URL.Path, "/repos/octo/app/issues/comments/"):
		var id int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/repos/octo/app/issues/comments/"), &id)
		if _, ok := g.comments[id]; !ok {
			http.NotFound(w, r)
			return
		}
		g.comments[id] = in.Body
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id})
	default:
		http.NotFound(w, r)
	}
}

func (g *fakeGitHub) seen() ([]string, map[int]string, [][]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := map[int]string{}
	for k, v := range g.comments {
		c[k] = v
	}
	return append([]string(nil), g.requests...), c, append([][]byte(nil), g.sarifs...)
}

// validateSARIF validates file against the SARIF 2.1.0 schema in testdata
// with python3-jsonschema (test/setup.sh installs it).
func validateSARIF(t *testing.T, file string) error {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.SkipOrFail(t, "python3 is not installed: %v", err)
	}
	py := "/usr/bin/python3" // Debian's, where python3-jsonschema is
	if out, err := exec.Command(py, "-c", "import jsonschema").CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "python3-jsonschema is not installed (test/setup.sh installs it): %v\n%s", err, out)
	}
	out, err := exec.Command(py, "-m", "jsonschema", "-i", file, filepath.Join("testdata", "sarif-2.1.0-rtm.5.json")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestActionOrigin runs the action around a real `npm install` whose
// dependency's postinstall runs a real tool, with the pull-request comment
// and SARIF inputs on, every step as the runner's user in the job's
// cgroup: the summary and the annotation say which script of which
// dependency started it, the comment goes to a local server playing the
// GitHub API (created once, then updated; never for a fork), and the
// SARIF file validates and points at the project's package.json.
func TestActionOrigin(t *testing.T) {
	f := setup(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "npm is not installed (test/setup.sh installs it): %v", err)
	}
	api := &fakeGitHub{token: tokens["GITHUB_TOKEN"], comments: map[int]string{}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	// The runner's event payload, root's as the runner writes it.
	event := filepath.Join(runnerDir(t, f), "event.json")
	writePR := func(head string) {
		b := fmt.Sprintf(`{"pull_request": {"number": 42, "base": {"repo": {"full_name": "octo/app"}}, "head": {"repo": {"full_name": %q}}}}`, head)
		if err := os.WriteFile(event, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePR("octo/app")
	// input sarif as a workflow names it: relative to the workspace, where
	// the post step runs
	g := startGitHubJob(t, f, map[string]string{"INPUT_FAIL-ON-DETECTION": "false",
		"INPUT_COMMENT": "true", "INPUT_SARIF-UPLOAD": "true", "INPUT_GITHUB-TOKEN": tokens["GITHUB_TOKEN"], "INPUT_SARIF": "results/mitmexec.sarif",
		"GITHUB_API_URL": srv.URL, "GITHUB_EVENT_PATH": event,
		"GITHUB_WORKFLOW_REF": "octo/app/.github/workflows/ci.yml@refs/pull/42/merge"})
	work := g.gh["GITHUB_WORKSPACE"]
	sarif := filepath.Join(work, "results", "mitmexec.sarif")
	outs := []string{g.main}
	post := func() string {
		out, code := g.post()
		if code != 0 {
			t.Errorf("post: status %d\n%s", code, out)
		}
		outs = append(outs, out)
		return out
	}
	t.Cleanup(func() { post() })

	// The step: npm install of the project, no registry; the dependency is
	// a tarball, as a registry serves it, whose postinstall runs the tool
	// and goes on for a second (the read never races the script's exit).
	marker := fmt.Sprintf("mitmexec-origin-%d", os.Getpid())
	home := filepath.Join(g.runner, "home")
	npmEnv := []string{"HOME=" + home, "npm_config_cache=" + filepath.Join(home, "cache"),
		"npm_config_update_notifier=false", "npm_config_audit=false", "npm_config_fund=false"}
	dep := filepath.Join(g.runner, "left-pad")
	writeIn(t, filepath.Join(dep, "package.json"), fmt.Sprintf(`{"name": "left-pad", "version": "1.3.0", "scripts": {"postinstall": %q}}`,
		f.arpspoof+" -h "+marker+" || true; sleep 1"))
	app := filepath.Join(work, "app")
	writeIn(t, filepath.Join(app, "package.json"), fmt.Sprintf(`{"name": "app", "version": "0.1.0", "dependencies": {"left-pad": "file:%s"}}`,
		filepath.Join(g.runner, "left-pad-1.3.0.tgz")))
	chownTree(t, f, g.runner)
	if out, code := g.stepIn(dep, npmEnv, npm, "pack", "--pack-destination", g.runner); code != 0 {
		t.Fatalf("npm pack: %s", out)
	}
	if out, code := g.stepIn(app, npmEnv, npm, "install", "--offline"); code != 0 {
		t.Fatalf("npm install: %s", out)
	}
	g.waitForDetection(marker)

	postOut := post()
	words := "started by the postinstall script of dependency `left-pad@1.3.0` (npm)"
	if !strings.Contains(postOut, "::error title=MitM tool executed%3A arpspoof::"+words) {
		t.Errorf("post: no annotation with the origin %q:\n%s", words, postOut)
	}
	summary, _ := os.ReadFile(g.gh["GITHUB_STEP_SUMMARY"])
	inTable := "| the postinstall script of dependency <code>left-pad@1.3.0</code> (npm) |"
	if !strings.Contains(string(summary), "| started by |") || !strings.Contains(string(summary), "| tied to the job by |") ||
		!strings.Contains(string(summary), inTable) {
		t.Errorf("summary lacks %q:\n%s", inTable, summary)
	}
	// The gate's evidence: this job's one detection, tied to it by the
	// process tree (npm below the step), with its origin on the record.
	r := readReport(t, filepath.Join(g.dir, "mitmexec-report.json"))
	d := detectionWith(r, marker)
	if d == nil || len(r.Detections) != 1 || len(r.Problems) != 0 {
		t.Fatalf("report: want the one detection and no problem: %+v", r)
	}
	if d["mitmexec.job.match"] != "process_tree" || d["mitmexec.origin.package.name"] != "left-pad" || d["mitmexec.origin.package.dependency"] != true {
		t.Errorf("report: tied by %v, origin package %v (dependency %v): want process_tree, left-pad, true",
			d["mitmexec.job.match"], d["mitmexec.origin.package.name"], d["mitmexec.origin.package.dependency"])
	}

	// The comment: created once, with the summary and the job's marker.
	reqs, comments, uploads := api.seen()
	if len(comments) != 1 || !strings.HasPrefix(comments[1], "<!-- mitmexec:CI/build -->") || !strings.Contains(comments[1], inTable) {
		t.Fatalf("comments %v after requests %v", comments, reqs)
	}
	if !strings.Contains(postOut, "created the pull-request comment 1") {
		t.Errorf("post does not say it created the comment:\n%s", postOut)
	}

	// SARIF: uploaded as written; valid, located at the project's package.json in the checkout.
	if err := validateSARIF(t, sarif); err != nil {
		t.Errorf("SARIF does not validate: %v", err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
				}
				Properties map[string]any
			}
		}
	}
	b, err := os.ReadFile(sarif)
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads) != 1 || !bytes.Equal(uploads[0], b) || !strings.Contains(postOut, "uploaded the SARIF report to code scanning (47177e22)") {
		t.Errorf("%d SARIF uploads, want 1 of %s\n%s", len(uploads), sarif, postOut)
	}
	if err := json.Unmarshal(b, &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("SARIF: %v\n%s", err, b)
	}
	found := false
	for _, r := range log.Runs[0].Results {
		if !strings.Contains(r.Message.Text, marker) {
			continue
		}
		found = true
		if r.RuleID != "net_mitm_tool_exec" || len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI != "app/package.json" ||
			!strings.Contains(r.Message.Text, "left-pad@1.3.0") || r.Properties["mitmexec.origin.package.name"] != "left-pad" {
			t.Errorf("SARIF result: %+v", r)
		}
	}
	if !found {
		t.Errorf("no SARIF result for %s:\n%s", marker, b)
	}
	// The validator does reject what is not SARIF 2.1.0.
	bad := filepath.Join(t.TempDir(), "bad.sarif")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(b), `"version": "2.1.0"`, `"version": "2.0.0"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := validateSARIF(t, bad); err == nil {
		t.Error("the schema check accepted a SARIF version 2.0.0 log")
	}

	// A second run of the post step (a re-run) updates the same comment.
	postOut = post()
	reqs, comments, _ = api.seen()
	if len(comments) != 1 || reqs[len(reqs)-1] != "PATCH /repos/octo/app/issues/comments/1" || !strings.Contains(postOut, "updated the pull-request comment 1") {
		t.Errorf("second run: comments %v, requests %v\n%s", comments, reqs, postOut)
	}

	// A pull request from a fork: nothing is sent.
	writePR("mallory/app")
	n := len(reqs)
	postOut = post()
	if reqs, _, _ = api.seen(); len(reqs) != n || !strings.Contains(postOut, "comment: a pull request from the fork mallory/app") ||
		!strings.Contains(postOut, "SARIF not uploaded: a pull request from the fork mallory/app") {
		t.Errorf("fork: %d requests sent (%v)\n%s", len(reqs)-n, reqs[n:], postOut)
	}

	// A token without pull-requests: write: a warning, not a failure.
	writePR("octo/app")
	api.mu.Lock()
	api.token = "another"
	api.mu.Unlock()
	if postOut = post(); !strings.Contains(postOut, "::warning::pull-request comment failed: GET /repos/octo/app/issues/42/comments: HTTP 403") ||
		!strings.Contains(postOut, "::warning::SARIF upload failed: POST /repos/octo/app/code-scanning/sarifs: HTTP 403") {
		t.Errorf("403: no warning\n%s", postOut)
	}
	_, comments, uploads = api.seen()
	for _, c := range comments {
		outs = append(outs, c)
	}
	for _, u := range uploads {
		outs = append(outs, string(u))
	}
	noTokens(t, []string{g.runner, g.sink.Dir}, outs...)
}

// writeIn writes p, making its directory first.
func writeIn(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGitLabTemplateOrigin: in a GitLab job (the template's pinned
// checkout, every line as the runner's user in the job's cgroup) a tool
// started by a make recipe is reported with its origin in the report
// artifact, and the template's SARIF artifact validates and points at the
// makefile.
func TestGitLabTemplateOrigin(t *testing.T) {
	f := setup(t)
	tpl := loadTemplate(t, f)
	repo, ref := pinnedRepo(t, f)
	g := newGitLabJob(t, f, tpl, repo, ref)
	sarifName := g.gl["MITMEXEC_SARIF"]
	if sarifName == "" || !slices.Contains(tpl.Mitmexec.Artifacts.Paths, sarifName) {
		t.Fatalf("MITMEXEC_SARIF = %q: want a file among the artifacts %v", sarifName, tpl.Mitmexec.Artifacts.Paths)
	}
	g.start()

	marker := fmt.Sprintf("mitmexec-gitlab-origin-%d", os.Getpid())
	writeIn(t, filepath.Join(g.project, "ci.mk"), "probe:\n\t"+f.arpspoof+" -h "+marker+" || true; sleep 1\n")
	if out, code := g.step(nil, "make", "-s", "-f", "ci.mk", "probe"); code != 0 {
		t.Fatalf("make: %s", out)
	}
	waitForFile(t, filepath.Join(g.sink.Dir, "detections.jsonl"), marker)
	checkOut, code := g.sh(tpl.Check.Script)
	if code != 1 {
		t.Errorf("check: status %d, want 1\n%s", code, checkOut)
	}
	afterOut, code := g.sh(tpl.Mitmexec.AfterScript)
	if code != 0 {
		t.Errorf("after_script after the check: status %d\n%s", code, afterOut)
	}

	md, _ := os.ReadFile(filepath.Join(g.project, "mitmexec-report.md"))
	if !strings.Contains(string(md), "| make target <code>probe</code> |") {
		t.Errorf("report lacks the origin:\n%s", md)
	}
	if d, n := report(t, filepath.Join(g.project, "mitmexec-report.json"), marker); n != 1 || d["mitmexec.origin.make.target"] != "probe" {
		t.Errorf("report: %d detection(s), make target %v; want 1, probe", n, d["mitmexec.origin.make.target"])
	}
	sarif := filepath.Join(g.project, sarifName)
	if err := validateSARIF(t, sarif); err != nil {
		t.Errorf("SARIF artifact does not validate: %v", err)
	}
	s, _ := os.ReadFile(sarif)
	if !strings.Contains(string(s), `"uri": "ci.mk"`) || !strings.Contains(string(s), marker) {
		t.Errorf("SARIF artifact does not point at ci.mk for %s:\n%s", marker, s)
	}
	noTokens(t, []string{g.project, g.builds, g.sink.Dir}, g.beforeSc, checkOut, afterOut)
}
