// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// registerTelemetry exposes the receiver's counters as the collector's own
// metrics, read when they are collected: nothing is counted twice and the
// exec path pays nothing for them.
func (r *mitmexecReceiver) registerTelemetry() error {
	tb, err := metadata.NewTelemetryBuilder(r.set.TelemetrySettings)
	if err != nil {
		return err
	}
	r.telemetry = tb
	kernel := func(pick func(tracer.Stats) uint64) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.source.Stats()
			if err != nil {
				return err
			}
			o.Observe(int64(pick(c)))
			return nil
		}
	}
	local := func(v *atomic.Uint64) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(v.Load()))
			return nil
		}
	}
	return errors.Join(
		tb.RegisterReceiverMitmexecExecsCallback(kernel(func(c tracer.Stats) uint64 { return c.Execs })),
		tb.RegisterReceiverMitmexecCandidatesCallback(kernel(func(c tracer.Stats) uint64 { return c.Submitted })),
		tb.RegisterReceiverMitmexecRingReserveFailuresCallback(kernel(func(c tracer.Stats) uint64 { return c.ReserveFailed })),
		tb.RegisterReceiverMitmexecKillsCallback(kernel(func(c tracer.Stats) uint64 { return c.Kills })),
		tb.RegisterReceiverMitmexecQueueDroppedCallback(kernel(func(c tracer.Stats) uint64 { return c.QueueDropped })),
		tb.RegisterReceiverMitmexecDetectionsCallback(local(&r.detections)),
		tb.RegisterReceiverMitmexecSuppressedCallback(local(&r.suppressed)),
		tb.RegisterReceiverMitmexecFoldedCallback(local(&r.folded)),
		tb.RegisterReceiverMitmexecDecodeErrorsCallback(local(&r.decodeErrors)),
		tb.RegisterReceiverMitmexecDroppedCallback(local(&r.consumeDropped)),
		tb.RegisterReceiverMitmexecJudgeDroppedCallback(local(&r.judgeDropped)),
		tb.RegisterReceiverMitmexecModuleLoadsCallback(local(&r.moduleLoads)),
		tb.RegisterReceiverMitmexecSummarizedCallback(local(&r.summarized)),
		tb.RegisterReceiverMitmexecFramesCallback(r.observeFrames),
		tb.RegisterReceiverMitmexecOriginUnreadCallback(local(&r.originUnread)),
		tb.RegisterReceiverMitmexecPodLookupFailuresCallback(func(_ context.Context, o metric.Int64Observer) error {
			if r.resource.pods != nil {
				o.Observe(int64(r.resource.pods.Failures()))
			}
			return nil
		}),
		tb.RegisterReceiverMitmexecUnreadFirstSightsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(r.rule.Unread()))
			return nil
		}),
		tb.RegisterReceiverMitmexecHashFailuresCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := r.hasher.Stats()
			o.Observe(int64(st.Lost + st.TooLarge))
			return nil
		}),
		tb.RegisterReceiverMitmexecKernelVerdictErrorsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(r.rule.KernelErrors()))
			return nil
		}),
		r.registerModuleWatch(tb),
	)
}

// registerModuleWatch reports the counters of the watch on tools' module
// files; none when nothing is watched.
func (r *mitmexecReceiver) registerModuleWatch(tb *metadata.TelemetryBuilder) error {
	modules := r.modules
	watched := func(observe func(modwatch.Stats, metric.Int64Observer)) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error {
			if modules != nil {
				observe(modules.Stats(), o)
			}
			return nil
		}
	}
	by := func(key, value string, v uint64, o metric.Int64Observer) {
		o.Observe(int64(v), metric.WithAttributes(attribute.String(key, value)))
	}
	return errors.Join(
		tb.RegisterReceiverMitmexecModuleWatchOverflowsCallback(watched(func(st modwatch.Stats, o metric.Int64Observer) {
			o.Observe(int64(st.Overflows))
		})),
		tb.RegisterReceiverMitmexecModuleWatchEventsCallback(watched(func(st modwatch.Stats, o metric.Int64Observer) {
			by("outcome", "delivered", st.Events, o)
			by("outcome", "dropped", st.Dropped, o)
			by("outcome", "unmatched", st.Unmatched, o)
			by("outcome", "self", st.Self, o)
		})),
		tb.RegisterReceiverMitmexecModuleWatchErrorsCallback(watched(func(st modwatch.Stats, o metric.Int64Observer) {
			by("kind", "mark", st.MarkErrors, o)
			by("kind", "read", st.ReadErrors, o)
		})),
	)
}
