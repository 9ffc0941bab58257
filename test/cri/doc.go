// SPDX-License-Identifier: Apache-2.0

// Package cri holds the privileged tests that run the built collector next
// to a real container runtime: containerd (Debian's 1.6 and a current 2.x)
// started by the test with its own root, state, socket and network
// namespace, pods and containers created through the CRI with the labels
// the kubelet sets, real tools exec'd inside them, and every detection's
// resource checked against what the runtime made. The fake CRI servers of
// internal/k8s and receiver cover the socket's protocol; these cover the
// runtime's own answers.
package cri
