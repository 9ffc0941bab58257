// SPDX-License-Identifier: Apache-2.0

//go:build linux

package action

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.SkipOrFail(t, "node is not installed (test/setup.sh installs nodejs): %v", err)
	}
	return node
}

// sinkStatus is the part of status.json the tests read.
type sinkStatus struct {
	Seq, Records, BadRequests, Stopped int64
	Heartbeats                         []int64
	Instances                          []string
	Metrics                            map[string]float64
	CollectorExit                      *struct {
		Signal string
	}
}

func readSinkStatus(t *testing.T, dir string) sinkStatus {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s sinkStatus
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status.json: %v: %s", err, b)
	}
	return s
}

// TestSinkDecodesAndRefuses runs the sink, unprivileged, with a fake
// collector (a process that never sends) and plays the collector itself:
// its metrics as the real OTLP protobuf encoding (pdata), detections as OTLP
// JSON, then bodies that are not what they claim. The sink keeps what is
// whole, counts the rest, and never takes a bad push for a heartbeat.
func TestSinkDecodesAndRefuses(t *testing.T) {
	node := nodePath(t)
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.json")
	fake := filepath.Join(dir, "collector")
	cfg := filepath.Join(dir, "config.yaml")
	for f, text := range map[string]string{
		jobFile: `{"pid":1,"cgroup":"/job","key":"local","heartbeatMs":1000}`,
		fake:    "#!/bin/sh\nexec sleep 600\n",
		cfg:     "",
	} {
		if err := os.WriteFile(f, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "sink.json")
	cmd := exec.Command(node, "sink.js", jobFile, out, fake, cfg)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir) // the evidence directory goes there
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	var info sinkInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil && json.Unmarshal(b, &info) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink never said where it listens: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(info.Dir, filepath.Join(dir, "mitmexec-evidence-")) {
		t.Fatalf("evidence directory %s, want it under %s", info.Dir, dir)
	}
	post := func(path, contentType string, body []byte) int {
		t.Helper()
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", info.Port, path), contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.instance.id", "instance-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	sent := ms.AppendEmpty()
	sent.SetName("otelcol_exporter_sent_log_records")
	dp := sent.SetEmptySum().DataPoints().AppendEmpty()
	dp.Attributes().PutStr("exporter", "otlphttp/job")
	dp.SetIntValue(2)
	up := ms.AppendEmpty()
	up.SetName("otelcol_process_uptime")
	up.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(5.5)
	metrics, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Body().SetStr("MitM tool executed: arpspoof")
	lrs.AppendEmpty().Body().SetStr("MitM tool executed: ettercap")
	logs, err := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, path, contentType string
		body                    []byte
		want                    int
	}{
		{"metrics", "/v1/metrics", "application/x-protobuf", metrics, 200},
		{"logs", "/v1/logs", "application/json", logs, 200},
		{"metrics cut short", "/v1/metrics", "application/x-protobuf", metrics[:len(metrics)-3], 400},
		{"not protobuf", "/v1/metrics", "application/x-protobuf", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 400},
		{"a wire type protobuf has no more", "/v1/metrics", "application/x-protobuf", []byte{0x0b, 0x00}, 400},
		{"logs not JSON", "/v1/logs", "application/json", []byte(`{"resourceLogs": [`), 400},
		{"larger than a few detections", "/v1/logs", "application/json", bytes.Repeat([]byte(" "), 17<<20), 413},
		{"another path", "/v1/traces", "application/json", []byte("{}"), 404},
	} {
		if got := post(c.path, c.contentType, c.body); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}

	s := readSinkStatus(t, info.Dir)
	if s.Seq != 1 || s.Records != 2 {
		t.Errorf("seq %d, records %d: want 1 request of 2 detections", s.Seq, s.Records)
	}
	if len(s.Heartbeats) != 1 {
		t.Errorf("%d heartbeats, want 1: a push that could not be read is none", len(s.Heartbeats))
	}
	if s.BadRequests != 4 {
		t.Errorf("%d bad requests, want 4", s.BadRequests)
	}
	if s.Metrics["otelcol_exporter_sent_log_records{otlphttp/job}"] != 2 || s.Metrics["otelcol_process_uptime"] != 5.5 ||
		len(s.Instances) != 1 || s.Instances[0] != "instance-1" {
		t.Errorf("metrics %v, instances %v", s.Metrics, s.Instances)
	}
	b, err := os.ReadFile(filepath.Join(info.Dir, "detections.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		Seq     int
		Request json.RawMessage
	}
	if err := json.Unmarshal(b, &line); err != nil || line.Seq != 1 || !bytes.Contains(line.Request, []byte("ettercap")) {
		t.Errorf("detections.jsonl: %v: %s", err, b)
	}
	for _, f := range []string{info.Dir, filepath.Join(info.Dir, "detections.jsonl"), filepath.Join(info.Dir, "status.json")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is writable by others: %v", f, st.Mode())
		}
	}

	// Stopped as the post step does: the sink stops its collector and says
	// so.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil
	case <-time.After(10 * time.Second):
		t.Fatalf("the sink did not stop on SIGTERM: %s", log.String())
	}
	s = readSinkStatus(t, info.Dir)
	if s.Stopped == 0 || s.CollectorExit == nil || s.CollectorExit.Signal != "SIGTERM" {
		t.Errorf("after SIGTERM: stopped %d, collector exit %+v", s.Stopped, s.CollectorExit)
	}
}

// TestAttribute feeds lib.attribute the detections a job meets and checks
// which are the job's: by tree, by cgroup, never left out for their CI
// context, flagged when that context disagrees.
func TestAttribute(t *testing.T) {
	node := nodePath(t)
	type want struct {
		Mine     bool
		Match    string
		Mismatch bool
	}
	github := "github/42/1/build"
	cases := []struct {
		name     string
		job      map[string]any
		d        map[string]any
		expected want
	}{
		{"the job's, by its parent", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 100, "cicd.pipeline.run.id": "42", "cicd.pipeline.task.name": "build"}, want{true, "process_tree", false}},
		{"the job's, by an ancestor, under another job's name", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 7, "mitmexec.ancestors": []string{"7:/bin/sh", "100:/runner/Runner.Worker"}, "cicd.pipeline.run.id": "42", "cicd.pipeline.task.name": "other"}, want{true, "process_tree", true}},
		{"the job's, by a cgroup below the job's, left the tree", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 1, "process.linux.cgroup": "/job/inner", "cicd.pipeline.run.id": "1", "cicd.pipeline.task.name": "other"}, want{true, "cgroup", true}},
		{"a cgroup that only starts like the job's", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 1, "process.linux.cgroup": "/jobless"}, want{false, "", false}},
		{"another job's", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/other", "cicd.pipeline.run.id": "43", "cicd.pipeline.task.name": "build"}, want{false, "", false}},
		{"the host's, no context", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/system.slice/cron.service"}, want{false, "", false}},
		{"claims this job from elsewhere", map[string]any{"pid": 100, "cgroup": "/job", "key": github},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/other", "cicd.pipeline.run.id": "42", "cicd.pipeline.task.name": "build"}, want{true, "ci_context", true}},
		{"root cgroup: no context is counted", map[string]any{"pid": 100, "cgroup": "/", "key": github},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/"}, want{true, "none", false}},
		{"root cgroup: another job's context is not", map[string]any{"pid": 100, "cgroup": "/", "key": github},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/", "cicd.pipeline.run.id": "43", "cicd.pipeline.task.name": "build"}, want{false, "", false}},
		{"GitLab: another job id in the job's cgroup", map[string]any{"pid": 100, "cgroup": "/job", "key": "gitlab/77"},
			map[string]any{"process.parent_pid": 5, "process.linux.cgroup": "/job", "cicd.pipeline.task.run.id": "1"}, want{true, "cgroup", true}},
	}
	in := make([]map[string]any, len(cases))
	for i, c := range cases {
		in[i] = map[string]any{"job": c.job, "d": c.d}
	}
	b, _ := json.Marshal(in)
	cmd := exec.Command(node, "-e", `const lib = require('./lib');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map((c) => lib.attribute(c.d, c.job))));`)
	cmd.Stdin = bytes.NewReader(b)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var res []want
	if err := json.Unmarshal(got, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("node said %s: %v", got, err)
	}
	for i, c := range cases {
		if res[i] != c.expected {
			t.Errorf("%s: got %+v, want %+v", c.name, res[i], c.expected)
		}
	}
}
