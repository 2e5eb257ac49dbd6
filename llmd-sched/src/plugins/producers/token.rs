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
    /// Decodes `modelName`, `vllm{url, timeout, mmTimeout}`, deprecated `udsTokenizerConfig`.
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
        if let Some(d) = p.opt_string("tokenizerDir")? {
            if d.is_empty() {
                return Err(p.err("tokenizerDir", "must not be empty"));
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
