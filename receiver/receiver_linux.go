//go:build linux

package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"golang.org/x/sys/unix"

	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/tracer"
)

func newLogsReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := newReceiver(set, cfg, next, openTracer)
	if err != nil {
		return nil, err
	}
	r.openModules = modwatch.New
	return r, nil
}

func openTracer(o sourceOptions) (execSource, error) {
	t, err := tracer.New(tracer.Options{QueueSize: o.QueueSize, PollInterval: o.PollInterval, SubmitAll: o.SubmitAll, Deny: o.Deny})
	if err != nil {
		return nil, err
	}
	return tracerSource{t}, nil
}

// tracerSource adapts the tracer's counters to the receiver's.
type tracerSource struct{ *tracer.Tracer }

func (t tracerSource) Counters() (sourceCounters, error) {
	s, err := t.Stats()
	return sourceCounters{Execs: s.Execs, Submitted: s.Submitted, ReserveFailed: s.ReserveFailed, Kills: s.Kills, QueueDropped: s.QueueDropped}, err
}

// bootClock reads CLOCK_BOOTTIME, the clock of bpf_ktime_get_boot_ns.
func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
