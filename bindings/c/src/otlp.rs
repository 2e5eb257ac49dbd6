//! The trace exporter handle (`llmd_otlp_*`): decision spans to an
//! OpenTelemetry collector over OTLP/HTTP (protobuf), continuing the
//! request's W3C trace, from a thread of its own.

use std::ffi::c_char;
use std::time::Duration;

use llmd_feed::otlp::{OtlpExporter, OtlpOptions};

use crate::args::{self};
use crate::decision::llmd_decision;
use crate::error::{llmd_error, FfiError};
use crate::handle::{create, handle, read, release};
use crate::status::llmd_status;

/// An OTLP trace exporter. Every call takes it as `const`; share it between
/// threads. Release with `llmd_otlp_exporter_free` (which sends what is
/// queued first).
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_otlp_exporter(OtlpExporter);
handle!(llmd_otlp_exporter, OtlpExporter, "exporter");

/// Export counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_otlp_stats {
    /// Spans the endpoint accepted.
    pub exported_spans: u64,
    /// Spans dropped because the queue was full.
    pub dropped_spans: u64,
    /// Spans lost to failed POSTs.
    pub failed_spans: u64,
    /// Decisions not exported: no trace context, unsampled, or outside the
    /// sampling ratio.
    pub unsampled_decisions: u64,
}

/// Queue, batching and timing of `llmd_otlp_exporter_new_with_options`. A
/// zero field (or a NULL pointer for all of them) means its default.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_otlp_options {
    /// Spans held for export at most (default 65,536); beyond it decisions
    /// are dropped and counted.
    pub max_queue_spans: u64,
    /// Spans per request at most (default 512).
    pub max_batch_spans: u64,
    /// Longest wait before a partial batch goes, in milliseconds (default
    /// 500).
    pub flush_interval_ms: u64,
    /// Deadline of one POST, in milliseconds (default 5,000).
    pub timeout_ms: u64,
}

impl llmd_otlp_options {
    /// `base` with the options set here.
    fn apply(self, base: OtlpOptions) -> OtlpOptions {
        let size = |n: u64, d: usize| {
            if n == 0 {
                d
            } else {
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        let ms = |n: u64, d: Duration| if n == 0 { d } else { Duration::from_millis(n) };
        OtlpOptions {
            max_queue_spans: size(self.max_queue_spans, base.max_queue_spans),
            max_batch_spans: size(self.max_batch_spans, base.max_batch_spans),
            flush_interval: ms(self.flush_interval_ms, base.flush_interval),
            timeout: ms(self.timeout_ms, base.timeout),
            ..base
        }
    }
}

/// Starts an exporter to `endpoint` (an `http://host:port/v1/traces` URL)
/// with resource `service.name` `service_name` (NULL with 0: "llmd") and
/// `sampling_ratio` (0 to 1, by trace id). A bad URL or ratio gives
/// `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Strings valid for their lengths (`service_name` may be NULL with 0);
/// `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_otlp_exporter_new(
    endpoint: *const c_char,
    endpoint_len: usize,
    service_name: *const c_char,
    service_name_len: usize,
    sampling_ratio: f64,
    out: *mut *mut llmd_otlp_exporter,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        llmd_otlp_exporter_new_with_options(
            endpoint,
            endpoint_len,
            service_name,
            service_name_len,
            sampling_ratio,
            std::ptr::null(),
            out,
            err,
        )
    }
}

/// As `llmd_otlp_exporter_new`, with the queue, batch and timing settings
/// of `opts` (NULL: the defaults). An interval or timeout over 10^9 s gives
/// `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As `llmd_otlp_exporter_new`; `opts` NULL or valid for a read.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the C call's flat argument list
pub unsafe extern "C" fn llmd_otlp_exporter_new_with_options(
    endpoint: *const c_char,
    endpoint_len: usize,
    service_name: *const c_char,
    service_name_len: usize,
    sampling_ratio: f64,
    opts: *const llmd_otlp_options,
    out: *mut *mut llmd_otlp_exporter,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let set = opts.as_ref().copied().unwrap_or_default();
        create(out, err, || {
            let opts = set.apply(OtlpOptions {
                endpoint: args::str(endpoint, endpoint_len, "endpoint")?.to_string(),
                service_name: args::opt_str(service_name, service_name_len, "service_name")?
                    .unwrap_or("llmd")
                    .to_string(),
                sampling_ratio,
                ..OtlpOptions::default()
            });
            let e = OtlpExporter::start(opts)
                .map_err(|e| FfiError::new(llmd_status::InvalidArgument, e.to_string()))?;
            Ok(llmd_otlp_exporter(e))
        })
    }
}

/// Queues the spans of decision `d` timed from `start_unix_ns` to
/// `end_unix_ns` (the host's clock around the pick); never waits on the
/// network. Returns whether they were queued: false for NULL arguments, a
/// decision without a sampled trace context or outside the sampling ratio,
/// or a full queue (each counted).
///
/// # Safety
/// `e`, `d` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_otlp_export_decision(
    e: *const llmd_otlp_exporter,
    d: *const llmd_decision,
    start_unix_ns: u64,
    end_unix_ns: u64,
) -> bool {
    // SAFETY: caller contract.
    unsafe {
        read(e, false, |e| {
            read(d, false, |d| {
                e.export_decision(d, start_unix_ns, end_unix_ns)
            })
        })
    }
}

/// Waits until the queued spans are sent (at most `timeout_ms`); returns
/// whether the queue drained (false for NULL).
///
/// # Safety
/// `e` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_otlp_flush(e: *const llmd_otlp_exporter, timeout_ms: u32) -> bool {
    // SAFETY: caller contract.
    unsafe {
        read(e, false, |e| {
            e.flush(Duration::from_millis(u64::from(timeout_ms)))
        })
    }
}

/// The export counters (zeros for NULL).
///
/// # Safety
/// `e` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_otlp_stats_get(e: *const llmd_otlp_exporter) -> llmd_otlp_stats {
    // SAFETY: caller contract.
    unsafe {
        read(e, llmd_otlp_stats::default(), |e| {
            let s = e.stats();
            llmd_otlp_stats {
                exported_spans: s.exported_spans,
                dropped_spans: s.dropped_spans,
                failed_spans: s.failed_spans,
                unsampled_decisions: s.unsampled_decisions,
            }
        })
    }
}

/// Sends what is queued (each batch within the POST timeout), stops the
/// export thread and releases the exporter. NULL is ignored.
///
/// # Safety
/// `e` NULL or not yet freed, with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_otlp_exporter_free(e: *mut llmd_otlp_exporter) {
    // SAFETY: caller contract.
    unsafe { release(e) }
}
