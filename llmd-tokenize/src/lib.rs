//! # llmd-tokenize
//!
//! The prompt's token ids exactly as a vLLM engine will see them, computed
//! in-process from a local model directory: no tokenizer sidecar and no
//! round trip to the pod's `/tokenize`.
//!
//! - **Tokenization** with the HF `tokenizers` crate (the code behind HF's
//!   Python `tokenizers`, same release line, same regex engine), from
//!   `tokenizer.json`.
//! - **Chat templates** rendered the way transformers renders them
//!   ([`template`]): `trim_blocks` and `lstrip_blocks`, loop controls,
//!   Python's string and dict methods, `tojson` as
//!   `json.dumps(ensure_ascii=False)`, `raise_exception`, `strftime_now`,
//!   and values printed as Python prints them ([`pyfmt`]).
//! - **vLLM's rules** for chat completions ([`chat`], vLLM 0.33.0): the
//!   template's content format (string or OpenAI parts), message
//!   normalisation (list content flattened with "\n", `null` content, tool
//!   calls' JSON arguments as objects, tool messages' text joined, the
//!   developer role folded into system when the template lacks it), tools
//!   as the request model dumps them, and `chat_template_kwargs` filtered
//!   to what the template reads. The rendered string is tokenized without
//!   added special tokens; `/v1/completions` prompts with them.
//! - **Sessions** ([`ChatSession`]): a conversation's next turn tokenizes
//!   only what follows the last safe cut of the previous rendering, with
//!   ids identical to a full tokenization (why: see the module).
//!
//! This crate sits beside the scheduler's core: `llmd-kvindex` and
//! `llmd-sched` do not depend on it.
//!
//! ```no_run
//! use llmd_tokenize::{ChatOptions, Tokenizer};
//!
//! let tok = Tokenizer::from_dir("/models/Qwen3-8B")?;
//! let ids = tok.encode_chat(r#"[{"role": "user", "content": "hi"}]"#, &ChatOptions::default())?;
//! let prompt_ids = tok.encode("Once upon a time", true)?;
//! # Ok::<(), llmd_tokenize::TokenizeError>(())
//! ```

pub mod chat;
pub mod pyfmt;
mod pyjson;
mod session;
pub mod template;
mod tokenizer;

pub use chat::ContentFormat;
pub use session::{ChatSession, SessionStats};
pub use tokenizer::{load_configured, ChatOptions, EngineRenders, Tokenizer};

/// Why a tokenizer could not be loaded or a request not tokenized.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// A model-directory file is missing or malformed (names the file).
    #[error("{0}: {1}")]
    File(String, String),
    /// The chat template failed to compile or raised while rendering.
    #[error("chat template: {0}")]
    Template(String),
    /// The request (messages, tools, kwargs) is malformed (names the field).
    #[error("request: {0}")]
    Request(String),
    /// The tokenizer failed on the text.
    #[error("tokenize: {0}")]
    Tokenize(String),
    /// A valid body whose engine ids cannot be computed here (the engine
    /// renders it otherwise: [`EngineRenders`], or a field such as the
    /// body's own `chat_template`, see `llmd_sched::NotRendered`). Route it
    /// on an estimate (`pick_openai` does), rather than refuse it.
    #[error("not exact: {0}")]
    NotExact(String),
}
