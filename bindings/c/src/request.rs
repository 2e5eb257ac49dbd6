//! Requests: a flat descriptor converted into the scheduler's `Request`.

use llmd_sched::model::{LoraRef, Slo};
use llmd_sched::{Prompt, Request};

use crate::args;
use crate::error::FfiError;
use crate::views::{self, llmd_kv, llmd_str};

/// One request to schedule. Zero-initialise it (`{0}`) and set what you
/// have: absent strings are NULL, absent SLOs are 0.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_request_desc {
    /// Request id (required); the lifecycle calls use it.
    pub id: llmd_str,
    /// Target model; for LoRA requests the base model.
    pub model: llmd_str,
    /// Prompt token ids; used when `prompt` is NULL (ids beside a prompt
    /// text are `LLMD_STATUS_INVALID_ARGUMENT`).
    pub tokens: *const u32,
    /// Number of tokens.
    pub n_tokens: usize,
    /// Prompt text (tokenized by the configured estimator); NULL to use
    /// `tokens`.
    pub prompt: llmd_str,
    /// LoRA adapter name; NULL when the request uses none.
    pub lora_name: llmd_str,
    /// LoRA adapter path, when engines identify adapters by path; NULL if
    /// none (a path without `lora_name` is `LLMD_STATUS_INVALID_ARGUMENT`).
    pub lora_path: llmd_str,
    /// vLLM `cache_salt`; NULL if none.
    pub cache_salt: llmd_str,
    /// Session id; NULL if none.
    pub session_id: llmd_str,
    /// Request headers (names match case-insensitively).
    pub headers: *const llmd_kv,
    /// Number of headers.
    pub n_headers: usize,
    /// Objective priority; negative = sheddable.
    pub priority: i32,
    /// Time-to-first-token objective in ms; 0 = none.
    pub ttft_slo_ms: f64,
    /// Time-per-output-token objective in ms; 0 = none.
    pub tpot_slo_ms: f64,
    /// Non-zero: the request carries multimodal items (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
    pub multimodal: u8,
    /// When the request reached the host, on the scheduler's clock:
    /// nanoseconds since the Unix epoch (`clock_gettime(CLOCK_REALTIME)`,
    /// not `CLOCK_MONOTONIC`); 0 = not given, then latencies start at the
    /// pick. A time after the pick is taken as not given.
    pub arrived_at_ns: u64,
    /// Identities of the request's multimodal items (any stable non-empty
    /// string per image, video or audio, e.g. a hash of its URL or bytes),
    /// for the `mm-embeddings-cache` plugins; any implies `multimodal`.
    /// `llmd_scheduler_pick_openai` fills them from the body itself.
    pub mm_items: *const llmd_str,
    /// Number of multimodal items.
    pub n_mm_items: usize,
}

fn slo(value: f64, what: &str) -> Result<Option<f64>, FfiError> {
    if value == 0.0 {
        Ok(None)
    } else if value.is_finite() && value > 0.0 {
        Ok(Some(value))
    } else {
        Err(FfiError::invalid(format!(
            "`{what}` must be 0 (none) or a positive number, got {value}"
        )))
    }
}

/// Converts a descriptor.
///
/// # Safety
/// Every pointer in `d` is NULL or valid for its length.
pub(crate) unsafe fn to_request(d: &llmd_request_desc) -> Result<Request, FfiError> {
    // SAFETY: forwarded caller contract.
    unsafe { to_request_with(d, None) }
}

/// As [`to_request`], with the prompt's token ids given apart from the
/// descriptor (`llmd_scheduler_pick_tokens`): they are read once, into the
/// request, with no intermediate copy.
///
/// # Safety
/// As [`to_request`]; `tokens` valid for reads of its items.
pub(crate) unsafe fn to_request_with(
    d: &llmd_request_desc,
    tokens: Option<&[u32]>,
) -> Result<Request, FfiError> {
    // SAFETY: forwarded caller contract for every field below.
    unsafe {
        let prompt = match (tokens, d.prompt.optional("prompt")?) {
            (Some(t), None) => Prompt::Tokens(t.to_vec()),
            (Some(_), Some(_)) => {
                return Err(FfiError::invalid(
                    "give either the prompt text or token ids, not both",
                ))
            }
            // Token ids in the descriptor beside the text: refused, as above
            // (before, the ids were dropped unread).
            (None, Some(_)) if d.n_tokens > 0 => {
                return Err(FfiError::invalid(
                    "give either the prompt text or token ids, not both",
                ))
            }
            (None, Some(text)) => Prompt::Text(text),
            (None, None) => Prompt::Tokens(args::slice(d.tokens, d.n_tokens, "tokens")?.to_vec()),
        };
        let lora = match d.lora_name.optional("lora_name")? {
            Some(name) => Some(LoraRef {
                id: None,
                name,
                path: d.lora_path.optional("lora_path")?,
            }),
            None if d.lora_path.optional("lora_path")?.is_some() => {
                return Err(FfiError::invalid(
                    "`lora_path` needs `lora_name` (the adapter the path belongs to)",
                ))
            }
            None => None,
        };
        let mm_items = views::strings(d.mm_items, d.n_mm_items, "mm_items")?;
        if mm_items.iter().any(String::is_empty) {
            return Err(FfiError::invalid("`mm_items` entries must be non-empty"));
        }
        Ok(Request {
            id: d.id.required("id")?,
            model: d.model.required("model")?,
            prompt,
            lora,
            cache_salt: d.cache_salt.optional("cache_salt")?,
            session_id: d.session_id.optional("session_id")?,
            headers: views::pairs(d.headers, d.n_headers, "headers")?
                .into_iter()
                .collect(),
            priority: d.priority,
            slo: Slo {
                ttft_ms: slo(d.ttft_slo_ms, "ttft_slo_ms")?,
                tpot_ms: slo(d.tpot_slo_ms, "tpot_slo_ms")?,
            },
            multimodal: d.multimodal != 0 || !mm_items.is_empty(),
            mm_items,
            arrived_at_ns: (d.arrived_at_ns != 0).then_some(d.arrived_at_ns),
            max_output_tokens: None,
        })
    }
}
