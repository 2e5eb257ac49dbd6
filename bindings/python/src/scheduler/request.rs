//! The keyword arguments of `Scheduler.pick`, converted into a `Request`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use llmd_sched::model::{LoraRef, Prompt, Slo};
use llmd_sched::{Request, RequestErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::errors::{error, Kind};

/// Ids handed to requests picked without one; unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh request id (`llmd-N`) for calls that were given none.
pub(crate) fn next_request_id() -> String {
    format!("llmd-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Everything `pick` accepts besides the scheduler itself.
pub(crate) struct PickArgs<'a, 'py> {
    pub model: String,
    pub prompt: Option<String>,
    pub tokens: Option<&'a Bound<'py, PyAny>>,
    pub request_id: Option<String>,
    pub lora_name: Option<String>,
    pub lora_id: Option<i64>,
    pub lora_path: Option<String>,
    pub cache_salt: Option<String>,
    pub session_id: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub priority: i32,
    pub ttft_slo_ms: Option<f64>,
    pub tpot_slo_ms: Option<f64>,
    pub multimodal: bool,
    /// Arrival at the router, `time.time()` seconds.
    pub arrived_at: Option<f64>,
    /// Identities of the multimodal items.
    pub mm_items: Vec<String>,
}

impl PickArgs<'_, '_> {
    /// Builds the Rust request; all Python objects are read here, so the
    /// result can cross into code that runs without the GIL.
    pub(crate) fn into_request(self, py: Python<'_>) -> PyResult<Request> {
        let prompt = match (self.prompt, self.tokens) {
            (Some(_), Some(_)) => {
                return Err(error(
                    py,
                    Kind::InvalidArgument,
                    "give either prompt (text) or tokens, not both",
                ))
            }
            (Some(text), None) => Prompt::Text(text),
            (None, Some(tokens)) => Prompt::Tokens(convert::tokens_u32(tokens)?),
            (None, None) => Prompt::Tokens(Vec::new()),
        };
        if self.lora_name.is_none() && (self.lora_id.is_some() || self.lora_path.is_some()) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "lora_id and lora_path need lora_name",
            ));
        }
        let lora = self.lora_name.map(|name| LoraRef {
            id: self.lora_id,
            name,
            path: self.lora_path,
        });
        let headers = self
            .headers
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        if self.mm_items.iter().any(String::is_empty) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "mm_items entries must be non-empty strings",
            ));
        }
        let ttft_ms = slo(py, self.ttft_slo_ms, "ttft_slo_ms")?;
        let tpot_ms = slo(py, self.tpot_slo_ms, "tpot_slo_ms")?;
        let id = self.request_id.unwrap_or_else(next_request_id);
        let arrived_at_ns = match self.arrived_at {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => Some((t * 1e9) as u64),
            Some(_) => {
                return Err(error(
                    py,
                    Kind::InvalidArgument,
                    "arrived_at must be a finite, non-negative time.time() value",
                ))
            }
        };
        Ok(Request {
            id,
            model: self.model,
            prompt,
            lora,
            cache_salt: self.cache_salt,
            session_id: self.session_id,
            headers,
            priority: self.priority,
            slo: Slo { ttft_ms, tpot_ms },
            multimodal: self.multimodal || !self.mm_items.is_empty(),
            mm_items: self.mm_items,
            arrived_at_ns,
            max_output_tokens: None,
        })
    }
}

/// A latency objective as the C ABI takes it: `None` or 0 is none, a
/// positive finite number is one; anything else is refused.
fn slo(py: Python<'_>, v: Option<f64>, what: &str) -> PyResult<Option<f64>> {
    match v {
        None => Ok(None),
        Some(0.0) => Ok(None),
        Some(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        Some(v) => Err(error(
            py,
            Kind::InvalidArgument,
            format!("{what} must be None, 0 (none) or a positive finite number, got {v}"),
        )),
    }
}

/// The keys `pick_batch` reads from each request dict (`pick`'s keywords).
const PICK_KEYS: &[&str] = &[
    "model",
    "prompt",
    "tokens",
    "request_id",
    "lora_name",
    "lora_id",
    "lora_path",
    "cache_salt",
    "session_id",
    "headers",
    "priority",
    "ttft_slo_ms",
    "tpot_slo_ms",
    "multimodal",
    "arrived_at",
    "mm_items",
];

/// One request of `pick_batch`: a dict of `pick`'s keyword arguments (an
/// unknown key is an error naming it).
pub(crate) fn request_from_dict(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Request> {
    for k in d.keys() {
        let k: String = k.extract()?;
        if !PICK_KEYS.contains(&k.as_str()) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                format!(
                    "unknown request key {k:?} (pick's keyword arguments: {})",
                    PICK_KEYS.join(", ")
                ),
            ));
        }
    }
    fn get<'py, T: FromPyObjectOwned<'py>>(
        d: &Bound<'py, PyDict>,
        key: &str,
    ) -> PyResult<Option<T>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => Ok(Some(v.extract().map_err(Into::into)?)),
            _ => Ok(None),
        }
    }
    // Floats as `pick` reads them: an int too large for one is an
    // `InvalidArgumentError`, not a bare `OverflowError`.
    fn get_float(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<f64>> {
        match d.get_item(key)? {
            Some(v) => crate::convert::opt_float(&v),
            None => Ok(None),
        }
    }
    // Integers as `pick` reads them: out of range is an
    // `InvalidArgumentError`, not a bare `OverflowError`.
    fn get_int<T: crate::convert::IntRange>(
        d: &Bound<'_, PyDict>,
        key: &str,
    ) -> PyResult<Option<T>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => crate::convert::int(&v).map(Some),
            _ => Ok(None),
        }
    }
    let tokens = d.get_item("tokens")?.filter(|v| !v.is_none());
    PickArgs {
        model: get(d, "model")?.unwrap_or_default(),
        prompt: get(d, "prompt")?,
        tokens: tokens.as_ref(),
        request_id: get(d, "request_id")?,
        lora_name: get(d, "lora_name")?,
        lora_id: get_int(d, "lora_id")?,
        lora_path: get(d, "lora_path")?,
        cache_salt: get(d, "cache_salt")?,
        session_id: get(d, "session_id")?,
        headers: crate::json::str_map(d.get_item("headers")?.as_ref(), "headers")?,
        priority: get_int(d, "priority")?.unwrap_or(0),
        ttft_slo_ms: get_float(d, "ttft_slo_ms")?,
        tpot_slo_ms: get_float(d, "tpot_slo_ms")?,
        multimodal: get(d, "multimodal")?.unwrap_or(false),
        arrived_at: get_float(d, "arrived_at")?,
        mm_items: get(d, "mm_items")?.unwrap_or_default(),
    }
    .into_request(py)
}

/// `on_error`'s `kind` argument.
pub(crate) fn error_kind(py: Python<'_>, kind: &str) -> PyResult<RequestErrorKind> {
    Ok(match kind {
        "cancelled" => RequestErrorKind::Cancelled,
        "upstream" => RequestErrorKind::Upstream,
        "other" => RequestErrorKind::Other,
        other => {
            return Err(error(
                py,
                Kind::InvalidArgument,
                format!(
                "unknown error kind {other:?} (expected \"cancelled\", \"upstream\" or \"other\")"
            ),
            ))
        }
    })
}
