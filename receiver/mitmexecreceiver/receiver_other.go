// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"fmt"
	"runtime"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// newLogsReceiver fails off Linux: the receiver traces execs with eBPF.
// The factory still registers, so a distribution built for another OS keeps
// its other components and says why this one cannot run.
func newLogsReceiver(_ receiver.Settings, _ *Config, _ consumer.Logs) (receiver.Logs, error) {
	return nil, fmt.Errorf("mitmexec receiver: eBPF exec tracing needs Linux, this is %s", runtime.GOOS)
}
