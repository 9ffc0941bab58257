// SPDX-License-Identifier: Apache-2.0

// Package receiver is the mitmexec OpenTelemetry Collector receiver: it
// traces execs with eBPF, recognises network man-in-the-middle tools and emits
// one log record per detection (see docs/record.md).
//
// receiver/metadata.yaml is a symlink to the repository's top-level
// metadata.yaml: mdatagen writes next to the file it is given.
//
//go:generate go tool mdatagen metadata.yaml
package receiver // import "github.com/mitmexec/mitmexec/receiver"
