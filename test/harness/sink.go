// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

const (
	// LogsPath is where OTLP/HTTP exporters post logs.
	LogsPath = "/v1/logs"
	// AttrCommandArgs is the record attribute that carries the exec's argv;
	// the tests and the benchmark put a unique marker into it.
	AttrCommandArgs = "process.command_args"

	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// Record is one log record received by the sink, with its resource.
type Record struct {
	Resource pcommon.Map
	Record   plog.LogRecord
}

// Sink is an in-process OTLP/HTTP logs receiver. It keeps every record, and
// for the markers it was told to expect, the moment the first record
// carrying each one arrived (the benchmark's detection latency ends there).
type Sink struct {
	mu      sync.Mutex
	logs    plog.Logs
	errs    []string
	want    map[string]bool
	arrived map[string]time.Time
}

// NewSink returns an empty sink; serve it with Serve.
func NewSink() *Sink {
	return &Sink{logs: plog.NewLogs(), want: map[string]bool{}, arrived: map[string]time.Time{}}
}

// ServeHTTP accepts OTLP/HTTP logs export requests in protobuf or JSON.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Taken first: the arrival time must not include decoding.
	now := time.Now()
	if r.URL.Path != LogsPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		ct = ""
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(fmt.Sprintf("reading body: %v", err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := plogotlp.NewExportRequest()
	resp := plogotlp.NewExportResponse()
	var out []byte
	switch ct {
	case contentTypeProto:
		if err = req.UnmarshalProto(body); err == nil {
			out, err = resp.MarshalProto()
		}
	case contentTypeJSON:
		if err = req.UnmarshalJSON(body); err == nil {
			out, err = resp.MarshalJSON()
		}
	default:
		s.fail(fmt.Sprintf("unsupported content type %q", r.Header.Get("Content-Type")))
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		s.fail(fmt.Sprintf("decoding %s request: %v", ct, err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.noteArrivals(req.Logs(), now)
	req.Logs().ResourceLogs().MoveAndAppendTo(s.logs.ResourceLogs())
	s.mu.Unlock()
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// noteArrivals records now as the arrival of every expected marker seen for
// the first time in logs. The caller holds s.mu.
func (s *Sink) noteArrivals(logs plog.Logs, now time.Time) {
	if len(s.want) == 0 {
		return
	}
	rls := logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				for _, m := range commandArgs(lrs.At(k)) {
					if _, seen := s.arrived[m]; s.want[m] && !seen {
						s.arrived[m] = now
					}
				}
			}
		}
	}
}

func (s *Sink) fail(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, msg)
}

// Expect makes the sink note when the first record carrying marker in its
// process.command_args arrives.
func (s *Sink) Expect(marker string) {
	s.mu.Lock()
	s.want[marker] = true
	s.mu.Unlock()
}

// Arrival is when the first record with the expected marker arrived.
func (s *Sink) Arrival(marker string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[marker]
	return t, ok
}

// ArrivedCount is how many of markers (the keys) have arrived.
func (s *Sink) ArrivedCount(markers map[string]time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for m := range markers {
		if _, ok := s.arrived[m]; ok {
			n++
		}
	}
	return n
}

// Records returns a copy of everything received so far, flattened, and the
// requests the sink refused.
func (s *Sink) Records() ([]Record, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := plog.NewLogs()
	s.logs.CopyTo(cp)
	var out []Record
	for i := 0; i < cp.ResourceLogs().Len(); i++ {
		rl := cp.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, Record{Resource: rl.Resource().Attributes(), Record: lrs.At(k)})
			}
		}
	}
	return out, append([]string(nil), s.errs...)
}

// commandArgs is the record's process.command_args, nil when it has none.
func commandArgs(lr plog.LogRecord) []string {
	v, ok := lr.Attributes().Get(AttrCommandArgs)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	args := make([]string, v.Slice().Len())
	for i := range args {
		args[i] = v.Slice().At(i).AsString()
	}
	return args
}

// HasArg reports whether marker is one element of the record's
// process.command_args.
func (r Record) HasArg(marker string) bool {
	for _, a := range commandArgs(r.Record) {
		if a == marker {
			return true
		}
	}
	return false
}

// WithMarker returns the records that carry marker in process.command_args.
func WithMarker(recs []Record, marker string) []Record {
	var out []Record
	for _, r := range recs {
		if r.HasArg(marker) {
			out = append(out, r)
		}
	}
	return out
}
