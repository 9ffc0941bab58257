// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
)

// fakeProcEntry writes root/PID/{stat,environ} as /proc shows them.
func fakeProcEntry(t *testing.T, root string, pid uint32, startTicks uint64, env []string) {
	t.Helper()
	d := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	require.NoError(t, os.MkdirAll(d, 0o755))
	stat := strconv.FormatUint(uint64(pid), 10) + " (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " +
		strconv.FormatUint(startTicks, 10) + " 0 0\n"
	require.NoError(t, os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(d, "environ"), []byte(strings.Join(env, "\x00")+"\x00"), 0o644))
}

func TestTranslateCIContext(t *testing.T) {
	secrets := []string{"GITHUB_TOKEN=ghs_SECRET1", "ACTIONS_RUNTIME_TOKEN=SECRET2", "CI_JOB_TOKEN=SECRET3",
		"CI_REGISTRY_PASSWORD=SECRET4", "CI_REPOSITORY_URL=https://gitlab-ci-token:SECRET5@gitlab.example/g/p.git"}
	for _, tc := range []struct {
		name string
		env  []string
		want map[string]string
	}{
		{"github", []string{"GITHUB_ACTIONS=true", "GITHUB_WORKFLOW=CI", "GITHUB_RUN_ID=77", "GITHUB_SERVER_URL=https://github.com",
			"GITHUB_REPOSITORY=o/r", "GITHUB_JOB=build", "RUNNER_NAME=r1", "GITHUB_HEAD_REF=topic", "GITHUB_SHA=abc",
			"GITHUB_REF=refs/pull/3/merge"},
			map[string]string{"cicd.pipeline.run.url.full": "https://github.com/o/r/actions/runs/77", "vcs.change.id": "3",
				"vcs.provider.name": "github", "vcs.repository.url.full": "https://github.com/o/r"}},
		{"gitlab", []string{"GITLAB_CI=true", "CI_PROJECT_PATH=g/p", "CI_PIPELINE_ID=5", "CI_PIPELINE_URL=https://gl/g/p/-/pipelines/5",
			"CI_JOB_NAME=test", "CI_JOB_ID=9", "CI_JOB_URL=https://gl/g/p/-/jobs/9", "CI_RUNNER_DESCRIPTION=shared",
			"CI_PROJECT_URL=https://gl/g/p", "CI_COMMIT_REF_NAME=topic", "CI_COMMIT_SHA=abc", "CI_MERGE_REQUEST_IID=4"},
			map[string]string{"cicd.pipeline.name": "g/p", "cicd.pipeline.task.run.id": "9", "vcs.change.id": "4",
				"vcs.provider.name": "gitlab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a tool that already exited, under a step shell that holds the job's variables
			root := t.TempDir()
			fakeProcEntry(t, root, 200, 400, append(append([]string{}, tc.env...), secrets...))
			r := &mitmexecReceiver{procRoot: root}
			rec := detectionRecord{
				Exec: event.Exec{PID: 300, StartBootTimeNs: 500 * 1e7, Name: "arpspoof",
					Ancestors: []event.Ancestor{{PID: 200, StartBootTime: 400 * 1e7, Comm: "bash"}}},
				Detection: detect.Detection{Tool: tool(t, "arpspoof"), Match: detect.MatchExecutableName},
				Time:      execTime,
			}

			// WHEN the receiver reads the CI context and translates the record
			r.readCI(&rec)
			ld, sl := newLogs(testResource)
			appendDetection(sl, &rec, observedTime, 4096)
			raw := onlyRecord(t, ld).Attributes().AsRaw()

			// THEN every attribute the system has is there, and no token anywhere
			for k, v := range tc.want {
				assert.Equal(t, v, raw[k], k)
			}
			for _, k := range ciContractNames() {
				if tc.name == "github" && (k == "cicd.pipeline.task.run.id" || k == "cicd.pipeline.task.run.url.full") {
					assert.NotContains(t, raw, k, "GitHub names no job run")
					continue
				}
				assert.Contains(t, raw, k)
			}
			js, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
			require.NoError(t, err)
			assert.NotContains(t, string(js), "SECRET")
			assert.NotContains(t, string(js), "TOKEN")
		})
	}
}

func TestTranslateNoCIContext(t *testing.T) {
	rec := detectionRecord{
		Exec:      event.Exec{PID: 10, Name: "ettercap"},
		Detection: detect.Detection{Tool: tool(t, "ettercap"), Match: detect.MatchExecutableName},
		Time:      execTime,
	}
	(&mitmexecReceiver{procRoot: t.TempDir()}).readCI(&rec)
	raw := translate(t, rec, 4096).Attributes().AsRaw()
	for k := range raw {
		assert.False(t, strings.HasPrefix(k, "cicd.") || strings.HasPrefix(k, "vcs."), k)
	}
}
