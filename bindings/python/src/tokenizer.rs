//! `llmd.Tokenizer`: exact tokenization and chat rendering from a local
//! model directory (HF `tokenizers`, chat templates rendered as vLLM does).

use std::path::PathBuf;
use std::sync::Arc;

use llmd_tokenize::{ChatOptions, ChatSession, ContentFormat, TokenizeError, Tokenizer};
use pyo3::prelude::*;

use crate::errors::{error, Kind};

fn tok_error(py: Python<'_>, e: TokenizeError) -> PyErr {
    let code = match &e {
        TokenizeError::File(..) => "tokenizer_file",
        TokenizeError::Template(_) => "chat_template",
        TokenizeError::Request(_) => "request",
        TokenizeError::Tokenize(_) => "tokenize",
        TokenizeError::NotExact(_) => "not_exact",
    };
    let err = error(py, Kind::InvalidArgument, e.to_string());
    let _ = err.value(py).setattr("code", code);
    err
}

/// A tokenizer and chat templates loaded from a local model directory
/// (`tokenizer.json`, `tokenizer_config.json`, chat templates as
/// docs/tokenizer.md lists them); nothing is downloaded. Ids equal HF's
/// `tokenizers` on the same files; chat rendering follows vLLM 0.33's chat
/// completions.
#[pyclass(name = "Tokenizer", module = "llmd", frozen)]
pub(crate) struct PyTokenizer {
    inner: Arc<Tokenizer>,
}

impl PyTokenizer {
    /// The tokenizer, shared (a scheduler routes with it).
    pub(crate) fn shared(&self) -> Arc<Tokenizer> {
        Arc::clone(&self.inner)
    }

    /// The messages as JSON text and the options, from Python arguments.
    fn chat_args(
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
        continue_final_message: bool,
        tools: Option<&Bound<'_, PyAny>>,
        chat_template_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(String, ChatOptions)> {
        let opts = ChatOptions {
            add_generation_prompt,
            continue_final_message,
            tools: tools
                .map(|t| crate::json::dumps(py, t, "tools"))
                .transpose()?,
            chat_template_kwargs: chat_template_kwargs
                .map(|k| crate::json::dumps(py, k, "chat_template_kwargs"))
                .transpose()?,
            ..ChatOptions::default()
        };
        Ok((crate::json::dumps(py, messages, "messages")?, opts))
    }
}

#[pymethods]
impl PyTokenizer {
    /// Loads a model directory; `chat_template` and
    /// `default_chat_template_kwargs` mirror the engine's
    /// `--chat-template` (a file or the template itself) and
    /// `--default-chat-template-kwargs`.
    #[staticmethod]
    #[pyo3(signature = (path, *, chat_template=None, default_chat_template_kwargs=None))]
    fn from_dir(
        py: Python<'_>,
        path: PathBuf,
        chat_template: Option<String>,
        default_chat_template_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let kwargs = default_chat_template_kwargs
            .map(|k| crate::json::dumps(py, k, "default_chat_template_kwargs"))
            .transpose()?;
        py.detach(|| Tokenizer::from_dir_engine(&path, chat_template.as_deref(), kwargs.as_deref()))
            .map(|inner| PyTokenizer {
                inner: Arc::new(inner),
            })
            .map_err(|e| tok_error(py, e))
    }

    /// Token ids of `text`; `/v1/completions` prompts add special tokens.
    #[pyo3(signature = (text, *, add_special_tokens=true))]
    fn encode(&self, py: Python<'_>, text: &str, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        py.detach(|| self.inner.encode(text, add_special_tokens))
            .map_err(|e| tok_error(py, e))
    }

    /// The prompt string vLLM's chat completions render from OpenAI
    /// `messages` (and `tools`, `chat_template_kwargs`).
    #[pyo3(signature = (messages, *, add_generation_prompt=true, continue_final_message=false, tools=None, chat_template_kwargs=None))]
    fn render_chat(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
        continue_final_message: bool,
        tools: Option<&Bound<'_, PyAny>>,
        chat_template_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (m, o) = Self::chat_args(
            py,
            messages,
            add_generation_prompt,
            continue_final_message,
            tools,
            chat_template_kwargs,
        )?;
        py.detach(|| self.inner.render_chat(&m, &o))
            .map_err(|e| tok_error(py, e))
    }

    /// The token ids vLLM's chat completions feed the engine: the rendered
    /// chat tokenized without added special tokens.
    #[pyo3(signature = (messages, *, add_generation_prompt=true, continue_final_message=false, tools=None, chat_template_kwargs=None))]
    fn encode_chat(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
        continue_final_message: bool,
        tools: Option<&Bound<'_, PyAny>>,
        chat_template_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<u32>> {
        let (m, o) = Self::chat_args(
            py,
            messages,
            add_generation_prompt,
            continue_final_message,
            tools,
            chat_template_kwargs,
        )?;
        py.detach(|| self.inner.encode_chat(&m, &o))
            .map_err(|e| tok_error(py, e))
    }

    /// The token ids vLLM feeds the engine for an OpenAI request body sent
    /// to `path` (`/v1/completions` or `/v1/chat/completions`; `body` as
    /// bytes or a dict): every body field that reaches the template or the
    /// tokenizer is applied (`tools`, `chat_template_kwargs`, `documents`,
    /// `reasoning_effort`, `add_special_tokens`, ...). A malformed body
    /// raises `InvalidArgumentError` with `code` `"request"`; a valid one
    /// whose engine ids cannot be computed here (its own `chat_template`, a
    /// `suffix` or `prompt_embeds`, or a model vLLM renders otherwise) with
    /// `code` `"not_exact"`: route it on an estimate (`pick_openai` does).
    fn encode_openai(
        &self,
        py: Python<'_>,
        path: &str,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<u32>> {
        let bytes = crate::scheduler::body_bytes(py, body)?;
        py.detach(|| self.inner.encode_openai(path, &bytes))
            .map_err(|e| tok_error(py, e))
    }

    /// A session for one conversation: each `encode_chat` on it gives the
    /// same ids as `Tokenizer.encode_chat`, tokenizing only what follows
    /// the previous turn's last safe cut.
    fn session(&self) -> PyChatSession {
        PyChatSession {
            tok: Arc::clone(&self.inner),
            inner: parking_lot::Mutex::new(ChatSession::new()),
        }
    }

    /// The chat template, or None.
    #[getter]
    fn chat_template(&self) -> Option<String> {
        self.inner.chat_template().map(str::to_string)
    }

    /// How the template reads message content: "string" or "openai".
    #[getter]
    fn content_format(&self) -> &'static str {
        match self.inner.content_format() {
            ContentFormat::String => "string",
            ContentFormat::OpenAi => "openai",
        }
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// One conversation's tokenization cache (`Tokenizer.session()`).
#[pyclass(name = "ChatSession", module = "llmd", frozen)]
pub(crate) struct PyChatSession {
    tok: Arc<Tokenizer>,
    inner: parking_lot::Mutex<ChatSession>,
}

#[pymethods]
impl PyChatSession {
    /// The ids of the whole conversation `messages`, as
    /// `Tokenizer.encode_chat` gives them, tokenizing only the new text.
    #[pyo3(signature = (messages, *, add_generation_prompt=true, continue_final_message=false, tools=None, chat_template_kwargs=None))]
    fn encode_chat(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
        continue_final_message: bool,
        tools: Option<&Bound<'_, PyAny>>,
        chat_template_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<u32>> {
        let (m, o) = PyTokenizer::chat_args(
            py,
            messages,
            add_generation_prompt,
            continue_final_message,
            tools,
            chat_template_kwargs,
        )?;
        py.detach(|| self.inner.lock().encode_chat(&self.tok, &m, &o))
            .map_err(|e| tok_error(py, e))
    }

    /// Ids the last `encode_chat` took from the cache.
    #[getter]
    fn last_reused_tokens(&self, py: Python<'_>) -> usize {
        // Without the GIL: an `encode_chat` on another thread holds the lock.
        py.detach(|| self.inner.lock().last_reused_tokens())
    }

    /// Forgets the cached prefix.
    fn reset(&self, py: Python<'_>) {
        py.detach(|| self.inner.lock().reset());
    }
}
