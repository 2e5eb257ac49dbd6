package llmd

/*
#include <llmd.h>
*/
import "C"

import (
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

// NewOtlpExporter starts an exporter to endpoint (an
// http://host:port/v1/traces URL) with resource service.name serviceName
// ("" for "llmd") and samplingRatio (0 to 1, by trace id).
func NewOtlpExporter(endpoint, serviceName string, samplingRatio float64) (*OtlpExporter, error) {
	ep, el := str(endpoint)
	sp, sl := optStr(nonEmpty(serviceName))
	var h *C.llmd_otlp_exporter
	var e *C.llmd_error
	if err := takeError(C.llmd_otlp_exporter_new(ep, el, sp, sl, C.double(samplingRatio), &h, &e), e); err != nil {
		return nil, err
	}
	return ownedSlow(&OtlpExporter{handle[*C.llmd_otlp_exporter]{h: h}}, (*OtlpExporter).Close), nil
}

// export queues a decision the scheduler is about to release.
func (x *OtlpExporter) export(dec *C.llmd_decision, start, end time.Time) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.h != nil {
		C.llmd_otlp_export_decision(x.h, dec, C.uint64_t(start.UnixNano()), C.uint64_t(end.UnixNano()))
	}
}

// Flush waits until the queued spans are sent, at most timeout; it reports
// whether the queue drained.
func (x *OtlpExporter) Flush(timeout time.Duration) bool {
	// The C call takes 32-bit milliseconds: a negative timeout is 0, one
	// over about 49.7 days the longest it takes.
	ms := min(max(timeout.Milliseconds(), 0), math.MaxUint32)
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
