//! `token-producer`: the tokenized prompt every prefix plugin reads.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Producer};
use crate::model::Prompt;

/// Which backend the configuration selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenBackend {
    /// llm-d's tokenizer-free byte estimate.
    Estimate,
    /// vLLM's render endpoint. The library does no I/O: requests must carry
    /// token ids (the host tokenizes); text prompts fall back to the estimate.
    Vllm {
        /// `vllm.url`.
        url: String,
    },
}

/// The producer.
#[derive(Clone, Debug)]
pub struct TokenProducer {
    /// Selected backend.
    pub backend: TokenBackend,
}

/// llm-d's `estimate` backend: bytes packed into little-endian u32 pseudo-tokens,
/// 4 bytes per token, the last one zero-padded.
pub fn estimate_tokens(text: &str) -> Vec<u32> {
    text.as_bytes()
        .chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect()
}

impl TokenProducer {
    /// Decodes `modelName`, `vllm{url, timeout, mmTimeout}`, deprecated
    /// `udsTokenizerConfig`, and the llmd extensions `tokenizerDir`,
    /// `chatTemplate` and `defaultChatTemplateKwargs`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let model = p.opt_string("modelName")?;
        let mut url = None;
        if let Some(mut v) = p.object("vllm")? {
            url = Some(v.string("url", "http://localhost:8000")?);
            v.opt_duration_ns("timeout")?;
            v.opt_duration_ns("mmTimeout")?;
            v.finish()?;
        }
        if let Some(mut u) = p.object("udsTokenizerConfig")? {
            u.accept_rest();
        }
        // llmd extension: a local model directory for in-process
        // tokenization (llmd-tokenize loads it; see `load_configured`).
        let dir = p.opt_string("tokenizerDir")?;
        if dir.as_deref() == Some("") {
            return Err(p.err("tokenizerDir", "must not be empty"));
        }
        // With it, the engine's own chat settings (vLLM's `--chat-template`
        // and `--default-chat-template-kwargs`), so that the rendering is
        // the engine's: checked here, applied by llmd-tokenize.
        let template = p.opt_string("chatTemplate")?;
        if template.as_deref() == Some("") {
            return Err(p.err("chatTemplate", "must not be empty"));
        }
        let kwargs = p.take("defaultChatTemplateKwargs");
        if kwargs.as_ref().is_some_and(|k| !k.is_object()) {
            return Err(p.err("defaultChatTemplateKwargs", "must be an object"));
        }
        if dir.is_none() {
            for (k, given) in [
                ("chatTemplate", template.is_some()),
                ("defaultChatTemplateKwargs", kwargs.is_some()),
            ] {
                if given {
                    return Err(p.err(
                        k,
                        "applies to the tokenizer of tokenizerDir, which is not given",
                    ));
                }
            }
        }
        let backend = match (url, model) {
            (Some(url), _) => TokenBackend::Vllm { url },
            (None, Some(_)) => TokenBackend::Vllm {
                url: "http://localhost:8000".into(),
            },
            (None, None) => TokenBackend::Estimate,
        };
        Ok(TokenProducer { backend })
    }
}

impl Producer for TokenProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, _candidates: &[EndpointIndex]) {
        if let Prompt::Text(text) = &ctx.request().prompt {
            let tokens = estimate_tokens(text);
            if matches!(self.backend, TokenBackend::Vllm { .. }) {
                ctx.note("token-producer: vllm backend needs host-side tokenization; text prompt estimated (4 bytes per token)");
            }
            ctx.set_tokens(tokens, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_packs_four_bytes_le() {
        assert_eq!(
            estimate_tokens("abcde"),
            vec![u32::from_le_bytes(*b"abcd"), u32::from(b'e')]
        );
        assert!(estimate_tokens("").is_empty());
    }
}
