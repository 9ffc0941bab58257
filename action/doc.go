// SPDX-License-Identifier: Apache-2.0

// Package action holds the JavaScript of the GitHub Action (action.yml at
// the repository root), which the GitLab CI template
// (ci/gitlab/mitmexec.gitlab-ci.yml) runs too, and the Go tests that run
// both as a runner would.
package action
