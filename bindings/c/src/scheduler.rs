//! The scheduler handle: creation from llm-d configuration, endpoints,
//! their metrics, and KV-event ingestion.

use std::ffi::c_char;
use std::sync::Arc;

use llmd_sched::{Endpoint, EndpointMetrics, Scheduler};

use crate::args;
use crate::error::{llmd_error, FfiError};
use crate::handle::{call, create, handle, read, release};
use crate::status::llmd_status;
use crate::string::{json, llmd_string, text_out};
use crate::views::{self, llmd_kv, llmd_str};

/// A scheduler: endpoints, KV index, pipeline and in-flight state. Every
/// call takes it as `const`: share one handle between threads.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_scheduler(pub(crate) Arc<Scheduler>);
handle!(llmd_scheduler, Arc<Scheduler>, "scheduler");

impl From<Scheduler> for llmd_scheduler {
    /// Wraps a scheduler built in Rust (e.g. with a custom clock) so that C
    /// callers can share it; hand it over with `Box::into_raw`.
    fn from(s: Scheduler) -> Self {
        Self(Arc::new(s))
    }
}

/// An endpoint to register.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_endpoint_desc {
    /// Unique name (required).
    pub name: llmd_str,
    /// `ip:port` written into the routing headers (required).
    pub address: llmd_str,
    /// Served base model; NULL when unknown (then it serves any model).
    pub model: llmd_str,
    /// Labels, e.g. `llm-d.ai/role` = `prefill` / `decode` / `both`.
    pub labels: *const llmd_kv,
    /// Number of labels.
    pub n_labels: usize,
    /// LoRA adapters the endpoint can serve.
    pub lora_adapters: *const llmd_str,
    /// Number of LoRA adapters.
    pub n_lora_adapters: usize,
}

/// A metrics snapshot of one endpoint, as scraped from vLLM.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_endpoint_metrics {
    /// `vllm:num_requests_waiting`.
    pub waiting_queue_size: u32,
    /// `vllm:num_requests_running`.
    pub running_requests_size: u32,
    /// `vllm:kv_cache_usage_perc`, in [0, 1].
    pub kv_cache_usage: f64,
    /// `max_lora`; 0 when unknown.
    pub max_active_models: u32,
    /// KV-cache block size in tokens; 0 when unknown.
    pub cache_block_size: u32,
    /// Number of GPU KV-cache blocks; 0 when unknown.
    pub cache_num_blocks: u64,
    /// When the snapshot was taken (scheduler clock: ns since the Unix
    /// epoch, `CLOCK_REALTIME`); 0 = now.
    pub updated_at_ns: u64,
    /// LoRA adapters running.
    pub active_models: *const llmd_str,
    /// Number of running adapters.
    pub n_active_models: usize,
    /// LoRA adapters waiting for a slot.
    pub waiting_models: *const llmd_str,
    /// Number of waiting adapters.
    pub n_waiting_models: usize,
}

/// How `llmd_scheduler_new_with_options` and
/// `llmd_scheduler_from_file_with_options` build a scheduler. A
/// zero-initialised struct (`llmd_scheduler_options o = {0};`) gives the
/// defaults, as a NULL pointer does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_scheduler_options {
    /// Non-zero: `seed` is set; without it tie-breaking is random (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
    pub has_seed: u8,
    /// Seed that makes tie-breaking reproducible (read when `has_seed`).
    pub seed: u64,
    /// Refuse a configuration with any plugin or setting the library accepts
    /// and does not execute (`LLMD_STATUS_CONFIG`, naming each), as
    /// `llmd_scheduler_new_strict` does; non-zero is true (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
    pub strict: u8,
    /// Most requests held open between pick and completion; 0 means the
    /// default, 2^20. A pick that finds this many open first expires the
    /// oldest sixteenth (`llmd_open_requests_expired_at_limit_total`). Past
    /// 2^20 open, the metrics time no more of them
    /// (`llmd_observe_untracked_requests_total`).
    pub max_open_requests: u64,
}

impl llmd_scheduler_options {
    /// The options of the calls that take a seed pointer.
    ///
    /// # Safety
    /// `seed` is NULL or valid for a read.
    unsafe fn seeded(seed: *const u64, strict: bool) -> Self {
        // SAFETY: caller contract.
        let seed = unsafe { seed.as_ref() }.copied();
        llmd_scheduler_options {
            has_seed: u8::from(seed.is_some()),
            seed: seed.unwrap_or(0),
            strict: u8::from(strict),
            max_open_requests: 0,
        }
    }
}

fn build(text: &str, o: llmd_scheduler_options) -> Result<llmd_scheduler, FfiError> {
    let opts = llmd_sched::LoadOptions {
        strict: o.strict != 0,
        ..Default::default()
    };
    let mut s = Scheduler::from_config_str_with(text, opts)?;
    // Tokenizer directories the config names (llmd's tokenizerDir).
    llmd_tokenize::load_configured(&s).map_err(|e| {
        FfiError::from(llmd_sched::ScheduleError::Config(
            llmd_sched::ConfigError::doc(e.to_string()),
        ))
    })?;
    if o.has_seed != 0 {
        s = s.with_seed(o.seed);
    }
    if o.max_open_requests > 0 {
        s = s.with_max_open_requests(usize::try_from(o.max_open_requests).unwrap_or(usize::MAX));
    }
    Ok(llmd_scheduler(Arc::new(s)))
}

/// Creates a scheduler from an llm-d `EndpointPickerConfig` in YAML or JSON
/// (`config` NULL or blank: llm-d's default pipeline). `seed` (NULL: random)
/// makes tie-breaking reproducible. Malformed documents and invalid plugin
/// parameters give `LLMD_STATUS_CONFIG` with a message naming the plugin,
/// the field and the reason.
///
/// # Safety
/// `config` is NULL or valid for `config_len` bytes; `seed` is NULL or valid;
/// `out` is valid for a write; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_new(
    config: *const c_char,
    config_len: usize,
    seed: *const u64,
    out: *mut *mut llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let opts = llmd_scheduler_options::seeded(seed, false);
        llmd_scheduler_new_with_options(config, config_len, &opts, out, err)
    }
}

/// As `llmd_scheduler_new`, but a configuration with any configured plugin
/// or setting that the library accepts and does not execute (a precise
/// producer's `kvEventsConfig`, a token producer's `vllm` backend, a
/// host-owned plugin) is refused with `LLMD_STATUS_CONFIG`, naming each.
///
/// # Safety
/// As `llmd_scheduler_new`.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_new_strict(
    config: *const c_char,
    config_len: usize,
    seed: *const u64,
    out: *mut *mut llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let opts = llmd_scheduler_options::seeded(seed, true);
        llmd_scheduler_new_with_options(config, config_len, &opts, out, err)
    }
}

/// As `llmd_scheduler_new`, with the settings of `opts` (NULL: the
/// defaults): seed, strict loading and the open-request limit.
///
/// # Safety
/// As `llmd_scheduler_new`; `opts` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_new_with_options(
    config: *const c_char,
    config_len: usize,
    opts: *const llmd_scheduler_options,
    out: *mut *mut llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let opts = opts.as_ref().copied().unwrap_or_default();
        create(out, err, || {
            let text = args::opt_str(config, config_len, "config")?.unwrap_or("");
            build(text, opts)
        })
    }
}

/// What loading the configuration did, as JSON: `api_version`,
/// `feature_gates`, `plugins` (each with `status`, `injected`, `remark` and
/// `settings_not_executed`), `warnings`, `document_not_executed` (document-level
/// settings accepted but not executed, each `{setting, reason}`), and
/// `not_executed` — one line per configured plugin or setting the library
/// accepts but does not execute.
///
/// # Safety
/// `s` is NULL or live; `out` valid for a write; `err` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_config_report_json(
    s: *const llmd_scheduler,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(s, out, err, |s| Ok(s.config_report().to_json())) }
}

/// Creates a scheduler from a configuration file (YAML or JSON). An
/// unreadable file gives `LLMD_STATUS_IO`.
///
/// # Safety
/// As `llmd_scheduler_new`; `path` is valid for `path_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_from_file(
    path: *const c_char,
    path_len: usize,
    seed: *const u64,
    out: *mut *mut llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let opts = llmd_scheduler_options::seeded(seed, false);
        llmd_scheduler_from_file_with_options(path, path_len, &opts, out, err)
    }
}

/// As `llmd_scheduler_from_file`, with the settings of `opts` (NULL: the
/// defaults), as `llmd_scheduler_new_with_options` takes them.
///
/// # Safety
/// As `llmd_scheduler_from_file`; `opts` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_from_file_with_options(
    path: *const c_char,
    path_len: usize,
    opts: *const llmd_scheduler_options,
    out: *mut *mut llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        let opts = opts.as_ref().copied().unwrap_or_default();
        create(out, err, || {
            let path = args::str(path, path_len, "path")?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| FfiError::new(llmd_status::Io, format!("cannot read {path}: {e}")))?;
            build(&text, opts)
        })
    }
}

/// Releases a scheduler. NULL is accepted and ignored.
///
/// # Safety
/// `s` is NULL or a scheduler not yet freed, with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_free(s: *mut llmd_scheduler) {
    // SAFETY: caller contract.
    unsafe { release(s) }
}

/// The endpoint an `llmd_endpoint_desc` describes.
///
/// # Safety
/// `ep` is NULL or valid with every view valid for its length.
unsafe fn endpoint_of(ep: *const llmd_endpoint_desc) -> Result<Endpoint, FfiError> {
    // SAFETY: forwarded caller contract.
    unsafe {
        let ep = args::handle(ep, "endpoint")?;
        let mut endpoint =
            Endpoint::new(ep.name.required("name")?, ep.address.required("address")?);
        endpoint.model = ep.model.optional("model")?;
        endpoint.labels = views::pairs(ep.labels, ep.n_labels, "labels")?
            .into_iter()
            .collect();
        endpoint.lora_adapters =
            views::strings(ep.lora_adapters, ep.n_lora_adapters, "lora_adapters")?;
        Ok(endpoint)
    }
}

/// Adds an endpoint. A name already registered, or an address that is not
/// `host:port` (IPv6 in brackets, port 1..=65535), is
/// `LLMD_STATUS_INVALID_ARGUMENT` (`llmd_scheduler_replace_endpoint`
/// changes a registered one).
///
/// # Safety
/// `s` is NULL or live; `ep` is NULL or valid with every view valid for its
/// length; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_add_endpoint(
    s: *const llmd_scheduler,
    ep: *const llmd_endpoint_desc,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { call(s, err, |s| Ok(s.add_endpoint(endpoint_of(ep)?)?)) }
}

/// Replaces the registered endpoint of the same name: its description
/// changes, its scraped metrics are kept, its load, cache and index state
/// start over; `LLMD_STATUS_UNKNOWN_ENDPOINT` when it is not registered.
///
/// # Safety
/// As `llmd_scheduler_add_endpoint`.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_replace_endpoint(
    s: *const llmd_scheduler,
    ep: *const llmd_endpoint_desc,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { call(s, err, |s| Ok(s.update_endpoint(endpoint_of(ep)?)?)) }
}

/// Adds an endpoint given as JSON (`{"name", "address", "labels", "model",
/// "lora_adapters", "metrics"}`); malformed JSON is `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As `llmd_scheduler_add_endpoint`; `json` is valid for `json_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_add_endpoint_json(
    s: *const llmd_scheduler,
    json: *const c_char,
    json_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let json = args::str(json, json_len, "json")?;
            let endpoint: Endpoint = serde_json::from_str(json)
                .map_err(|e| FfiError::invalid(format!("endpoint JSON: {e}")))?;
            s.add_endpoint(endpoint).map_err(FfiError::from)
        })
    }
}

/// Removes an endpoint; `LLMD_STATUS_UNKNOWN_ENDPOINT` when not registered.
///
/// # Safety
/// `s` is NULL or live; `name` is valid for `name_len` bytes; `err` is NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_remove_endpoint(
    s: *const llmd_scheduler,
    name: *const c_char,
    name_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            s.remove_endpoint(args::str(name, name_len, "name")?)
                .map_err(FfiError::from)
        })
    }
}

/// Replaces an endpoint's metrics with numbers.
///
/// # Safety
/// `s` is NULL or live; `name` valid for `name_len` bytes; `m` is NULL or
/// valid with its arrays valid; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_update_metrics(
    s: *const llmd_scheduler,
    name: *const c_char,
    name_len: usize,
    m: *const llmd_endpoint_metrics,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let name = args::str(name, name_len, "name")?;
            let m = args::handle(m, "metrics")?;
            if !(0.0..=1.0).contains(&m.kv_cache_usage) {
                return Err(FfiError::invalid(format!(
                    "kv_cache_usage must be in [0, 1], got {}",
                    m.kv_cache_usage
                )));
            }
            let metrics = EndpointMetrics {
                waiting_queue_size: m.waiting_queue_size,
                running_requests_size: m.running_requests_size,
                kv_cache_usage: m.kv_cache_usage,
                active_models: views::strings(m.active_models, m.n_active_models, "active_models")?,
                waiting_models: views::strings(
                    m.waiting_models,
                    m.n_waiting_models,
                    "waiting_models",
                )?,
                max_active_models: m.max_active_models,
                cache_block_size: m.cache_block_size,
                cache_num_blocks: m.cache_num_blocks,
                updated_at_ns: m.updated_at_ns,
            };
            s.update_endpoint_metrics(name, metrics)
                .map_err(FfiError::from)
        })
    }
}

/// Parses a vLLM `/metrics` scrape (Prometheus text) and stores the snapshot;
/// unparsable text is `LLMD_STATUS_METRICS_PARSE`.
///
/// # Safety
/// `s` is NULL or live; strings valid for their lengths; `err` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_update_metrics_text(
    s: *const llmd_scheduler,
    name: *const c_char,
    name_len: usize,
    text: *const c_char,
    text_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let name = args::str(name, name_len, "name")?;
            let text = args::str(text, text_len, "text")?;
            s.update_endpoint_metrics_text(name, text)
                .map_err(FfiError::from)
        })
    }
}

/// Releases the requests picked more than `max_age_ms` ago that never
/// finished (the host dropped them without `on_complete` / `on_error`): their
/// endpoint load, in-flight gauges and latency-model accounting, counted with
/// outcome `expired`; `*released` (NULL to ignore) receives how many. Call it
/// now and then with an age no request legitimately reaches. Without it the
/// open requests are still bounded: a pick that finds
/// `llmd_scheduler_open_requests_limit` open expires the oldest sixteenth
/// first (`llmd_open_requests_expired_at_limit_total`).
///
/// # Safety
/// `s` is NULL or live; `released` NULL or valid for a write; `err` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_expire_requests(
    s: *const llmd_scheduler,
    max_age_ms: u64,
    released: *mut usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let n = s.expire_requests(std::time::Duration::from_millis(max_age_ms));
            if let Some(out) = released.as_mut() {
                *out = n;
            }
            Ok(())
        })
    }
}

/// Periodic maintenance (expires speculative index entries). Call it every
/// second or so; the library owns no threads.
///
/// # Safety
/// `s` is NULL or live; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_tick(
    s: *const llmd_scheduler,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            s.tick();
            Ok(())
        })
    }
}

/// Names of the registered endpoints as a JSON list of strings.
///
/// # Safety
/// `s` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_endpoints_json(
    s: *const llmd_scheduler,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        text_out(s, out, err, |s| {
            json(serde_json::to_string(&s.endpoint_names()))
        })
    }
}

/// Requests picked and not yet completed (nor failed or expired); 0 when
/// `s` is NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_open_requests(s: *const llmd_scheduler) -> usize {
    // SAFETY: caller contract.
    unsafe { read(s, 0, |s| s.open_requests()) }
}

/// The most requests the scheduler holds open between pick and completion
/// (`max_open_requests` of `llmd_scheduler_options`, default 2^20); 0 when
/// `s` is NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_open_requests_limit(s: *const llmd_scheduler) -> usize {
    // SAFETY: caller contract.
    unsafe { read(s, 0, |s| s.open_requests_limit()) }
}

/// Number of registered endpoints; 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_endpoint_count(s: *const llmd_scheduler) -> usize {
    // SAFETY: caller contract.
    unsafe { read(s, 0, |s| s.endpoint_names().len()) }
}
