//! A model directory's tokenizer and chat template, applied as vLLM
//! applies them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Value, ValueKind};
use serde_json::Value as Json;

use crate::chat::{
    detect_content_format, field, map_pairs, normalize_messages, normalize_tools, ContentFormat,
};
use crate::pyfmt::py_space;
use crate::template::ChatTemplate;
use crate::TokenizeError;

/// Options of a chat rendering (the request fields vLLM passes on).
#[derive(Clone, Debug)]
pub struct ChatOptions {
    /// End with the assistant's turn header (the request's value wins over
    /// `chat_template_kwargs`). Default true.
    pub add_generation_prompt: bool,
    /// Leave the final message open (render stops after its text).
    pub continue_final_message: bool,
    /// OpenAI `tools`, as JSON text.
    pub tools: Option<String>,
    /// `chat_template_kwargs` (a JSON object); only names the template
    /// reads (or transformers' own parameters) are passed, `None` and
    /// `"auto"` values are dropped.
    pub chat_template_kwargs: Option<String>,
    /// `documents` (a JSON list of objects), for templates that cite them.
    pub documents: Option<String>,
    /// `reasoning_effort`: passed to templates that read it, and sets
    /// `enable_thinking` (false for `"none"`) unless the kwargs set it.
    pub reasoning_effort: Option<String>,
    /// Tokenize the rendered chat with the tokenizer's special tokens
    /// (the request's `add_special_tokens`; vLLM's default for chat is
    /// false: the template writes them).
    pub add_special_tokens: bool,
    /// vLLM's prompt truncation: at most this many tokens are kept.
    pub truncate_prompt_tokens: Option<usize>,
    /// The side truncation cuts from (`Some(true)`: left, keep the last
    /// tokens); `None`: the tokenizer's own `truncation_side`.
    pub truncate_left: Option<bool>,
}

impl ChatOptions {
    /// The options a chat request's body gives (`truncate_prompt_tokens: -1`,
    /// the model's context length, keeps the whole prompt:
    /// [`llmd_sched::OpenAiRequest::truncation_limit`]).
    pub fn from_request(req: &llmd_sched::OpenAiRequest) -> Result<ChatOptions, TokenizeError> {
        let truncate_prompt_tokens = req
            .truncation_limit()
            .map_err(|e| TokenizeError::Request(e.to_string()))?;
        Ok(ChatOptions {
            truncate_prompt_tokens,
            truncate_left: req.truncate_left,
            add_generation_prompt: req.add_generation_prompt,
            continue_final_message: req.continue_final_message,
            tools: req.tools.clone(),
            chat_template_kwargs: req.chat_template_kwargs.clone(),
            documents: req.documents.clone(),
            reasoning_effort: req.reasoning_effort.clone(),
            add_special_tokens: req.add_special_tokens,
        })
    }
}

impl Default for ChatOptions {
    fn default() -> Self {
        ChatOptions {
            add_generation_prompt: true,
            continue_final_message: false,
            tools: None,
            chat_template_kwargs: None,
            documents: None,
            reasoning_effort: None,
            add_special_tokens: false,
            truncate_prompt_tokens: None,
            truncate_left: None,
        }
    }
}

/// The keyword arguments transformers' `apply_chat_template` takes itself
/// (passed even when the template does not name them).
const HF_PARAMS: &[&str] = &[
    "tools",
    "documents",
    "add_generation_prompt",
    "continue_final_message",
];
/// Special-token attributes transformers passes to every template.
const SPECIALS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// Exact tokenization and chat rendering from a local model directory.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    template: Option<ChatTemplate>,
    format: ContentFormat,
    /// The template for requests with tools, where it is not `template`.
    tool_template: WithTools,
    /// The template's token variables (name, text).
    specials: Vec<(String, String)>,
    cuts: Vec<String>,
    sessions: Arc<crate::session::SessionCache>,
    source: PathBuf,
    /// The engine's `--default-chat-template-kwargs`, under everything a
    /// request gives.
    default_kwargs: Vec<(String, Value)>,
    /// Where vLLM does not use these files the way this tokenizer does.
    engine_renders: Option<EngineRenders>,
}

/// Which template renders a request with tools (vLLM's
/// `resolve_chat_template`: the processor's template serves only requests
/// without tools; with tools, transformers' `get_chat_template` picks the
/// tokenizer's `tool_use` template, else its default one).
#[derive(Clone)]
enum WithTools {
    /// The template of requests without tools.
    Same,
    /// A template of its own.
    Own(Box<ChatTemplate>, ContentFormat),
    /// None: such a request cannot be rendered.
    Missing,
}

/// A model whose prompts vLLM builds with something other than the
/// directory's Hugging Face files ([`Tokenizer::engine_renders`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineRenders {
    /// `model_type: gpt_oss`: vLLM renders chats with Harmony, not the chat
    /// template (completions prompts are tokenized as here).
    HarmonyChat,
    /// `tekken.json` or `tokenizer.model.v*` in the directory: vLLM's
    /// `tokenizer_mode auto` tokenizes with mistral-common, chats and
    /// prompts alike.
    MistralCommon,
}

impl EngineRenders {
    /// Why the ids of a request (a chat when `chat`) would not be the
    /// engine's; `None` when they are.
    pub fn reason(self, chat: bool) -> Option<&'static str> {
        match self {
            EngineRenders::HarmonyChat if chat => Some(
                "a gpt-oss model: vLLM renders its chats with Harmony, not the chat template; token ids estimated from the text",
            ),
            EngineRenders::HarmonyChat => None,
            EngineRenders::MistralCommon => Some(
                "a Mistral tokenizer directory (tekken.json or tokenizer.model.v*): vLLM's tokenizer_mode auto tokenizes with mistral-common, not these Hugging Face files; token ids estimated from the text",
            ),
        }
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("chat_template", &self.template.is_some())
            .finish()
    }
}

fn read(path: &Path) -> Result<Option<String>, TokenizeError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TokenizeError::File(
            path.display().to_string(),
            e.to_string(),
        )),
    }
}

fn json_file(path: &Path) -> Result<Option<Json>, TokenizeError> {
    read(path)?
        .map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| TokenizeError::File(path.display().to_string(), e.to_string()))
        })
        .transpose()
}

/// A special token in `tokenizer_config.json`: a string or an AddedToken
/// object with `content`.
fn token_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// Model types whose tokenizer transformers 5.20 maps to a generic backend
/// (`TokenizersBackend`, `PythonBackend`, `PreTrainedTokenizerFast`,
/// `MistralCommonBackend` in `TOKENIZER_MAPPING_NAMES`): `AutoTokenizer`
/// then loads `tokenizer.json` as it is, whatever class the config names.
/// Checked against the installed transformers by the Python tests.
const TOKENIZER_JSON_MODEL_TYPES: &[&str] = &[
    "EvollaModel",
    "arctic",
    "aria",
    "beam",
    "bigbird_pegasus",
    "camembertv2-base",
    "canary",
    "chameleon",
    "chatlm",
    "cohere_asr",
    "deepseek_ocr",
    "deepseek_ocr2",
    "deepseek_v2",
    "deepseek_v3",
    "deepseek_v32",
    "deepseek_v4",
    "deepseek_vl",
    "deepseek_vl_hybrid",
    "deepseek_vl_v2",
    "ernie4_5",
    "ernie4_5_moe",
    "flex_olmo",
    "fuyu",
    "glm",
    "glm4",
    "glm4_moe",
    "glm4_moe_lite",
    "glm4v",
    "glm4v_moe",
    "glm_image",
    "glmasr",
    "got_ocr2",
    "gpt_bigcode",
    "granite",
    "granitemoe",
    "granitemoehybrid",
    "granitemoeshared",
    "h2ovl_chat",
    "hyperclovax",
    "hyperclovax_vlm",
    "internlm2",
    "jamba",
    "janus",
    "kimi_k25",
    "kimi_linear",
    "kosmos-2",
    "llava",
    "llava_next",
    "mimo_v2_flash",
    "minicpm3",
    "minicpmv",
    "minicpmv4_6",
    "minicpmv4_7",
    "minimax_m2",
    "ministral",
    "ministral3",
    "mistral",
    "mistral3",
    "mixtral",
    "modernbert",
    "modernbert-decoder",
    "molmo",
    "molmo2",
    "nemotron",
    "nvfp4",
    "nystromformer",
    "olmo2",
    "olmo3",
    "olmo_hybrid",
    "opencua",
    "openvla",
    "paddleocr_vl",
    "pegasus_x",
    "persimmon",
    "phi3",
    "phi3_v",
    "phimoe",
    "pix2struct",
    "pixtral",
    "smolvlm",
    "stablelm",
    "step3_vl",
    "step3p5",
    "umt5",
    "unlimited_ocr",
    "vipllava",
    "voxtral",
    "voxtral_realtime",
    "xlm-roberta-xl",
];

/// The tokenizer class transformers 5 would build with a pipeline of its
/// own instead of `tokenizer.json`'s, when it is one this crate knows to
/// differ (`LlamaTokenizer`, `CodeLlamaTokenizer`: a Metaspace
/// pre-tokenizer that prepends `▁` to the first piece only, no
/// normalizer). `AutoTokenizer` takes the named class unless the model type
/// maps to a generic backend ([`TOKENIZER_JSON_MODEL_TYPES`]) or the
/// directory brings its own code (`auto_map`).
fn rebuilt_class(class: &str, model_type: &str, cfg: &Json) -> Option<&'static str> {
    let base = class.strip_suffix("Fast").unwrap_or(class);
    let known = ["LlamaTokenizer", "CodeLlamaTokenizer"]
        .into_iter()
        .find(|k| *k == base)?;
    if TOKENIZER_JSON_MODEL_TYPES.contains(&model_type) || cfg.get("auto_map").is_some() {
        return None;
    }
    Some(known)
}

/// The directory's chat templates as vLLM 0.33.0 resolves them with
/// transformers 5: the template of requests without tools, and that of
/// requests with tools (`None`: none).
///
/// The tokenizer's templates (`AutoTokenizer`): `chat_template.jinja` and
/// `additional_chat_templates/*.jinja` when either exists (the config's
/// are then ignored), else `tokenizer_config.json`'s `chat_template` (a
/// string, or named templates). With tools, a `tool_use` template wins over
/// the default one.
///
/// The processor's template ([`processor_template`]), which vLLM tries
/// first for requests without tools, replaces the tokenizer's default for
/// them; without a processor, `chat_template.json` is not read, as
/// transformers' tokenizer does not read it.
fn directory_templates(
    dir: &Path,
    cfg: &Json,
) -> Result<(Option<String>, Option<String>), TokenizeError> {
    let extra_dir = dir.join("additional_chat_templates");
    let has_extra = std::fs::read_dir(&extra_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".jinja"))
        })
        .unwrap_or(false);
    let jinja = read(&dir.join("chat_template.jinja"))?;
    let (default, tool_use) = if jinja.is_some() || has_extra {
        (jinja, read(&extra_dir.join("tool_use.jinja"))?)
    } else {
        let named = |name: &str| match cfg.get("chat_template") {
            Some(Json::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some(name))
                .and_then(|t| t.get("template").and_then(Json::as_str))
                .map(str::to_string),
            _ => None,
        };
        match cfg.get("chat_template") {
            Some(Json::String(s)) => (Some(s.clone()), None),
            Some(Json::Array(_)) => (named("default"), named("tool_use")),
            _ => (None, None),
        }
    };
    let with_tools = tool_use.or_else(|| default.clone());
    Ok((
        processor_template(dir, cfg, has_extra).or(default),
        with_tools,
    ))
}

/// The template of the directory's processor, when transformers'
/// `AutoProcessor` loads one: a processor file (`processor_config.json` or
/// `preprocessor_config.json`) and a `processor_class` (in one of those,
/// `tokenizer_config.json` or `config.json`). Its template is the
/// `chat_template` of `processor_config.json`, else the legacy
/// `chat_template.json` (read before `chat_template.jinja`, which is the
/// tokenizer's anyway).
///
/// A processor file that does not parse, or `chat_template.json` beside
/// `additional_chat_templates/`, fails the processor, and vLLM then uses
/// the tokenizer's template: `None`, not an error. With
/// `additional_chat_templates/` and no other template of its own, a
/// processor's templates are a set, which vLLM 0.33 cannot render requests
/// without tools with; not reproduced (`None`: the tokenizer's default). A
/// processor found only by its model type (transformers'
/// `PROCESSOR_MAPPING`, without any `processor_class`) is not detected.
fn processor_template(dir: &Path, cfg: &Json, has_extra: bool) -> Option<String> {
    // Absent: `Ok(None)`; present and not JSON: `Err`, which fails the
    // processor.
    let load = |name: &str| -> Result<Option<Json>, ()> {
        match std::fs::read_to_string(dir.join(name)) {
            Err(_) => Ok(None),
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|_| ()),
        }
    };
    let processor_cfg = load("processor_config.json").ok()?;
    let preprocessor_cfg = load("preprocessor_config.json").ok()?;
    if processor_cfg.is_none() && preprocessor_cfg.is_none() {
        return None;
    }
    let legacy = load("chat_template.json").ok()?;
    if legacy.is_some() && has_extra {
        return None;
    }
    let model_cfg = load("config.json").ok().flatten();
    let names_class = |j: Option<&Json>| {
        j.and_then(|j| j.get("processor_class"))
            .is_some_and(Json::is_string)
    };
    let has_class = names_class(processor_cfg.as_ref())
        || names_class(preprocessor_cfg.as_ref())
        || names_class(Some(cfg))
        || names_class(model_cfg.as_ref());
    if !has_class {
        return None;
    }
    let template = |j: Option<Json>| {
        j.and_then(|j| {
            j.get("chat_template")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
    };
    template(processor_cfg).or_else(|| template(legacy))
}

impl Tokenizer {
    /// Loads `dir`: `tokenizer.json` (required), `tokenizer_config.json`
    /// (special tokens, `chat_template`), `chat_template.jinja` and
    /// `additional_chat_templates/` (which win over the config's
    /// templates, as in transformers), and a processor's legacy
    /// `chat_template.json`, which vLLM renders requests without tools
    /// with. Nothing is downloaded.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Tokenizer, TokenizeError> {
        let dir = dir.as_ref();
        let tj = dir.join("tokenizer.json");
        let text = read(&tj)?.ok_or_else(|| {
            TokenizeError::File(
                tj.display().to_string(),
                "not found (a tokenizer.json is required)".into(),
            )
        })?;
        let cfg_path = dir.join("tokenizer_config.json");
        let mut cfg = json_file(&cfg_path)?.unwrap_or(Json::Null);
        // transformers' legacy layout: without `added_tokens_decoder` in
        // the config, `special_tokens_map.json` is read too and its special
        // tokens win over the config's.
        if cfg.get("added_tokens_decoder").is_none() {
            if let Some(Json::Object(map)) = json_file(&dir.join("special_tokens_map.json"))? {
                if !cfg.is_object() {
                    cfg = Json::Object(serde_json::Map::new());
                }
                if let Json::Object(c) = &mut cfg {
                    for (key, v) in map {
                        if SPECIALS.contains(&key.as_str()) || key == "additional_special_tokens" {
                            c.insert(key, v);
                        }
                    }
                }
            }
        }
        let model_cfg = json_file(&dir.join("config.json"))?.unwrap_or(Json::Null);
        // transformers reads the class from tokenizer_config.json, else
        // from config.json.
        let class = cfg
            .get("tokenizer_class")
            .and_then(Json::as_str)
            .or_else(|| model_cfg.get("tokenizer_class").and_then(Json::as_str))
            .unwrap_or("");
        let model_type = model_cfg
            .get("model_type")
            .and_then(Json::as_str)
            .unwrap_or("");
        let mistral = std::fs::read_dir(dir)
            .map(|entries| {
                entries.filter_map(Result::ok).any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name == "tekken.json" || name.starts_with("tokenizer.model.v")
                })
            })
            .unwrap_or(false);
        let engine_renders = if mistral {
            Some(EngineRenders::MistralCommon)
        } else if model_type == "gpt_oss" {
            Some(EngineRenders::HarmonyChat)
        } else {
            None
        };
        if let Some(rebuilt) = rebuilt_class(class, model_type, &cfg) {
            return Err(TokenizeError::File(
                cfg_path.display().to_string(),
                format!("tokenizer_class {rebuilt} with model_type '{model_type}': transformers rebuilds this tokenizer's pipeline (its pre-tokenizer and normalizer) instead of using tokenizer.json, which is not reproduced; refusing rather than tokenizing differently"),
            ));
        }
        let (template, with_tools) = directory_templates(dir, &cfg)?;
        let mut t =
            Tokenizer::from_parts(&text, &cfg, template.as_deref()).map_err(|e| match e {
                TokenizeError::File(_, why) => TokenizeError::File(tj.display().to_string(), why),
                other => other,
            })?;
        t.source = dir.to_path_buf();
        t.engine_renders = engine_renders;
        t.tool_template = match with_tools {
            Some(src) if Some(&src) == template.as_ref() => WithTools::Same,
            Some(src) => {
                let tpl =
                    ChatTemplate::new(&src).map_err(|e| TokenizeError::Template(e.to_string()))?;
                let format = detect_content_format(tpl.source());
                WithTools::Own(Box::new(tpl), format)
            }
            None if template.is_none() => WithTools::Same,
            None => WithTools::Missing,
        };
        Ok(t)
    }

    /// Builds from the contents of `tokenizer.json`, a parsed
    /// `tokenizer_config.json` (`Null` when none) and a chat template.
    pub fn from_parts(
        tokenizer_json: &str,
        config: &Json,
        chat_template: Option<&str>,
    ) -> Result<Tokenizer, TokenizeError> {
        let file_err =
            |e: tokenizers::Error| TokenizeError::File("tokenizer.json".into(), e.to_string());
        let mut inner =
            tokenizers::Tokenizer::from_bytes(tokenizer_json.as_bytes()).map_err(file_err)?;
        // A `truncation` or `padding` section of the file is not applied:
        // transformers turns both off for a call that does not ask for them
        // (vLLM's encode does not), so the ids are the whole text's, unpadded.
        inner.with_truncation(None).map_err(file_err)?;
        inner.with_padding(None);
        let template = chat_template
            .map(|s| ChatTemplate::new(s).map_err(|e| TokenizeError::Template(e.to_string())))
            .transpose()?;
        let format = template
            .as_ref()
            .map_or(ContentFormat::String, |t| detect_content_format(t.source()));
        // The template's token variables, as transformers 5 gives them
        // (`special_tokens_map`): the named special tokens, then the
        // model-specific ones (any other `*_token` key with a string value,
        // and a dict-valued `extra_special_tokens`'s strings; an
        // `{"content": ...}` object there is not taken). The list of
        // additional special tokens is not among them.
        let mut specials: Vec<(String, String)> = SPECIALS
            .iter()
            .filter_map(|k| {
                config
                    .get(*k)
                    .and_then(token_text)
                    .map(|v| (k.to_string(), v))
            })
            .collect();
        if let Json::Object(c) = config {
            let model_specific = c
                .iter()
                .filter(|(k, _)| k.ends_with("_token") && !SPECIALS.contains(&k.as_str()))
                .chain(
                    c.get("extra_special_tokens")
                        .and_then(Json::as_object)
                        .into_iter()
                        .flatten(),
                );
            for (k, v) in model_specific {
                if let Json::String(text) = v {
                    specials.retain(|(n, _)| n != k);
                    specials.push((k.clone(), text.clone()));
                }
            }
        }
        let cuts = crate::session::cut_tokens(&inner);
        Ok(Tokenizer {
            inner,
            cuts,
            sessions: Arc::default(),
            template,
            format,
            tool_template: WithTools::Same,
            specials,
            source: PathBuf::new(),
            engine_renders: None,
            default_kwargs: Vec::new(),
        })
    }

    /// [`Tokenizer::from_dir`] rendering as the engine was started:
    /// `chat_template` as [`Tokenizer::with_chat_template`] takes it,
    /// `default_kwargs_json` a JSON object as
    /// [`Tokenizer::with_default_chat_template_kwargs`] takes it (`None`:
    /// the directory's template, no defaults). The Python, C and Go
    /// bindings' constructor.
    pub fn from_dir_engine(
        dir: impl AsRef<Path>,
        chat_template: Option<&str>,
        default_kwargs_json: Option<&str>,
    ) -> Result<Tokenizer, TokenizeError> {
        let mut t = Tokenizer::from_dir(dir)?;
        if let Some(c) = chat_template {
            t = t.with_chat_template(c)?;
        }
        if let Some(k) = default_kwargs_json {
            let map: serde_json::Map<String, Json> = serde_json::from_str(k).map_err(|e| {
                TokenizeError::Request(format!(
                    "default chat template kwargs must be a JSON object: {e}"
                ))
            })?;
            t = t.with_default_chat_template_kwargs(&map)?;
        }
        Ok(t)
    }

    /// Renders with the template the engine was started with (vLLM's
    /// `--chat-template`, read as vLLM reads the flag: a file's contents
    /// when `value` names one, else `value` itself when it has `{`, `}` or
    /// a line break) instead of the model directory's, for every request
    /// (a named `tool_use` template is then not used, as vLLM uses no
    /// other).
    pub fn with_chat_template(mut self, value: &str) -> Result<Tokenizer, TokenizeError> {
        let source =
            engine_template(value).map_err(|why| TokenizeError::File(value.to_string(), why))?;
        let tpl = ChatTemplate::new(&source).map_err(|e| TokenizeError::Template(e.to_string()))?;
        self.format = detect_content_format(tpl.source());
        self.template = Some(tpl);
        self.tool_template = WithTools::Same;
        self.sessions = Arc::default();
        Ok(self)
    }

    /// Renders with `kwargs` (vLLM's `--default-chat-template-kwargs`, a
    /// JSON object) under every request's own: its `tools`,
    /// `chat_template_kwargs` and fields override them. `tokenize` is
    /// dropped (vLLM passes its own over it); the other names vLLM passes
    /// itself (`chat_template`, `messages`, `conversation`) are refused.
    pub fn with_default_chat_template_kwargs(
        mut self,
        kwargs: &serde_json::Map<String, Json>,
    ) -> Result<Tokenizer, TokenizeError> {
        let mut out = Vec::with_capacity(kwargs.len());
        for (k, v) in kwargs.iter().filter(|(k, _)| *k != "tokenize") {
            if matches!(k.as_str(), "chat_template" | "messages" | "conversation") {
                return Err(TokenizeError::Request(format!(
                    "default chat template kwargs: '{k}' is passed by vLLM itself"
                )));
            }
            out.push((k.clone(), Value::from_serialize(v)));
        }
        self.default_kwargs = out;
        self.sessions = Arc::default();
        Ok(self)
    }

    /// Token ids of `text` (`/v1/completions` uses `add_special_tokens =
    /// true`; a rendered chat uses false).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizeError> {
        self.inner
            .encode_fast(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Tokenize(e.to_string()))
    }

    /// `text`'s ids as vLLM's renderer tokenizes a prompt: special tokens
    /// added when asked, at most `max` ids kept (`None`: all). Truncation
    /// follows vLLM 0.33.0 (`TokenizeParams`): with a side given, the whole
    /// text is tokenized and cut on that side; without one, the tokenizer
    /// truncates as HF's does (the text's ids cut on the tokenizer's
    /// `truncation_side` to leave room for the special tokens), then the
    /// result is cut to `max`.
    pub fn encode_truncated(
        &self,
        text: &str,
        add_special_tokens: bool,
        max: Option<usize>,
        left: Option<bool>,
    ) -> Result<Vec<u32>, TokenizeError> {
        let Some(max) = max else {
            return self.encode(text, add_special_tokens);
        };
        let err = |e: tokenizers::Error| TokenizeError::Tokenize(e.to_string());
        let mut ids = match left {
            Some(_) => self.encode(text, add_special_tokens)?,
            None => {
                use tokenizers::PostProcessor;
                let added = match (add_special_tokens, self.inner.get_post_processor()) {
                    (true, Some(p)) => p.added_tokens(false),
                    _ => 0,
                };
                let enc = self.inner.encode_fast(text, false).map_err(err)?;
                let enc = keep(enc, max.saturating_sub(added), self.truncates_left());
                self.inner
                    .post_process(enc, None, add_special_tokens)
                    .map_err(err)?
                    .get_ids()
                    .to_vec()
            }
        };
        if ids.len() > max {
            if left.unwrap_or(self.truncates_left()) {
                ids.drain(..ids.len() - max);
            } else {
                ids.truncate(max);
            }
        }
        Ok(ids)
    }

    /// How vLLM builds this model's prompts otherwise than from these
    /// files, when it does (detected from the directory).
    pub fn engine_renders(&self) -> Option<EngineRenders> {
        self.engine_renders
    }

    /// Why a request's ids (a chat's when `chat`) would not be the engine's:
    /// see [`EngineRenders::reason`].
    pub fn not_exact(&self, chat: bool) -> Option<&'static str> {
        self.engine_renders.and_then(|e| e.reason(chat))
    }

    /// Whether truncation without a side given keeps the last tokens:
    /// always, as vLLM loads a generative model's tokenizer
    /// (`truncation_side="left"` over the files' setting).
    pub fn truncates_left(&self) -> bool {
        true
    }

    /// The chat template, if the directory has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.template.as_ref().map(ChatTemplate::source)
    }

    /// How the template reads message content.
    pub fn content_format(&self) -> ContentFormat {
        self.format
    }

    /// Renders `messages` (an OpenAI `messages` array as JSON text) to the
    /// prompt string vLLM's chat completions build.
    pub fn render_chat(&self, messages: &str, opts: &ChatOptions) -> Result<String, TokenizeError> {
        let parse = |text: &str, field: &str| {
            serde_json::from_str::<Value>(text)
                .map_err(|e| TokenizeError::Request(format!("{field}: {e}")))
        };
        let opt = |text: &Option<String>, field: &str| {
            text.as_deref().map(|t| parse(t, field)).transpose()
        };
        let msgs = parse(messages, "messages")?;
        let tools = opt(&opts.tools, "tools")?;
        let kwargs = opt(&opts.chat_template_kwargs, "chat_template_kwargs")?;
        let documents = opt(&opts.documents, "documents")?;
        self.render_values(
            &msgs,
            tools.as_ref(),
            kwargs.as_ref(),
            documents.as_ref(),
            opts,
        )
    }

    /// As [`Tokenizer::render_chat`], from template values.
    ///
    /// The keyword arguments merge as vLLM 0.33.0 merges them
    /// (`ChatCompletionRequest.build_chat_params`, `ChatParams.with_defaults`,
    /// `OnlineRenderer.preprocess_chat`): the engine's default kwargs
    /// ([`Tokenizer::with_default_chat_template_kwargs`]) first, the
    /// request's `tools` over them, then `chat_template_kwargs`, then the
    /// request's own fields
    /// (`add_generation_prompt`, `continue_final_message`, `documents`,
    /// `reasoning_effort`); a `None` or `"auto"` value never overrides.
    pub fn render_values(
        &self,
        messages: &Value,
        tools: Option<&Value>,
        kwargs: Option<&Value>,
        documents: Option<&Value>,
        opts: &ChatOptions,
    ) -> Result<String, TokenizeError> {
        // transformers' `get_chat_template`: with tools, a named `tool_use`
        // template wins, and vLLM skips the processor's template. The tools
        // are the merged keyword arguments' (below): the request's kwargs
        // unless unset (None or "auto"), else the request's own, else the
        // engine's defaults as given.
        let kw_tools = kwargs
            .filter(|k| k.kind() == ValueKind::Map)
            .and_then(|k| k.get_item(&Value::from("tools")).ok())
            .is_some_and(|t| !t.is_undefined() && !t.is_none() && t.as_str() != Some("auto"));
        let default_tools = self
            .default_kwargs
            .iter()
            .any(|(k, v)| k == "tools" && !v.is_none());
        let with_tools = tools.is_some() || kw_tools || default_tools;
        let (tpl, format) = match &self.tool_template {
            WithTools::Own(t, f) if with_tools => (&**t, *f),
            WithTools::Missing if with_tools => {
                return Err(TokenizeError::Template(format!(
                    "{} has no chat template for requests with tools (its chat_template.json is the processor's, which vLLM uses only without tools; the tokenizer has none in chat_template.jinja or tokenizer_config.json)",
                    self.source.display()
                )))
            }
            _ => (
                self.template.as_ref().ok_or_else(|| {
                    TokenizeError::Template(format!(
                        "{} has no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json)",
                        self.source.display()
                    ))
                })?,
                self.format,
            ),
        };
        let mut conv = normalize_messages(messages, format, tpl.source())?;
        let unset = |v: &Value| v.is_none() || v.as_str() == Some("auto");
        // name -> value, later entries override earlier ones.
        let mut merged: Vec<(String, Value)> = Vec::new();
        let set = |merged: &mut Vec<(String, Value)>, k: &str, v: Value| {
            merged.retain(|(n, _)| n != k);
            merged.push((k.to_string(), v));
        };
        let declared = tpl.undeclared();
        let reaches = |k: &str| declared.contains(k) || HF_PARAMS.contains(&k);
        // `OnlineRenderer.preprocess_chat`: the engine's defaults (kept as
        // given, `None` included: only overrides are filtered), then the
        // request's tools over them.
        for (k, v) in &self.default_kwargs {
            if reaches(k) {
                set(&mut merged, k, v.clone());
            }
        }
        if let Some(t) = tools {
            set(&mut merged, "tools", Value::from(normalize_tools(t)?));
        }
        let user_kwargs: Vec<(String, Value)> = match kwargs {
            None => Vec::new(),
            Some(kw) if kw.is_none() => Vec::new(),
            Some(kw) if kw.kind() == ValueKind::Map => kw
                .try_iter()
                .map_err(|e| TokenizeError::Request(e.to_string()))?
                .map(|k| {
                    let v = kw.get_item(&k).unwrap_or_default();
                    (k.to_string(), v)
                })
                .collect(),
            Some(_) => {
                return Err(TokenizeError::Request(
                    "chat_template_kwargs must be an object".into(),
                ))
            }
        };
        // `resolve_chat_template_kwargs`: only names the template reads and
        // transformers' own parameters reach it; the others are dropped
        // here, before merging, so that a body with many kwargs costs one
        // pass over them rather than a pass per kwarg over the merged ones.
        for (k, v) in &user_kwargs {
            match k.as_str() {
                // vLLM renders text whatever the body says; `false` is
                // what it does anyway, any other value fails there.
                "tokenize" if v.kind() == ValueKind::Bool && !v.is_true() => continue,
                "chat_template" | "tokenize" => {
                    return Err(TokenizeError::Request(format!(
                        "chat_template_kwargs: '{k}' is not allowed"
                    )))
                }
                // vLLM passes the conversation under these names itself:
                // a second value fails its render call.
                "messages" | "conversation" => {
                    return Err(TokenizeError::Request(format!(
                        "chat_template_kwargs: '{k}' collides with the conversation vLLM passes"
                    )))
                }
                _ => {}
            }
            if !unset(v) && reaches(k) {
                set(&mut merged, k, v.clone());
            }
        }
        set(
            &mut merged,
            "add_generation_prompt",
            Value::from(opts.add_generation_prompt),
        );
        set(
            &mut merged,
            "continue_final_message",
            Value::from(opts.continue_final_message),
        );
        if let Some(d) = documents.filter(|d| !unset(d)) {
            set(&mut merged, "documents", d.clone());
        }
        if let Some(e) = opts.reasoning_effort.as_deref().filter(|e| *e != "auto") {
            set(&mut merged, "reasoning_effort", Value::from(e));
            if !user_kwargs.iter().any(|(k, _)| k == "enable_thinking") {
                set(&mut merged, "enable_thinking", Value::from(e != "none"));
            }
        }
        merged.retain(|(k, _)| reaches(k));
        let take = |merged: &mut Vec<(String, Value)>, k: &str| {
            let i = merged.iter().position(|(n, _)| n == k)?;
            Some(merged.remove(i).1)
        };
        let tools = take(&mut merged, "tools").unwrap_or(Value::from(()));
        let documents = take(&mut merged, "documents").unwrap_or(Value::from(()));
        let add_generation_prompt = take(&mut merged, "add_generation_prompt")
            .map(|v| v.is_true())
            .unwrap_or(false);
        let continue_final = take(&mut merged, "continue_final_message")
            .map(|v| v.is_true())
            .unwrap_or(false);
        if continue_final && add_generation_prompt {
            return Err(TokenizeError::Request(
                "continue_final_message and add_generation_prompt cannot both be true".into(),
            ));
        }
        let final_text = if continue_final {
            Some(mark_final(&mut conv, tpl.source())?)
        } else {
            None
        };
        let mut ctx: Vec<(String, Value)> = Vec::new();
        for (k, v) in &self.specials {
            ctx.push((k.clone(), Value::from(v.as_str())));
        }
        for (k, v) in merged {
            ctx.retain(|(n, _)| *n != k);
            ctx.push((k, v));
        }
        ctx.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "messages" | "tools" | "documents" | "add_generation_prompt"
            )
        });
        ctx.push(("messages".into(), Value::from(conv)));
        ctx.push(("tools".into(), tools));
        ctx.push(("documents".into(), documents));
        ctx.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        let rendered = tpl
            .render(Value::from_iter(ctx))
            .map_err(|e| TokenizeError::Template(template_error(&e)))?;
        match final_text {
            Some(text) => cut_at_mark(rendered, &text),
            None => Ok(rendered),
        }
    }

    /// The ids vLLM's chat completions feed the engine: the rendered
    /// template tokenized without added special tokens (the template writes
    /// them itself).
    pub fn encode_chat(
        &self,
        messages: &str,
        opts: &ChatOptions,
    ) -> Result<Vec<u32>, TokenizeError> {
        let text = self.render_chat(messages, opts)?;
        self.encode_truncated(
            &text,
            opts.add_special_tokens,
            opts.truncate_prompt_tokens,
            opts.truncate_left,
        )
    }

    /// The ids vLLM feeds the engine for an OpenAI body sent to `path`
    /// (`/v1/completions` or `/v1/chat/completions`): a completions prompt
    /// tokenized with `add_special_tokens` (default true) or its token ids
    /// as given; a chat rendered and tokenized as [`Tokenizer::encode_chat`]
    /// with every field of the body that reaches the template.
    pub fn encode_openai(&self, path: &str, body: &[u8]) -> Result<Vec<u32>, TokenizeError> {
        use llmd_sched::{OpenAiKind, OpenAiPrompt, OpenAiRequest};
        let req =
            OpenAiRequest::parse(path, body).map_err(|e| TokenizeError::Request(e.to_string()))?;
        if let Some(ids) = req.reused_prompt_ids() {
            return Ok(ids.to_vec());
        }
        if let Some(n) = req.not_rendered {
            return Err(TokenizeError::NotExact(n.reason().to_string()));
        }
        if req.kind == OpenAiKind::ChatCompletions && req.has_media_parts() {
            // A valid body whose ids the router cannot compute, as
            // `pick_openai` routes it: not a malformed one.
            return Err(TokenizeError::NotExact(
                "multimodal chat: the engine's placeholder tokens come from its processor, which the router does not run"
                    .into(),
            ));
        }
        let given_ids = matches!(req.prompt, Some(OpenAiPrompt::Tokens(_)));
        if let Some(why) = self
            .not_exact(req.kind == OpenAiKind::ChatCompletions)
            .filter(|_| !given_ids)
        {
            return Err(TokenizeError::NotExact(why.to_string()));
        }
        match (req.kind, &req.prompt) {
            (OpenAiKind::Completions, Some(OpenAiPrompt::Tokens(t))) => req
                .truncate_ids(t.clone(), self.truncates_left())
                .map_err(|e| TokenizeError::Request(e.to_string())),
            (OpenAiKind::Completions, Some(OpenAiPrompt::Text(t))) => {
                self.encode_completion(t, &req)
            }
            _ => self.encode_chat(
                req.messages.as_deref().unwrap_or("[]"),
                &ChatOptions::from_request(&req)?,
            ),
        }
    }

    /// A completions prompt's ids: special tokens and truncation as `req`
    /// asks.
    fn encode_completion(
        &self,
        text: &str,
        req: &llmd_sched::OpenAiRequest,
    ) -> Result<Vec<u32>, TokenizeError> {
        let max = req
            .truncation_limit()
            .map_err(|e| TokenizeError::Request(e.to_string()))?;
        self.encode_truncated(text, req.add_special_tokens, max, req.truncate_left)
    }

    /// Conversations whose tokenization `pick_openai` keeps (by session id).
    pub fn cached_sessions(&self) -> usize {
        self.sessions.stats().kept
    }

    /// The session cache: what it keeps, and what it let go for its bounds.
    pub fn session_stats(&self) -> crate::session::SessionStats {
        self.sessions.stats()
    }

    /// Added tokens a [`crate::ChatSession`] may cut before.
    pub(crate) fn cut_tokens(&self) -> &[String] {
        &self.cuts
    }

    /// The underlying HF tokenizer.
    pub fn hf(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

fn template_error(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

/// The mark transformers (5.x `render_jinja_template`) appends to the final
/// message's text for `continue_final_message`.
const CONTINUE_MARK: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

/// Appends [`CONTINUE_MARK`] to the final message's text (its last part
/// with a `text` for list content) and returns that text, unmarked.
fn mark_final(conv: &mut [Value], template: &str) -> Result<String, TokenizeError> {
    let err = |m: &str| TokenizeError::Request(format!("continue_final_message: {m}"));
    let last = conv
        .last_mut()
        .ok_or_else(|| err("there are no messages"))?;
    let content = field(last, "content").filter(|c| !c.is_none());
    let content = content.ok_or_else(|| err("the final message has no content to continue"))?;
    if !template.contains("content") {
        return Err(err("the chat template does not read 'content'"));
    }
    let (text, marked) = match content.kind() {
        ValueKind::Seq => {
            let mut parts: Vec<Value> = content.try_iter().map(|i| i.collect()).unwrap_or_default();
            let i = parts
                .iter()
                .rposition(|p| field(p, "text").is_some())
                .ok_or_else(|| err("the final message has no text to continue"))?;
            let text = field(&parts[i], "text").unwrap_or_default().to_string();
            parts[i] = with_field(
                &parts[i],
                "text",
                Value::from(format!("{text}{CONTINUE_MARK}")),
            );
            (text, Value::from(parts))
        }
        _ => {
            let text = content.to_string();
            let marked = Value::from(format!("{text}{CONTINUE_MARK}"));
            (text, marked)
        }
    };
    *last = with_field(last, "content", marked);
    Ok(text)
}

/// Cuts the rendering at the mark: exactly there when the template kept
/// it whole, else before it with trailing whitespace trimmed.
fn cut_at_mark(rendered: String, final_text: &str) -> Result<String, TokenizeError> {
    // Python's `strip()` and `rstrip()`, as transformers calls them.
    let mark = CONTINUE_MARK.trim_matches(py_space);
    if !rendered.contains(final_text.trim_matches(py_space)) || !rendered.contains(mark) {
        return Err(TokenizeError::Request(
            "continue_final_message: the final message does not appear in the rendered chat".into(),
        ));
    }
    let loc = rendered.rfind(mark).unwrap_or(0);
    if rendered[loc..].starts_with(CONTINUE_MARK) {
        return Ok(rendered[..loc].to_string());
    }
    Ok(rendered[..loc].trim_end_matches(py_space).to_string())
}

/// `v` (a map) with `k` set to `new`, key order kept.
fn with_field(v: &Value, k: &str, new: Value) -> Value {
    let mut pairs = map_pairs(v);
    match pairs.iter_mut().find(|(key, _)| key.as_str() == Some(k)) {
        Some(p) => p.1 = new,
        None => pairs.push((Value::from(k), new)),
    }
    Value::from_iter(pairs)
}

/// The scheduler's hook: `Scheduler::set_tokenizer(model, Arc::new(tok))`
/// makes `pick_openai` route on these ids.
impl llmd_sched::PromptTokenizer for Tokenizer {
    fn encode_prompt(
        &self,
        text: &str,
        req: &llmd_sched::OpenAiRequest,
    ) -> Result<Vec<u32>, String> {
        self.encode_completion(text, req).map_err(|e| e.to_string())
    }

    fn truncates_left(&self) -> bool {
        Tokenizer::truncates_left(self)
    }

    fn not_exact(&self, chat: bool) -> Option<&'static str> {
        Tokenizer::not_exact(self, chat)
    }

    fn encode_chat(
        &self,
        req: &llmd_sched::OpenAiRequest,
        session: Option<&str>,
    ) -> Result<Vec<u32>, String> {
        let opts = ChatOptions::from_request(req).map_err(|e| e.to_string())?;
        let messages = req.messages.as_deref().unwrap_or("[]");
        let Some(id) = session else {
            return Tokenizer::encode_chat(self, messages, &opts).map_err(|e| e.to_string());
        };
        // The conversation's session is taken out while it is used, so
        // other conversations never wait; a concurrent turn of the same
        // conversation starts a fresh one (same ids, no reuse).
        let mut s = self.sessions.take(id);
        let ids = s
            .encode_chat(self, messages, &opts)
            .map_err(|e| e.to_string());
        self.sessions.put(id, s);
        ids
    }
}

/// Loads every tokenizer the scheduler's configuration names: a
/// `token-producer` (or its old name `tokenizer`) with the llmd extension
/// `tokenizerDir` gets that directory loaded and set for its `modelName`
/// ("" — every model — when it names none). Returns the models set. The
/// Python, C and Go bindings call this when they build a scheduler.
pub fn load_configured(sched: &llmd_sched::Scheduler) -> Result<Vec<String>, TokenizeError> {
    let mut set = Vec::new();
    for p in &sched.config_report().plugins {
        if p.plugin_type != "token-producer" && p.plugin_type != "tokenizer" {
            continue;
        }
        let Some(dir) = p.parameters.get("tokenizerDir").and_then(Json::as_str) else {
            continue;
        };
        let model = p
            .parameters
            .get("modelName")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let mut tok = Tokenizer::from_dir(dir).map_err(|e| match e {
            TokenizeError::File(f, why) => TokenizeError::File(
                f,
                format!("{why} (plugin '{}' parameter tokenizerDir)", p.name),
            ),
            other => other,
        })?;
        // The engine's chat settings: vLLM's `--chat-template` (a file, or
        // the template itself, as vLLM reads the flag) and
        // `--default-chat-template-kwargs`.
        if let Some(t) = p.parameters.get("chatTemplate").and_then(Json::as_str) {
            tok = tok.with_chat_template(t).map_err(|e| match e {
                TokenizeError::File(f, why) => TokenizeError::File(
                    f,
                    format!("{why} (plugin '{}' parameter chatTemplate)", p.name),
                ),
                other => other,
            })?;
        }
        if let Some(kw) = p
            .parameters
            .get("defaultChatTemplateKwargs")
            .and_then(Json::as_object)
        {
            tok = tok.with_default_chat_template_kwargs(kw)?;
        }
        sched.set_tokenizer(&model, Arc::new(tok));
        set.push(model);
    }
    Ok(set)
}

/// vLLM's `--chat-template` value: a file's contents when it names one,
/// else the template itself when it reads as one (it has `{`, `}` or a
/// line break, as vLLM's `load_chat_template` decides), else an error.
fn engine_template(value: &str) -> Result<String, String> {
    let path = Path::new(value);
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(_) if value.contains(['{', '}', '\n']) => Ok(value.to_string()),
        Err(e) => Err(format!(
            "neither a readable file ({e}) nor a template (vLLM's built-in template names are not known here)"
        )),
    }
}

/// `enc` cut to its first (`left`: last) `k` tokens, the ids HF's truncation
/// keeps, without the overflowing windows `Encoding::truncate` builds of the
/// rest: one full `Encoding` per `k` tokens cut, which for a long text and a
/// small `truncate_prompt_tokens` is gigabytes.
fn keep(enc: tokenizers::Encoding, k: usize, left: bool) -> tokenizers::Encoding {
    let n = enc.len();
    if k >= n {
        return enc;
    }
    let r = if left { n - k..n } else { 0..k };
    tokenizers::Encoding::new(
        enc.get_ids()[r.clone()].to_vec(),
        enc.get_type_ids()[r.clone()].to_vec(),
        enc.get_tokens()[r.clone()].to_vec(),
        enc.get_word_ids()[r.clone()].to_vec(),
        enc.get_offsets()[r.clone()].to_vec(),
        enc.get_special_tokens_mask()[r.clone()].to_vec(),
        enc.get_attention_mask()[r].to_vec(),
        Vec::new(),
        ahash::AHashMap::new(),
    )
}
