//! The tokenizer handle (`llmd_tokenizer_*`) and picking from OpenAI bodies:
//! the engine's exact token ids computed in-process, for gateways that have
//! no tokenizer of their own.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::Arc;

use llmd_tokenize::{ChatOptions, ChatSession, TokenizeError, Tokenizer};

use crate::args::{self, into_handle, Out};
use crate::decision::llmd_decision;
use crate::error::{llmd_error, FfiError};
use crate::handle::{borrow, call, create, handle, read, release};
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use crate::string::{llmd_string, text_out};
use crate::views::{self, llmd_kv};

/// A tokenizer and chat template loaded from a local model directory.
/// Every call takes it as `const`; share it between threads.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_tokenizer(Arc<Tokenizer>);
handle!(llmd_tokenizer, Arc<Tokenizer>, "tokenizer");

/// One conversation's tokenization cache (`llmd_chat_session_new`): each
/// `llmd_chat_session_encode_chat` gives the ids `llmd_tokenizer_encode_chat`
/// gives, tokenizing only what follows the previous turn. Calls on one
/// session are serialized; use one session per conversation.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_chat_session {
    tok: Arc<Tokenizer>,
    inner: std::sync::Mutex<ChatSession>,
}
handle!(llmd_chat_session, "session");

impl llmd_chat_session {
    /// The session; one a panicking call left behind starts empty.
    fn lock(&self) -> std::sync::MutexGuard<'_, ChatSession> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.reset();
            g
        })
    }
}

/// Owned token ids. Release with `llmd_tokens_free`.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_tokens(Vec<u32>);
handle!(llmd_tokens, Vec<u32>, "tokens");

impl From<TokenizeError> for FfiError {
    fn from(e: TokenizeError) -> Self {
        let code = match &e {
            TokenizeError::File(..) => "tokenizer_file",
            TokenizeError::Template(_) => "chat_template",
            TokenizeError::Request(_) => "request",
            TokenizeError::Tokenize(_) => "tokenize",
            TokenizeError::NotExact(_) => "not_exact",
        };
        FfiError::with_code(llmd_status::InvalidArgument, code, e.to_string())
    }
}

/// Loads a model directory (`tokenizer.json`, `tokenizer_config.json`,
/// chat templates as docs/tokenizer.md lists them); nothing is downloaded. A missing or
/// malformed file gives `LLMD_STATUS_INVALID_ARGUMENT`, code
/// `"tokenizer_file"`, naming the file.
///
/// # Safety
/// `dir` valid for `dir_len` bytes; `out` valid for a write; `err` NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokenizer_from_dir(
    dir: *const c_char,
    dir_len: usize,
    out: *mut *mut llmd_tokenizer,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract (no engine settings).
    unsafe {
        llmd_tokenizer_from_dir_engine(
            dir,
            dir_len,
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            out,
            err,
        )
    }
}

/// As `llmd_tokenizer_from_dir`, rendering as the engine was started:
/// `chat_template` as vLLM's `--chat-template` reads it (a file, or the
/// template itself when it has `{`, `}` or a line break; NULL with length 0:
/// the directory's templates) and `kwargs_json` as its
/// `--default-chat-template-kwargs` (a JSON object under every request's own
/// kwargs; NULL with length 0: none). A template that cannot be read or
/// parsed, or kwargs that are not an object (or name `chat_template`,
/// `messages` or `conversation`), give `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As `llmd_tokenizer_from_dir`; `chat_template` and `kwargs_json` NULL with
/// length 0 or valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokenizer_from_dir_engine(
    dir: *const c_char,
    dir_len: usize,
    chat_template: *const c_char,
    chat_template_len: usize,
    kwargs_json: *const c_char,
    kwargs_len: usize,
    out: *mut *mut llmd_tokenizer,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        create(out, err, || {
            let dir = args::str(dir, dir_len, "dir")?;
            let template = args::opt_str(chat_template, chat_template_len, "chat_template")?;
            let kwargs = args::opt_str(kwargs_json, kwargs_len, "kwargs_json")?;
            let t = Tokenizer::from_dir_engine(dir, template, kwargs)?;
            Ok(llmd_tokenizer(Arc::new(t)))
        })
    }
}

/// Token ids of `text` (`/v1/completions` prompts: `add_special_tokens`
/// true).
///
/// # Safety
/// `t` NULL or live; `text` valid for `len` bytes; `out` valid for a write;
/// `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokenizer_encode(
    t: *const llmd_tokenizer,
    text: *const c_char,
    len: usize,
    add_special_tokens: bool,
    out: *mut *mut llmd_tokens,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(t, err, |t| {
            let out = Out::new(out, "out")?;
            let ids = t.encode(args::str(text, len, "text")?, add_special_tokens)?;
            out.write(into_handle(llmd_tokens(ids)));
            Ok(())
        })
    }
}

/// The ids vLLM's chat completions feed the engine for `messages_json` (an
/// OpenAI `messages` array), with `add_generation_prompt`; `tools_json` and
/// `kwargs_json` (`chat_template_kwargs`) may be NULL. The request's other
/// fields (`continue_final_message`, `add_special_tokens`, truncation,
/// `documents`) are read by `llmd_tokenizer_encode_openai`, which takes the
/// whole body.
///
/// # Safety
/// `t` NULL or live; each JSON valid for its length (or NULL with 0);
/// `out` valid for a write; `err` NULL or valid.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmd_tokenizer_encode_chat(
    t: *const llmd_tokenizer,
    messages_json: *const c_char,
    messages_len: usize,
    add_generation_prompt: bool,
    tools_json: *const c_char,
    tools_len: usize,
    kwargs_json: *const c_char,
    kwargs_len: usize,
    out: *mut *mut llmd_tokens,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(t, err, |t| {
            let out = Out::new(out, "out")?;
            let (messages, opts) = chat_call(
                messages_json,
                messages_len,
                add_generation_prompt,
                tools_json,
                tools_len,
                kwargs_json,
                kwargs_len,
            )?;
            let ids = t.encode_chat(messages, &opts)?;
            out.write(into_handle(llmd_tokens(ids)));
            Ok(())
        })
    }
}

/// The messages and options of a `*_chat` call.
///
/// # Safety
/// Each string valid for its length (or NULL with 0 where optional).
unsafe fn chat_call<'a>(
    messages_json: *const c_char,
    messages_len: usize,
    add_generation_prompt: bool,
    tools_json: *const c_char,
    tools_len: usize,
    kwargs_json: *const c_char,
    kwargs_len: usize,
) -> Result<(&'a str, ChatOptions), FfiError> {
    // SAFETY: caller contract.
    unsafe {
        let opts = ChatOptions {
            add_generation_prompt,
            tools: args::opt_str(tools_json, tools_len, "tools_json")?.map(str::to_string),
            chat_template_kwargs: args::opt_str(kwargs_json, kwargs_len, "kwargs_json")?
                .map(str::to_string),
            ..ChatOptions::default()
        };
        Ok((
            args::str(messages_json, messages_len, "messages_json")?,
            opts,
        ))
    }
}

/// The prompt string vLLM's chat completions render from `messages_json`
/// (arguments as `llmd_tokenizer_encode_chat`). Release `*out` with
/// `llmd_string_free`. A prompt containing a NUL character (which a C
/// string cannot carry) gives `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As `llmd_tokenizer_encode_chat`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmd_tokenizer_render_chat(
    t: *const llmd_tokenizer,
    messages_json: *const c_char,
    messages_len: usize,
    add_generation_prompt: bool,
    tools_json: *const c_char,
    tools_len: usize,
    kwargs_json: *const c_char,
    kwargs_len: usize,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        text_out(t, out, err, |t| {
            let (messages, opts) = chat_call(
                messages_json,
                messages_len,
                add_generation_prompt,
                tools_json,
                tools_len,
                kwargs_json,
                kwargs_len,
            )?;
            let text = t.render_chat(messages, &opts)?;
            if text.contains('\0') {
                // A C string cannot carry it: say so rather than alter it.
                return Err(FfiError::with_code(
                    llmd_status::InvalidArgument,
                    "request",
                    "the rendered prompt contains a NUL character; use llmd_tokenizer_encode_chat for its ids",
                ));
            }
            Ok(text)
        })
    }
}

/// The ids vLLM feeds the engine for an OpenAI body sent to `path`
/// (`/v1/completions` or `/v1/chat/completions`), as the gateway received
/// it: every body field that reaches the template or the tokenizer applies
/// (`tools`, `chat_template_kwargs`, `documents`, `reasoning_effort`,
/// `add_special_tokens`, ...). A malformed body gives
/// `LLMD_STATUS_INVALID_ARGUMENT`, code `"request"`, naming the field.
///
/// # Safety
/// `t` NULL or live; `path` and `body` valid for their lengths; `out` valid
/// for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokenizer_encode_openai(
    t: *const llmd_tokenizer,
    path: *const c_char,
    path_len: usize,
    body: *const u8,
    body_len: usize,
    out: *mut *mut llmd_tokens,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(t, err, |t| {
            let out = Out::new(out, "out")?;
            let path = args::str(path, path_len, "path")?;
            let body = args::bytes(body, body_len, "body")?;
            let ids = t.encode_openai(path, body)?;
            out.write(into_handle(llmd_tokens(ids)));
            Ok(())
        })
    }
}

/// A new, empty session for one conversation with `t` (which it keeps a
/// reference to). Release with `llmd_chat_session_free`.
///
/// # Safety
/// `t` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_chat_session_new(
    t: *const llmd_tokenizer,
    out: *mut *mut llmd_chat_session,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(t, err, |t| {
            let out = Out::new(out, "out")?;
            out.write(into_handle(llmd_chat_session {
                tok: t.clone(),
                inner: std::sync::Mutex::new(ChatSession::new()),
            }));
            Ok(())
        })
    }
}

/// The ids of the whole conversation `messages_json` (arguments as
/// `llmd_tokenizer_encode_chat`), equal to `llmd_tokenizer_encode_chat`'s,
/// tokenizing only the text after the previous turn's last safe cut.
///
/// # Safety
/// `s` NULL or live; otherwise as `llmd_tokenizer_encode_chat`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmd_chat_session_encode_chat(
    s: *const llmd_chat_session,
    messages_json: *const c_char,
    messages_len: usize,
    add_generation_prompt: bool,
    tools_json: *const c_char,
    tools_len: usize,
    kwargs_json: *const c_char,
    kwargs_len: usize,
    out: *mut *mut llmd_tokens,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let (messages, opts) = chat_call(
                messages_json,
                messages_len,
                add_generation_prompt,
                tools_json,
                tools_len,
                kwargs_json,
                kwargs_len,
            )?;
            let ids = s.lock().encode_chat(&s.tok, messages, &opts)?;
            out.write(into_handle(llmd_tokens(ids)));
            Ok(())
        })
    }
}

/// Ids the session's last `llmd_chat_session_encode_chat` took from its
/// cache; 0 for NULL.
///
/// # Safety
/// `s` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_chat_session_reused_tokens(s: *const llmd_chat_session) -> usize {
    // SAFETY: caller contract.
    unsafe { read(s, 0, |s| s.lock().last_reused_tokens()) }
}

/// Forgets the session's cached prefix: the next call tokenizes the whole
/// conversation (as after a new session). NULL is ignored.
///
/// # Safety
/// `s` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_chat_session_reset(s: *const llmd_chat_session) {
    // SAFETY: caller contract.
    unsafe { read(s, (), |s| s.lock().reset()) }
}

/// Releases a session. NULL is ignored.
///
/// # Safety
/// `s` NULL or not yet freed, with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_chat_session_free(s: *mut llmd_chat_session) {
    // SAFETY: caller contract.
    unsafe { release(s) }
}

/// Number of ids.
///
/// # Safety
/// `t` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokens_len(t: *const llmd_tokens) -> usize {
    // SAFETY: caller contract.
    unsafe { read(t, 0, |t| t.len()) }
}

/// The ids (valid until `llmd_tokens_free`); NULL for NULL.
///
/// # Safety
/// `t` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokens_data(t: *const llmd_tokens) -> *const u32 {
    // SAFETY: caller contract.
    unsafe { read(t, std::ptr::null(), |t| t.as_ptr()) }
}

/// Releases token ids. NULL is ignored.
///
/// # Safety
/// `t` NULL or not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokens_free(t: *mut llmd_tokens) {
    // SAFETY: caller contract.
    unsafe { release(t) }
}

/// Releases a tokenizer (a scheduler it was given to keeps its own
/// reference). NULL is ignored.
///
/// # Safety
/// `t` NULL or not yet freed, with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_tokenizer_free(t: *mut llmd_tokenizer) {
    // SAFETY: caller contract.
    unsafe { release(t) }
}

/// Makes `s` tokenize requests to `model` ("" for every model without its
/// own) with `t` in `llmd_scheduler_pick_openai`.
///
/// # Safety
/// `s`, `t` NULL or live; `model` valid for `model_len` bytes; `err` NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_set_tokenizer(
    s: *const llmd_scheduler,
    model: *const c_char,
    model_len: usize,
    t: *const llmd_tokenizer,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let t = borrow(t)?.clone();
            s.set_tokenizer(args::str(model, model_len, "model")?, t);
            Ok(())
        })
    }
}

/// Picks for an OpenAI body as the gateway received it: `path` is
/// `/v1/completions` or `/v1/chat/completions`, `request_id` names the
/// request for the lifecycle calls, `headers` are the request's. With a
/// tokenizer for the model the prompt's ids are the engine's; without one
/// they are estimated and the explanation says so. A malformed body gives
/// `LLMD_STATUS_INVALID_ARGUMENT` naming the field.
///
/// # Safety
/// `s` NULL or live; strings valid for their lengths; `headers` NULL with 0
/// or valid for `n_headers`; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn llmd_scheduler_pick_openai(
    s: *const llmd_scheduler,
    request_id: *const c_char,
    request_id_len: usize,
    path: *const c_char,
    path_len: usize,
    body: *const u8,
    body_len: usize,
    headers: *const llmd_kv,
    n_headers: usize,
    out: *mut *mut llmd_decision,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let id = args::str(request_id, request_id_len, "request_id")?;
            let path = args::str(path, path_len, "path")?;
            let body = args::bytes(body, body_len, "body")?;
            let headers: BTreeMap<String, String> = views::pairs(headers, n_headers, "headers")?
                .into_iter()
                .collect();
            out.write(crate::decision::decided(
                s.pick_openai(id, path, body, &headers),
            )?);
            Ok(())
        })
    }
}
