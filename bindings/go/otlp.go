package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"fmt"
	"math"
	"time"
)

// OtlpExporter sends the spans of decisions whose request carried a
// sampled W3C traceparent to an OpenTelemetry collector over OTLP/HTTP
// (protobuf), continuing that trace: the scheduling span has the id the
// decision forwards to the worker. Export runs on a thread of its own; a
// full queue drops and counts. Attach it with Scheduler.SetExporter.
type OtlpExporter struct {
	handle[*C.llmd_otlp_exporter]
}

// OtlpStats are an exporter's counters.
type OtlpStats struct {
	ExportedSpans      uint64
	DroppedSpans       uint64
	FailedSpans        uint64
	UnsampledDecisions uint64
}

// OtlpOption sets the queue, batching or timing of NewOtlpExporter.
type OtlpOption func(*otlpOptions)

type otlpOptions struct {
	c   C.llmd_otlp_options
	err error
}

// atLeastOne is n as the C option, or an error (a zero there would mean
// the default, not what was asked).
func (o *otlpOptions) atLeastOne(what string, n int64) C.uint64_t {
	if n < 1 && o.err == nil {
		o.err = &Error{Status: StatusInvalidArgument, Code: "invalid_argument",
			Message: fmt.Sprintf("otlp %s must be at least 1, got %d", what, n)}
	}
	return C.uint64_t(max(n, 0))
}

// WithQueueSpans holds at most n spans for export (default 65,536); beyond
// it decisions are dropped and counted.
func WithQueueSpans(n int) OtlpOption {
	return func(o *otlpOptions) { o.c.max_queue_spans = o.atLeastOne("queue spans", int64(n)) }
}

// WithBatchSpans sends at most n spans per request (default 512).
func WithBatchSpans(n int) OtlpOption {
	return func(o *otlpOptions) { o.c.max_batch_spans = o.atLeastOne("batch spans", int64(n)) }
}

// WithFlushInterval is the longest wait before a partial batch goes
// (default 500 ms; from 1 ms to 10^9 s).
func WithFlushInterval(d time.Duration) OtlpOption {
	return func(o *otlpOptions) { o.c.flush_interval_ms = o.atLeastOne("flush interval (ms)", d.Milliseconds()) }
}

// WithExportTimeout is the deadline of one POST (default 5 s; from 1 ms to
// 10^9 s).
func WithExportTimeout(d time.Duration) OtlpOption {
	return func(o *otlpOptions) { o.c.timeout_ms = o.atLeastOne("timeout (ms)", d.Milliseconds()) }
}

// NewOtlpExporter starts an exporter to endpoint (an
// http://host:port/v1/traces URL) with resource service.name serviceName
// ("" for "llmd") and samplingRatio (0 to 1, by trace id), tuned by opts.
// A size below 1 or a duration below 1 ms is an ErrInvalidArgument.
func NewOtlpExporter(endpoint, serviceName string, samplingRatio float64, opts ...OtlpOption) (*OtlpExporter, error) {
	var o otlpOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	ep, el := str(endpoint)
	sp, sl := optStr(nonEmpty(serviceName))
	var h *C.llmd_otlp_exporter
	var e *C.llmd_error
	if err := takeError(C.llmd_otlp_exporter_new_with_options(ep, el, sp, sl, C.double(samplingRatio), &o.c, &h, &e), e); err != nil {
		return nil, err
	}
	return ownedSlow(&OtlpExporter{handle[*C.llmd_otlp_exporter]{h: h}}, (*OtlpExporter).Close), nil
}

// export queues a decision the scheduler is about to release. It never
// waits: a read lock that is not free at once means Close is waiting for a
// Flush to end (a writer queues later readers behind it), and a decision
// made while the exporter closes is not exported.
func (x *OtlpExporter) export(dec *C.llmd_decision, start, end time.Time) {
	if !x.mu.TryRLock() {
		return
	}
	defer x.mu.RUnlock()
	if x.h != nil {
		C.llmd_otlp_export_decision(x.h, dec, C.uint64_t(start.UnixNano()), C.uint64_t(end.UnixNano()))
	}
}

// Flush waits until the queued spans are sent, at most timeout; it reports
// whether the queue drained. A negative timeout flushes nothing and
// reports false.
func (x *OtlpExporter) Flush(timeout time.Duration) bool {
	if timeout < 0 {
		return false
	}
	// The C call takes 32-bit milliseconds: one over about 49.7 days is the
	// longest it takes.
	// Rounded up: a wait shorter than a millisecond still waits one.
	ms := min(ceilMillis(timeout), math.MaxUint32)
	drained := false
	_ = x.with(func(h *C.llmd_otlp_exporter) error {
		drained = bool(C.llmd_otlp_flush(h, C.uint32_t(ms)))
		return nil
	})
	return drained
}

// Stats returns the counters.
func (x *OtlpExporter) Stats() OtlpStats {
	var s C.llmd_otlp_stats
	_ = x.with(func(h *C.llmd_otlp_exporter) error {
		s = C.llmd_otlp_stats_get(h)
		return nil
	})
	return OtlpStats{
		ExportedSpans:      uint64(s.exported_spans),
		DroppedSpans:       uint64(s.dropped_spans),
		FailedSpans:        uint64(s.failed_spans),
		UnsampledDecisions: uint64(s.unsampled_decisions),
	}
}

// Close sends what is queued, stops the export thread and releases the
// exporter; a scheduler it is attached to stops exporting.
func (x *OtlpExporter) Close() error {
	// Sending the queue can take a POST timeout per batch: picks of a
	// scheduler this exporter is attached to must not wait for it.
	x.closeOutside(func(h *C.llmd_otlp_exporter) { C.llmd_otlp_exporter_free(h) })
	return disowned(x)
}

// SetExporter makes Pick and PickOpenAI hand each decision, timed around
// the call, to x (nil detaches). The pick itself never waits on the
// network.
func (s *Scheduler) SetExporter(x *OtlpExporter) {
	s.exporter.Store(x)
}
