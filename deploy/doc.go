// SPDX-License-Identifier: Apache-2.0

// Package deploy holds nothing but the tests of the deployment files next to
// it: the collector configurations validate with the built collector, the
// Grafana dashboard and the Loki rules use only names the receiver emits, and
// the Kubernetes manifests grant what the receiver needs.
package deploy
