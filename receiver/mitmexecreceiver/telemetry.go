// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

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
	)
}
