// SPDX-License-Identifier: Apache-2.0

// Package k8s names the Kubernetes pod a container belongs to: the pod's
// UID from the cgroup path, and its name, namespace and the container's name
// from the node's container runtime over its CRI socket. The collector's
// k8sattributes processor cannot be built into this distribution, so the
// receiver finds the pod itself.
package k8s
