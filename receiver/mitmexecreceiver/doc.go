// SPDX-License-Identifier: Apache-2.0

// Package mitmexecreceiver is the mitmexec OpenTelemetry Collector receiver:
// it traces execs with eBPF, recognises network man-in-the-middle tools and
// emits one log record per detection (see docs/record.md).
//
//go:generate go tool mdatagen metadata.yaml
package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"
