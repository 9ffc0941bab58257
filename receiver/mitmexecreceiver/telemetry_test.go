// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"gopkg.in/yaml.v3"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/modwatch"
	"github.com/mitmexec/mitmexec/internal/tracer"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

func TestReceiverTelemetry(t *testing.T) {
	// GIVEN a receiver whose own metrics go to a test meter
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	src := newFakeSource()
	sink := new(consumertest.LogsSink)
	r := newFakeReceiver(t, sink, src)
	r.set.TelemetrySettings = tel.NewTelemetrySettings()
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	// WHEN a detection and a garbage record come through
	e := toolExec("ettercap", 12)
	src.records <- event.Encode(&e)
	src.records <- []byte{1}
	waitLogs(t, sink, 1)
	deadline := time.Now().Add(2 * time.Second)
	for r.decodeErrors.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// THEN the counters appear as the collector's metrics
	for name, want := range map[string]int64{
		"otelcol_receiver_mitmexec_execs":         10,
		"otelcol_receiver_mitmexec_candidates":    3,
		"otelcol_receiver_mitmexec_detections":    1,
		"otelcol_receiver_mitmexec_decode_errors": 1,
		"otelcol_receiver_mitmexec_suppressed":    0,
	} {
		m, err := tel.GetMetric(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want {
			t.Errorf("%s = %+v, want %d", name, m.Data, want)
		}
	}
}

// refusingKernel is a kernel whose verdict map refuses every update.
type refusingKernel struct{ *fakeSource }

func (refusingKernel) PutVerdict(event.FileID, event.Verdict) error {
	return errors.New("verdict map full")
}

// countingWatch is a module watch that read nothing but what its counters say.
type countingWatch struct{ stats modwatch.Stats }

func (countingWatch) Events() <-chan modwatch.Event    { return nil }
func (countingWatch) Set([]modwatch.Mark) (int, error) { return 0, nil }
func (w countingWatch) Stats() modwatch.Stats          { return w.stats }
func (countingWatch) Close() error                     { return nil }

// The rule's refused kernel verdicts and the module watch's counters
// (fanotify overflows first) are the collector's metrics too.
func TestReceiverTelemetryKernelVerdictsAndModuleWatch(t *testing.T) {
	// GIVEN a kernel that refuses verdicts and a module watch that lost opens
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	src := newFakeSource()
	sink := new(consumertest.LogsSink)
	cfg := createDefaultConfig().(*Config)
	cfg.SearchPaths = []string{t.TempDir()}
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	r, err := newReceiver(set, cfg, sink, func(tracer.Options) (execSource, error) { return refusingKernel{src}, nil })
	if err != nil {
		t.Fatal(err)
	}
	watch := countingWatch{modwatch.Stats{Events: 5, Overflows: 2, Unmatched: 3, MarkErrors: 4, Dropped: 6, Self: 7, ReadErrors: 8}}
	r.openModules = func(int) (moduleWatch, error) { return watch, nil }
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	// WHEN a tool runs, whose verdict the kernel will not store
	e := toolExec("ettercap", 31)
	src.records <- event.Encode(&e)
	waitLogs(t, sink, 1)
	// THEN every counter is reported, by outcome or kind where it has one
	for _, tc := range []struct {
		name  string
		attrs attribute.Set
		want  int64
	}{
		{"otelcol_receiver_mitmexec_kernel_verdict_errors", attribute.NewSet(), 1},
		{"otelcol_receiver_mitmexec_module_watch_overflows", attribute.NewSet(), 2},
		{"otelcol_receiver_mitmexec_module_watch_events", attribute.NewSet(attribute.String("outcome", "delivered")), 5},
		{"otelcol_receiver_mitmexec_module_watch_events", attribute.NewSet(attribute.String("outcome", "dropped")), 6},
		{"otelcol_receiver_mitmexec_module_watch_events", attribute.NewSet(attribute.String("outcome", "unmatched")), 3},
		{"otelcol_receiver_mitmexec_module_watch_events", attribute.NewSet(attribute.String("outcome", "self")), 7},
		{"otelcol_receiver_mitmexec_module_watch_errors", attribute.NewSet(attribute.String("kind", "mark")), 4},
		{"otelcol_receiver_mitmexec_module_watch_errors", attribute.NewSet(attribute.String("kind", "read")), 8},
	} {
		if got, ok := sumPoint(t, tel, tc.name, tc.attrs); !ok || got != tc.want {
			t.Errorf("%s%v = %d (reported %v), want %d", tc.name, tc.attrs.ToSlice(), got, ok, tc.want)
		}
	}
}

// sumPoint is the value of the data point with attrs of the sum name.
func sumPoint(t *testing.T, tel *componenttest.Telemetry, name string, attrs attribute.Set) (int64, bool) {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return 0, false
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		return 0, false
	}
	for _, p := range sum.DataPoints {
		if p.Attributes.Equals(&attrs) {
			return p.Value, true
		}
	}
	return 0, false
}

// TestRecordDocNamesEveryMetric keeps the contract's telemetry table and
// metadata.yaml in step: every metric the receiver reports is documented,
// and nothing documented is missing from the receiver.
func TestRecordDocNamesEveryMetric(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Telemetry struct {
			Metrics map[string]any `yaml:"metrics"`
		} `yaml:"telemetry"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	var reported []string
	for name := range meta.Telemetry.Metrics {
		reported = append(reported, "otelcol_"+name)
	}
	doc, err := os.ReadFile("../../docs/record.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)\n## Telemetry[^\n]*\n(.*?)(\n## |$)").FindSubmatch(doc)
	if section == nil {
		t.Fatal("docs/record.md has no ## Telemetry section")
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(otelcol_receiver_mitmexec_[a-z_]+)` \\|").FindAllSubmatch(section[1], -1) {
		documented = append(documented, string(m[1]))
	}
	slices.Sort(reported)
	slices.Sort(documented)
	if len(reported) == 0 || !slices.Equal(reported, documented) {
		t.Errorf("docs/record.md's telemetry table names\n%v\nmetadata.yaml's telemetry metrics are\n%v", documented, reported)
	}
}
