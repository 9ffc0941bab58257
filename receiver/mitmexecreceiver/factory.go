// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// NewFactory returns the factory of the mitmexec receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

// createLogs builds the receiver without touching the kernel: loading and
// attaching the eBPF programs happens in Start, so creating one needs no
// privileges.
func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("mitmexec receiver: config is %T, want *Config", cfg)
	}
	return newLogsReceiver(set, c, next)
}
