// SPDX-License-Identifier: Apache-2.0

package cicd

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParse: whatever a process puts in its environment, only allow-listed
// names come out, no value is longer than the bound, and mapping it never
// panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte("GITHUB_ACTIONS=true\x00GITHUB_TOKEN=x\x00GITHUB_REF=refs/pull/1/merge\x00"))
	f.Add([]byte("GITLAB_CI=true\x00CI_PROJECT_URL=https://u:p@h/x\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env := Parse(b)
		for k, v := range env {
			if !Allowed(k) || len(v) > maxValue {
				t.Fatalf("kept %q (%d bytes)", k, len(v))
			}
		}
		c := FromEnv(env)
		for _, u := range []string{c.PipelineRunURL, c.TaskRunURL, c.RepositoryURL} {
			if p, err := url.Parse(u); strings.Contains(u, "://") && (err != nil || p.User != nil) {
				t.Fatalf("userinfo kept in %q", u)
			}
		}
	})
}
