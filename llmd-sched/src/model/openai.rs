//! Requests as gateways receive them: OpenAI `/v1/completions` and
//! `/v1/chat/completions` bodies, parsed into what routing needs. Pure
//! parsing; turning chat messages into token ids is a [`PromptTokenizer`]'s
//! job (the `llmd-tokenize` crate provides one).

use serde_json::Value;

use crate::error::ScheduleError;

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 32 << 20;
/// Most chat messages accepted.
pub const MAX_MESSAGES: usize = 100_000;

/// Which endpoint a body was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenAiKind {
    /// `/v1/completions`.
    Completions,
    /// `/v1/chat/completions`.
    ChatCompletions,
}

/// A completions prompt.
#[derive(Clone, Debug, PartialEq)]
pub enum OpenAiPrompt {
    /// Text (tokenized with special tokens added).
    Text(String),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// What routing reads from an OpenAI body.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiRequest {
    /// Completions or chat completions.
    pub kind: OpenAiKind,
    /// `model` (a base model or a LoRA adapter name).
    pub model: String,
    /// Completions: the prompt.
    pub prompt: Option<OpenAiPrompt>,
    /// Chat: `messages` as JSON text (key order kept).
    pub messages: Option<String>,
    /// Chat: `tools` as JSON text.
    pub tools: Option<String>,
    /// Chat: `chat_template_kwargs` as JSON text.
    pub chat_template_kwargs: Option<String>,
    /// Chat: `add_generation_prompt` (default true).
    pub add_generation_prompt: bool,
    /// Chat: `continue_final_message` (default false).
    pub continue_final_message: bool,
    /// Chat: `documents` (RAG documents for the template) as JSON text.
    pub documents: Option<String>,
    /// Chat: `reasoning_effort` (passed to templates that read it; also
    /// sets `enable_thinking` unless `chat_template_kwargs` does).
    pub reasoning_effort: Option<String>,
    /// vLLM's `truncate_prompt_tokens`: keep at most this many prompt tokens
    /// (`-1`: the model's context length, which the router does not know).
    pub truncate_prompt_tokens: Option<i64>,
    /// vLLM's `truncation_side` (`Some(true)`: "left", keep the last
    /// tokens; `Some(false)`: "right"); `None`: the tokenizer's own side.
    pub truncate_left: Option<bool>,
    /// `add_special_tokens`: whether the tokenizer adds its special tokens
    /// (BOS, ...) to the prompt. vLLM's default: true for completions,
    /// false for chat (the template writes them).
    pub add_special_tokens: bool,
    /// vLLM's `cache_salt`.
    pub cache_salt: Option<String>,
    /// Chat: `max_completion_tokens`, else `max_tokens` (`None`: neither,
    /// vLLM then generates up to the context). Completions: `max_tokens`,
    /// [`COMPLETIONS_MAX_TOKENS`] when absent or null, as vLLM reads it.
    pub max_tokens: Option<u64>,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// `user`.
    pub user: Option<String>,
    /// Chat: `kv_transfer_params.prompt_token_ids`, a disaggregated prefill
    /// stage's ids forwarded to decode, which vLLM feeds the engine as they
    /// are instead of rendering the messages (not with `echo`, nor for
    /// messages with media parts: see [`OpenAiRequest::reused_prompt_ids`]).
    pub reused_prompt_ids: Option<Vec<u32>>,
    /// A field the engine honours that changes the prompt and the router
    /// does not render: its ids can only be estimated.
    pub not_rendered: Option<NotRendered>,
}

/// A body field that changes the engine's prompt in a way the router does
/// not render ([`OpenAiRequest::not_rendered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRendered {
    /// Chat: the body's own `chat_template`.
    ChatTemplate,
    /// Completions: `suffix` (fill-in-the-middle).
    Suffix,
    /// Completions: `prompt_embeds`.
    PromptEmbeds,
    /// Chat: more messages × bytes than [`MAX_RENDER_WORK`]: a template
    /// may copy the conversation built so far once per message (DeepSeek
    /// V3's joins the system messages with `+`), so rendering it could hold
    /// a router thread for minutes.
    RenderCost,
}

/// `max_tokens` of a completions body that gives none (or null): vLLM's
/// `CompletionRequest` default.
pub const COMPLETIONS_MAX_TOKENS: u64 = 16;

/// Largest messages × bytes of messages a chat body is rendered for: about
/// 2 GB copied at worst by a template that rebuilds a string per message (a
/// second or so); a thousand messages in a megabyte are a fifth of it.
pub const MAX_RENDER_WORK: u64 = 1 << 32;

macro_rules! not_rendered_reasons {
    ($($v:ident => $why:literal),* $(,)?) => {
        impl NotRendered {
            /// What the engine does with the field.
            pub fn reason(self) -> &'static str {
                match self { $(NotRendered::$v => $why),* }
            }
            /// The decision's note for a body routed on an estimate.
            pub fn note(self) -> &'static str {
                match self { $(NotRendered::$v => concat!($why, "; token ids estimated from the text")),* }
            }
        }
    };
}

not_rendered_reasons! {
    ChatTemplate => "the body's own chat_template: vLLM refuses it unless started with --trust-request-chat-template, and renders with it then",
    Suffix => "a completions suffix: vLLM builds a fill-in-the-middle prompt (or refuses the body), which the router does not render",
    PromptEmbeds => "prompt_embeds: vLLM adds the embeddings as prompts of their own, which the router does not see",
    RenderCost => "a conversation of more messages times bytes than the router renders (MAX_RENDER_WORK): a template may copy it once per message",
}

fn bad(field: &str, why: impl std::fmt::Display) -> ScheduleError {
    ScheduleError::InvalidRequest(format!("body field '{field}': {why}"))
}

fn opt_str(o: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, ScheduleError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(k, "must be a string")),
    }
}

fn opt_bool(o: &serde_json::Map<String, Value>, k: &str, d: bool) -> Result<bool, ScheduleError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(d),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(k, "must be a boolean")),
    }
}

/// A chat body's `kv_transfer_params.prompt_token_ids`, unless `echo` is
/// set (vLLM renders the messages then); malformed ids are refused, as vLLM
/// refuses them.
fn reused_ids(o: &serde_json::Map<String, Value>) -> Result<Option<Vec<u32>>, ScheduleError> {
    const FIELD: &str = "kv_transfer_params.prompt_token_ids";
    let Some(Value::Object(kv)) = o.get("kv_transfer_params") else {
        return Ok(None);
    };
    let ids = match kv.get("prompt_token_ids") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_u64) => a,
        Some(_) => {
            return Err(bad(
                FIELD,
                "must be a non-empty list of non-negative integers",
            ))
        }
    };
    if opt_bool(o, "echo", false)? {
        return Ok(None);
    }
    token_ids(ids, FIELD).map(Some)
}

fn token_ids(a: &[Value], field: &str) -> Result<Vec<u32>, ScheduleError> {
    a.iter()
        .map(|v| {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| bad(field, "token ids must be integers in 0..2^32"))
        })
        .collect()
}

/// The raw JSON text of `o[k]`, with its key order (serde_json's map may
/// reorder keys; the original text is cut out instead). A key given twice
/// is taken at its last occurrence, as the parsed body (and vLLM's
/// `json.loads`) takes it.
fn raw_field(fields: &RawFields<'_>, k: &str) -> Option<String> {
    fields
        .get(k)
        .map(|r| r.get().to_string())
        .filter(|s| s != "null")
}

/// A body's top-level fields as their raw JSON text ([`raw_field`]).
type RawFields<'a> =
    std::collections::HashMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>;

impl OpenAiRequest {
    /// Parses a body sent to `path` (`/v1/completions` or
    /// `/v1/chat/completions`, with or without a prefix before `/v1`).
    /// Malformed bodies get an error naming the field.
    pub fn parse(path: &str, body: &[u8]) -> Result<OpenAiRequest, ScheduleError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(ScheduleError::InvalidRequest(format!(
                "body of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
                body.len()
            )));
        }
        let path = path.split('?').next().unwrap_or("");
        let kind = if path.ends_with("/chat/completions") {
            OpenAiKind::ChatCompletions
        } else if path.ends_with("/completions") {
            OpenAiKind::Completions
        } else {
            return Err(ScheduleError::InvalidRequest(format!(
                "path '{path}' is not /v1/completions or /v1/chat/completions"
            )));
        };
        let text = std::str::from_utf8(body)
            .map_err(|_| ScheduleError::InvalidRequest("body is not UTF-8".into()))?;
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ScheduleError::InvalidRequest(format!("body is not JSON: {e}")))?;
        let o = v
            .as_object()
            .ok_or_else(|| ScheduleError::InvalidRequest("body must be a JSON object".into()))?;
        let model = opt_str(o, "model")?.unwrap_or_default();
        // Chat: a null max_completion_tokens falls back to max_tokens, as in
        // vLLM. Completions have no max_completion_tokens in vLLM (its
        // CompletionRequest reads max_tokens only).
        let set = |k: &'static str| o.get(k).filter(|v| !v.is_null()).map(|v| (k, v));
        let limit = match kind {
            OpenAiKind::ChatCompletions => {
                set("max_completion_tokens").or_else(|| set("max_tokens"))
            }
            OpenAiKind::Completions => set("max_tokens"),
        };
        let max_tokens = match limit {
            // vLLM's completions default (a null too: normalize_null_max_tokens).
            None if kind == OpenAiKind::Completions => Some(COMPLETIONS_MAX_TOKENS),
            None => None,
            Some((field, v)) => Some(
                v.as_u64()
                    .ok_or_else(|| bad(field, "must be a non-negative integer"))?,
            ),
        };
        let include_usage = match o.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(so)) => opt_bool(so, "include_usage", false)?,
            Some(_) => return Err(bad("stream_options", "must be an object")),
        };
        let mut r = OpenAiRequest {
            kind,
            model,
            prompt: None,
            messages: None,
            tools: None,
            chat_template_kwargs: None,
            add_generation_prompt: opt_bool(o, "add_generation_prompt", true)?,
            continue_final_message: opt_bool(o, "continue_final_message", false)?,
            documents: None,
            reasoning_effort: None,
            add_special_tokens: opt_bool(o, "add_special_tokens", kind == OpenAiKind::Completions)?,
            truncate_prompt_tokens: match o.get("truncate_prompt_tokens") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_i64()
                        .filter(|&n| n >= -1)
                        .ok_or_else(|| bad("truncate_prompt_tokens", "must be an integer >= -1"))?,
                ),
            },
            truncate_left: match opt_str(o, "truncation_side")?.as_deref() {
                None => None,
                Some("left") => Some(true),
                Some("right") => Some(false),
                Some(_) => return Err(bad("truncation_side", "must be \"left\" or \"right\"")),
            },
            cache_salt: opt_str(o, "cache_salt")?,
            max_tokens,
            stream: opt_bool(o, "stream", false)?,
            include_usage,
            user: opt_str(o, "user")?,
            reused_prompt_ids: None,
            not_rendered: None,
        };
        match kind {
            OpenAiKind::Completions => {
                r.prompt = Some(match o.get("prompt") {
                    Some(Value::String(s)) => OpenAiPrompt::Text(s.clone()),
                    Some(Value::Array(a)) if a.iter().all(Value::is_number) && !a.is_empty() => {
                        OpenAiPrompt::Tokens(token_ids(a, "prompt")?)
                    }
                    Some(Value::Array(a)) if a.is_empty() => {
                        return Err(bad("prompt", "is an empty list: give text or token ids"))
                    }
                    Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
                        Value::String(s) => OpenAiPrompt::Text(s.clone()),
                        // vLLM refuses an empty prompt.
                        Value::Array(ids) if ids.is_empty() => {
                            return Err(bad("prompt", "is an empty list of token ids"))
                        }
                        Value::Array(ids) => OpenAiPrompt::Tokens(token_ids(ids, "prompt")?),
                        _ => {
                            return Err(bad(
                                "prompt",
                                "must be text, token ids, or a list of one of them",
                            ))
                        }
                    },
                    Some(Value::Array(_)) => {
                        return Err(bad(
                            "prompt",
                            "a batch of several prompts is several requests: route each on its own",
                        ))
                    }
                    None | Some(Value::Null) => return Err(bad("prompt", "is required")),
                    Some(_) => return Err(bad("prompt", "must be text or token ids")),
                });
                if set("suffix").is_some() {
                    r.not_rendered = Some(NotRendered::Suffix);
                } else if set("prompt_embeds").is_some() {
                    r.not_rendered = Some(NotRendered::PromptEmbeds);
                }
            }
            OpenAiKind::ChatCompletions => {
                match o.get("messages") {
                    Some(Value::Array(m)) if m.len() <= MAX_MESSAGES => {}
                    Some(Value::Array(_)) => {
                        return Err(bad(
                            "messages",
                            format!("more than {MAX_MESSAGES} messages"),
                        ))
                    }
                    None | Some(Value::Null) => return Err(bad("messages", "is required")),
                    Some(_) => return Err(bad("messages", "must be a list")),
                }
                // The body's fields as written, parsed once.
                let raw: RawFields<'_> = serde_json::from_str(text)
                    .map_err(|e| ScheduleError::InvalidRequest(format!("body is not JSON: {e}")))?;
                r.messages = raw_field(&raw, "messages");
                let count = o
                    .get("messages")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let bytes = r.messages.as_ref().map_or(0, String::len);
                if (count as u64).saturating_mul(bytes as u64) > MAX_RENDER_WORK {
                    r.not_rendered = Some(NotRendered::RenderCost);
                }
                match o.get("tools") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(t)) if t.is_empty() => {
                        return Err(bad(
                            "tools",
                            "must not be an empty list (vLLM refuses it): give at least one tool or leave the field out",
                        ))
                    }
                    Some(Value::Array(_)) => {}
                    Some(_) => return Err(bad("tools", "must be a list")),
                }
                r.tools = raw_field(&raw, "tools");
                if !matches!(
                    o.get("chat_template_kwargs"),
                    None | Some(Value::Null) | Some(Value::Object(_))
                ) {
                    return Err(bad("chat_template_kwargs", "must be an object"));
                }
                r.chat_template_kwargs = raw_field(&raw, "chat_template_kwargs");
                if !matches!(
                    o.get("documents"),
                    None | Some(Value::Null) | Some(Value::Array(_))
                ) {
                    return Err(bad("documents", "must be a list of objects"));
                }
                r.documents = raw_field(&raw, "documents");
                r.reasoning_effort = opt_str(o, "reasoning_effort")?;
                if opt_str(o, "chat_template")?.is_some() {
                    r.not_rendered = Some(NotRendered::ChatTemplate);
                }
                r.reused_prompt_ids = reused_ids(o)?;
            }
        }
        Ok(r)
    }

    /// The number of prompt tokens to keep, when the body truncates. `-1`
    /// asks vLLM for the model's context length (`max_model_len`), which the
    /// router does not know: it keeps the whole prompt, which is what vLLM
    /// keeps of any prompt that fits the context (one that does not would
    /// be cut to its last `max_model_len` tokens by the engine, and routed
    /// here on its full prefix).
    pub fn truncation_limit(&self) -> Result<Option<usize>, ScheduleError> {
        match self.truncate_prompt_tokens {
            None | Some(-1) => Ok(None),
            Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        }
    }

    /// `ids` truncated as vLLM truncates a prompt's ids
    /// (`_truncation_slice`): at most the limit, from the request's side or,
    /// when it names none, `tokenizer_left`'s.
    pub fn truncate_ids(
        &self,
        mut ids: Vec<u32>,
        tokenizer_left: bool,
    ) -> Result<Vec<u32>, ScheduleError> {
        let Some(max) = self.truncation_limit()? else {
            return Ok(ids);
        };
        if ids.len() > max {
            if self.truncate_left.unwrap_or(tokenizer_left) {
                ids.drain(..ids.len() - max);
            } else {
                ids.truncate(max);
            }
        }
        Ok(ids)
    }

    /// Identities of the chat's multimodal items, in order, once each: the
    /// xxh64 (hex) of an `image_url` / `video_url` part's URL, or of an
    /// `input_audio` part's data followed by its format (llm-d's estimate
    /// tokenizer's identities).
    pub fn multimodal_items(&self) -> Vec<String> {
        let Some(m) = &self.messages else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(m).unwrap_or(Value::Null);
        let mut out: Vec<String> = Vec::new();
        let url = |part: &Value, key: &str| -> Option<String> {
            match part.get(key)? {
                Value::String(u) => Some(u.clone()),
                o => o.get("url")?.as_str().map(str::to_string),
            }
        };
        for msg in v.as_array().into_iter().flatten() {
            let Some(Value::Array(parts)) = msg.get("content") else {
                continue;
            };
            for part in parts {
                let content = match part.get("type").and_then(Value::as_str) {
                    Some("image_url") => url(part, "image_url"),
                    Some("video_url") => url(part, "video_url"),
                    Some("audio_url") => url(part, "audio_url"),
                    Some("input_audio") => part.get("input_audio").map(|a| {
                        let data = a.get("data").and_then(Value::as_str).unwrap_or("");
                        let format = a.get("format").and_then(Value::as_str).unwrap_or("");
                        format!("{data}{format}")
                    }),
                    _ => None,
                };
                if let Some(c) = content {
                    let h = format!("{:x}", xxhash_rust::xxh64::xxh64(c.as_bytes(), 0));
                    if !out.contains(&h) {
                        out.push(h);
                    }
                }
            }
        }
        out
    }

    /// True when a message has a media content part (one of
    /// [`MEDIA_TYPES`], or a part without a type, or with a `uuid`, that
    /// has one of [`MEDIA_KEYS`]), as vLLM parses parts: its tokens are the
    /// engine's processor's.
    pub fn has_media_parts(&self) -> bool {
        let Some(m) = &self.messages else {
            return false;
        };
        let v: Value = serde_json::from_str(m).unwrap_or(Value::Null);
        let media = |p: &Value| match (p.get("type").filter(|t| !t.is_null()), p.get("uuid")) {
            (Some(Value::String(t)), None | Some(Value::Null)) => MEDIA_TYPES.contains(&t.as_str()),
            (Some(_), None | Some(Value::Null)) => false,
            _ => MEDIA_KEYS.iter().any(|k| p.get(*k).is_some()),
        };
        v.as_array()
            .into_iter()
            .flatten()
            .any(|msg| match msg.get("content") {
                Some(Value::Array(parts)) => parts.iter().any(media),
                _ => false,
            })
    }

    /// The ids vLLM feeds the engine as they are, skipping the template: a
    /// chat body's [`OpenAiRequest::reused_prompt_ids`], unless its messages
    /// have media parts (vLLM renders those).
    pub fn reused_prompt_ids(&self) -> Option<&[u32]> {
        match &self.reused_prompt_ids {
            Some(ids) if !self.has_media_parts() => Some(ids),
            _ => None,
        }
    }

    /// Text to estimate tokens from when no tokenizer is set: the prompt,
    /// or the messages' text contents joined by newlines.
    pub fn estimate_text(&self) -> String {
        if let Some(OpenAiPrompt::Text(t)) = &self.prompt {
            return t.clone();
        }
        let Some(m) = &self.messages else {
            return String::new();
        };
        let v: Value = serde_json::from_str(m).unwrap_or(Value::Null);
        let mut out = Vec::new();
        for msg in v.as_array().into_iter().flatten() {
            match msg.get("content") {
                Some(Value::String(s)) => out.push(s.clone()),
                Some(Value::Array(parts)) => out.extend(
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string)),
                ),
                _ => {}
            }
        }
        out.join("\n")
    }
}

impl crate::model::Request {
    /// The request an OpenAI body sent to `path` describes (model, prompt,
    /// `cache_salt`, `user` as the session id), without tokenizing:
    /// completions' token ids, and a chat's forwarded
    /// [`OpenAiRequest::reused_prompt_ids`], are used as they are; prompt
    /// text and chat messages become text, which the pipeline estimates
    /// tokens from. For the engine's exact ids use
    /// [`crate::Scheduler::pick_openai`] with a tokenizer. The caller sets
    /// `id` (and headers).
    pub fn from_openai(path: &str, body: &[u8]) -> Result<crate::model::Request, ScheduleError> {
        let r = OpenAiRequest::parse(path, body)?;
        let prompt = match (&r.prompt, r.reused_prompt_ids()) {
            (_, Some(ids)) => crate::model::Prompt::Tokens(ids.to_vec()),
            (Some(OpenAiPrompt::Tokens(t)), None) => crate::model::Prompt::Tokens(t.clone()),
            _ => crate::model::Prompt::Text(r.estimate_text()),
        };
        let mm_items = r.multimodal_items();
        Ok(crate::model::Request {
            model: r.model.clone(),
            prompt,
            cache_salt: r.cache_salt.clone(),
            session_id: r.user.clone(),
            max_output_tokens: r.max_tokens,
            multimodal: !mm_items.is_empty(),
            mm_items,
            ..Default::default()
        })
    }
}

/// Turns an OpenAI request into the token ids the engine will see.
pub trait PromptTokenizer: Send + Sync {
    /// Completions: the prompt text of `req`, with the tokenizer's special
    /// tokens added when `req.add_special_tokens` (default true), truncated
    /// as `req` asks.
    fn encode_prompt(&self, text: &str, req: &OpenAiRequest) -> Result<Vec<u32>, String>;
    /// Chat completions: the rendered chat, tokenized as vLLM does.
    /// `session` names the conversation (the `x-session-id` header or the
    /// body's `user`), so an implementation may reuse the ids of its
    /// earlier turns; the result must not depend on it.
    fn encode_chat(&self, req: &OpenAiRequest, session: Option<&str>) -> Result<Vec<u32>, String>;
    /// Whether the tokenizer truncates from the left by default (its
    /// `truncation_side`); token-id prompts are truncated on that side when
    /// the request names none. vLLM loads every generative model's tokenizer
    /// with `truncation_side="left"` (over what its files say), so that is
    /// the default.
    fn truncates_left(&self) -> bool {
        true
    }
    /// Why this tokenizer's ids for a request (a chat when `chat`) would
    /// not be the engine's (the engine renders such prompts with something
    /// else): such bodies are routed on an estimate with this note. `None`
    /// (the default) when they are exact.
    fn not_exact(&self, chat: bool) -> Option<&'static str> {
        let _ = chat;
        None
    }
}

/// Keys that make a part multimodal, whatever its `type`.
pub const MEDIA_KEYS: &[&str] = &[
    "image_url",
    "image_pil",
    "image_embeds",
    "audio_embeds",
    "video_embeds",
    "prompt_embeds",
    "audio_url",
    "input_audio",
    "video_url",
];
/// Part types vLLM parses as media (their tokens are the engine's
/// processor's: the tokenizer refuses them, `pick_openai` estimates).
pub const MEDIA_TYPES: &[&str] = &[
    "input_image",
    "image_url",
    "image_embeds",
    "audio_embeds",
    "video_embeds",
    "prompt_embeds",
    "image_pil",
    "audio_url",
    "input_audio",
    "video_url",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A conversation whose rendering could cost minutes (many messages in
    /// many bytes, which a template may copy once per message) is routed on
    /// an estimate, said so; one under the budget is rendered.
    #[test]
    fn a_conversation_past_the_rendering_budget_is_estimated() {
        let body = |n: usize, bytes: usize| {
            let m = format!(
                r#"{{"role": "system", "content": "{}"}}"#,
                "x".repeat(bytes)
            );
            format!(r#"{{"messages": [{}]}}"#, vec![m; n].join(","))
        };
        let parse = |b: String| {
            OpenAiRequest::parse("/v1/chat/completions", b.as_bytes())
                .unwrap()
                .not_rendered
        };
        // 20,000 messages of about 80 bytes: 20,000 x 1.6 MB is past 2^32.
        assert_eq!(parse(body(20_000, 50)), Some(NotRendered::RenderCost));
        // A thousand messages of a kilobyte are rendered.
        assert_eq!(parse(body(1_000, 1_000)), None);
        assert!(NotRendered::RenderCost.note().contains("estimated"));
    }

    /// Fields the engine honours beyond the template: a P/D decode body's
    /// forwarded ids are the engine's prompt (not with `echo`, nor for
    /// media messages; malformed ids refused as vLLM refuses them); a
    /// body's own template, a suffix or prompt embeddings are marked as not
    /// rendered; an empty tools list is refused, as vLLM refuses it.
    #[test]
    fn fields_the_engine_renders_its_own_way() {
        let chat = |extra: &str| {
            OpenAiRequest::parse(
                "/v1/chat/completions",
                format!(r#"{{"messages": [{{"role": "user", "content": "hi"}}]{extra}}}"#)
                    .as_bytes(),
            )
        };
        let r = chat(r#", "kv_transfer_params": {"prompt_token_ids": [5, 6, 7], "x": 1}"#).unwrap();
        assert_eq!(r.reused_prompt_ids(), Some(&[5u32, 6, 7][..]));
        let r = chat(r#", "echo": true, "kv_transfer_params": {"prompt_token_ids": [5]}"#).unwrap();
        assert_eq!(r.reused_prompt_ids(), None);
        let r = OpenAiRequest::parse(
            "/v1/chat/completions",
            br#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}], "kv_transfer_params": {"prompt_token_ids": [5]}}"#,
        )
        .unwrap();
        assert_eq!(r.reused_prompt_ids(), None);
        for bad in [
            r#", "kv_transfer_params": {"prompt_token_ids": []}"#,
            r#", "kv_transfer_params": {"prompt_token_ids": [1, -2]}"#,
            r#", "kv_transfer_params": {"prompt_token_ids": "1 2"}"#,
            r#", "tools": []"#,
        ] {
            assert!(chat(bad).is_err(), "{bad}");
        }
        assert_eq!(
            chat(r#", "chat_template": "{{ 1 }}""#)
                .unwrap()
                .not_rendered,
            Some(NotRendered::ChatTemplate)
        );
        assert_eq!(
            chat(r#", "chat_template": null"#).unwrap().not_rendered,
            None
        );
        let c = |extra: &str| {
            OpenAiRequest::parse(
                "/v1/completions",
                format!(r#"{{"prompt": "a"{extra}}}"#).as_bytes(),
            )
            .unwrap()
            .not_rendered
        };
        assert_eq!(c(r#", "suffix": "b""#), Some(NotRendered::Suffix));
        assert_eq!(
            c(r#", "prompt_embeds": "AAAA""#),
            Some(NotRendered::PromptEmbeds)
        );
        assert_eq!(c(r#", "suffix": null"#), None);
        assert!(NotRendered::Suffix
            .note()
            .ends_with("token ids estimated from the text"));
    }

    #[test]
    fn parses_both_endpoints_and_names_bad_fields() {
        let r = OpenAiRequest::parse("/v1/completions", br#"{"model": "m", "prompt": [1, 2, 3], "max_tokens": 7, "stream": true, "stream_options": {"include_usage": true}}"#).unwrap();
        assert_eq!(r.prompt, Some(OpenAiPrompt::Tokens(vec![1, 2, 3])));
        assert_eq!(
            (r.max_tokens, r.stream, r.include_usage),
            (Some(7), true, true)
        );
        let c = OpenAiRequest::parse(
            "/gw/v1/chat/completions",
            br#"{"model": "m", "messages": [{"role": "user", "content": "hi", "name": "x"}], "cache_salt": "s", "chat_template_kwargs": {"b": 1, "a": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            c.messages.as_deref(),
            Some(r#"[{"role": "user", "content": "hi", "name": "x"}]"#)
        );
        assert_eq!(
            c.chat_template_kwargs.as_deref(),
            Some(r#"{"b": 1, "a": 2}"#)
        );
        assert_eq!(c.cache_salt.as_deref(), Some("s"));
        assert_eq!(c.estimate_text(), "hi");
        let n = OpenAiRequest::parse(
            "/v1/completions",
            br#"{"prompt": "x", "max_completion_tokens": null, "max_tokens": 9}"#,
        )
        .unwrap();
        assert_eq!(n.max_tokens, Some(9));
        // Completions read max_tokens only, as vLLM's CompletionRequest;
        // chats prefer max_completion_tokens; a bad value names its field.
        let limit = |path: &str, body: &str| OpenAiRequest::parse(path, body.as_bytes());
        let both = r#""max_completion_tokens": 5, "max_tokens": 100"#;
        let cmpl =
            |extra: &str| limit("/v1/completions", &format!(r#"{{"prompt": "x", {extra}}}"#));
        let chat = |extra: &str| {
            limit(
                "/v1/chat/completions",
                &format!(r#"{{"messages": [{{"role": "user", "content": "x"}}], {extra}}}"#),
            )
        };
        assert_eq!(cmpl(both).unwrap().max_tokens, Some(100));
        assert_eq!(chat(both).unwrap().max_tokens, Some(5));
        assert_eq!(
            cmpl(r#""max_completion_tokens": "a""#).unwrap().max_tokens,
            Some(COMPLETIONS_MAX_TOKENS)
        );
        assert_eq!(cmpl(r#""max_tokens": null"#).unwrap().max_tokens, Some(16));
        assert_eq!(chat(r#""max_tokens": null"#).unwrap().max_tokens, None);
        let e = chat(r#""max_completion_tokens": "a""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'max_completion_tokens'"), "{e}");
        // A key given twice counts at its last occurrence, as vLLM's
        // json.loads takes it (not refused as a duplicate field).
        let twice = chat(r#""tools": [{"a": 1}], "tools": [{"b": 2}]"#).unwrap();
        assert_eq!(twice.tools.as_deref(), Some(r#"[{"b": 2}]"#));
        // Empty prompts are refused by what they are.
        for (body, why) in [
            (r#""prompt": []"#, "empty list"),
            (r#""prompt": [[]]"#, "empty list of token ids"),
        ] {
            let e = limit("/v1/completions", &format!("{{{body}}}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{body}: {e}");
        }
        // Truncation: vLLM's _truncation_slice.
        let t = OpenAiRequest::parse(
            "/v1/completions",
            br#"{"prompt": [1, 2, 3, 4, 5], "truncate_prompt_tokens": 3, "truncation_side": "left"}"#,
        )
        .unwrap();
        assert_eq!(
            t.truncate_ids(vec![1, 2, 3, 4, 5], false).unwrap(),
            [3, 4, 5]
        );
        let t = OpenAiRequest::parse(
            "/v1/completions",
            br#"{"prompt": "x", "truncate_prompt_tokens": 2}"#,
        )
        .unwrap();
        assert_eq!(t.truncate_ids(vec![1, 2, 3], false).unwrap(), [1, 2]);
        assert_eq!(t.truncate_ids(vec![1, 2, 3], true).unwrap(), [2, 3]);
        let t = OpenAiRequest::parse(
            "/v1/completions",
            br#"{"prompt": "x", "truncate_prompt_tokens": -1}"#,
        )
        .unwrap();
        // The model's context length: the whole prompt (see truncation_limit).
        assert_eq!(t.truncate_ids(vec![1, 2, 3], false).unwrap(), [1, 2, 3]);
        // vLLM's add_special_tokens defaults: completions true, chat false.
        assert!(r.add_special_tokens && !c.add_special_tokens);
        let d = OpenAiRequest::parse(
            "/v1/chat/completions",
            br#"{"messages": [], "documents": [{"title": "t", "text": "x"}], "reasoning_effort": "low", "add_special_tokens": true}"#,
        )
        .unwrap();
        assert_eq!(
            (
                d.documents.as_deref(),
                d.reasoning_effort.as_deref(),
                d.add_special_tokens
            ),
            (Some(r#"[{"title": "t", "text": "x"}]"#), Some("low"), true)
        );
        let req = crate::model::Request::from_openai("/v1/chat/completions", br#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}], "cache_salt": "s", "user": "u1"}"#).unwrap();
        assert_eq!(
            (
                req.model.as_str(),
                req.cache_salt.as_deref(),
                req.session_id.as_deref()
            ),
            ("m", Some("s"), Some("u1"))
        );
        assert_eq!(req.prompt, crate::model::Prompt::Text("a".into()));
        let req = crate::model::Request::from_openai("/v1/completions", br#"{"prompt": [[5, 6]]}"#)
            .unwrap();
        assert_eq!(req.prompt, crate::model::Prompt::Tokens(vec![5, 6]));
        for (path, body, field) in [
            ("/v1/completions", &br#"{"prompt": 5}"#[..], "prompt"),
            ("/v1/completions", br#"{"prompt": ["a", "b"]}"#, "batch"),
            ("/v1/completions", br#"{"prompt": [-1]}"#, "token ids"),
            ("/v1/chat/completions", br#"{"messages": "x"}"#, "messages"),
            (
                "/v1/chat/completions",
                br#"{"messages": [], "documents": {}}"#,
                "documents",
            ),
            (
                "/v1/chat/completions",
                br#"{"messages": [], "reasoning_effort": 1}"#,
                "reasoning_effort",
            ),
            (
                "/v1/chat/completions",
                br#"{"messages": [], "tools": {}}"#,
                "tools",
            ),
            (
                "/v1/chat/completions",
                br#"{"messages": [], "max_tokens": "x"}"#,
                "max_tokens",
            ),
            ("/v1/embeddings", br#"{}"#, "path"),
            ("/v1/completions", br#"[1]"#, "object"),
        ] {
            let e = OpenAiRequest::parse(path, body).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
