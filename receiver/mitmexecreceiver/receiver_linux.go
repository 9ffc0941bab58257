// SPDX-License-Identifier: Apache-2.0

//go:build linux

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/netaddr"
	"github.com/mitmexec/mitmexec/internal/tracer"
)

func newLogsReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := newReceiver(set, cfg, next, openTracer)
	if err != nil {
		return nil, err
	}
	r.openModules = openModuleWatch
	r.interfaces = netaddr.New(interfaceTTL)
	return r, nil
}

func openTracer(o tracer.Options) (execSource, error) {
	t, err := tracer.New(o)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return t, nil
}

// bootClock reads CLOCK_BOOTTIME, the clock of bpf_ktime_get_boot_ns.
func openModuleWatch(queue int) (moduleWatch, error) {
	w, err := modwatch.New(queue)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return w, nil
}

func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
