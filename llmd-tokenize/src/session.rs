//! Multi-turn conversations without re-tokenizing their history: a
//! [`ChatSession`] keeps the ids of the rendered conversation up to the last
//! safe cut and tokenizes only what follows.
//!
//! Why reuse is exact: HF tokenizers split the input on added tokens before
//! normalizing and pre-tokenizing, and treat each piece on its own. A cut
//! placed right *before* an added token that is matched literally (not
//! normalized, strips no whitespace, not single-word, and not part of a
//! longer added token) leaves every piece as it was: the piece before the
//! cut ends where a split ends anyway, and the piece after it starts with
//! the added token, so what follows keeps its position among the splits
//! (pre-tokenizers that treat the first split differently, such as
//! Metaspace's `prepend_scheme: first`, see the same first split). The ids
//! of the text up to a cut are therefore a prefix of the ids of any text
//! that starts with it *and continues with such an added token* (checked
//! on every reuse: a text that continues otherwise, say "…Hel" followed by
//! "lo", would merge across the cut). A rendering that does not start with the cached
//! text (a template that rewrites earlier turns) is tokenized in full.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{ChatOptions, TokenizeError, Tokenizer};

/// Sessions kept per tokenizer for `pick_openai`.
pub const MAX_SESSIONS: usize = 4096;

/// The sessions of the conversations a scheduler routes, by session id,
/// bounded: the least recently used one goes when full.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    map: Mutex<HashMap<String, (ChatSession, u64)>>,
    clock: std::sync::atomic::AtomicU64,
}

impl SessionCache {
    /// Takes `id`'s session out (a new one when there is none).
    pub fn take(&self, id: &str) -> ChatSession {
        self.map
            .lock()
            .unwrap()
            .remove(id)
            .map(|(s, _)| s)
            .unwrap_or_default()
    }

    /// Puts `id`'s session back.
    pub fn put(&self, id: &str, s: ChatSession) {
        let t = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = self.map.lock().unwrap();
        if m.len() >= MAX_SESSIONS && !m.contains_key(id) {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(id.to_string(), (s, t));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// Added tokens a cut may be placed before.
pub(crate) fn cut_tokens(tok: &tokenizers::Tokenizer) -> Vec<String> {
    let added: Vec<tokenizers::AddedToken> = tok.get_added_tokens_decoder().into_values().collect();
    added
        .iter()
        .filter(|t| {
            !t.normalized && !t.lstrip && !t.rstrip && !t.single_word && !t.content.is_empty()
        })
        .filter(|t| {
            !added
                .iter()
                .any(|o| o.content != t.content && o.content.contains(t.content.as_str()))
        })
        .map(|t| t.content.clone())
        .collect()
}

/// The last position in `text` after 0 where a cut token starts.
fn last_cut(text: &str, cuts: &[String]) -> Option<usize> {
    cuts.iter()
        .filter_map(|c| text.rfind(c.as_str()))
        .filter(|&p| p > 0)
        .max()
}

/// One conversation's cached prefix.
#[derive(Clone, Debug, Default)]
pub struct ChatSession {
    prefix: String,
    ids: Vec<u32>,
    reused: usize,
    encoded_bytes: usize,
}

impl ChatSession {
    /// An empty session.
    pub fn new() -> ChatSession {
        ChatSession::default()
    }

    /// The ids of `messages` (the whole conversation so far), equal to
    /// [`Tokenizer::encode_chat`]'s, tokenizing only the text after the
    /// cached prefix.
    pub fn encode_chat(
        &mut self,
        tok: &Tokenizer,
        messages: &str,
        opts: &ChatOptions,
    ) -> Result<Vec<u32>, TokenizeError> {
        let text = tok.render_chat(messages, opts)?;
        if opts.add_special_tokens || opts.truncate_prompt_tokens.is_some() {
            // The tokenizer's post-processor wraps the whole text (BOS, EOS),
            // and truncation cuts the whole: pieces tokenized apart would not
            // add up, so no reuse.
            *self = ChatSession::default();
            self.encoded_bytes = text.len();
            return tok.encode_truncated(
                &text,
                opts.add_special_tokens,
                opts.truncate_prompt_tokens,
                opts.truncate_left,
            );
        }
        // The cached ids hold only while an added token still follows the
        // cached text: "…Hel" cut before "<|im_end|>" is not a prefix of the
        // ids of "…Hello".
        let reusable = !self.prefix.is_empty()
            && text.starts_with(&self.prefix)
            && tok
                .cut_tokens()
                .iter()
                .any(|c| text[self.prefix.len()..].starts_with(c.as_str()));
        let (mut ids, start) = if reusable {
            (self.ids.clone(), self.prefix.len())
        } else {
            (Vec::new(), 0)
        };
        self.reused = ids.len();
        let rest = &text[start..];
        match last_cut(rest, tok.cut_tokens()) {
            Some(cut) => {
                ids.extend(tok.encode(&rest[..cut], false)?);
                self.prefix = text[..start + cut].to_string();
                self.ids = ids.clone();
                ids.extend(tok.encode(&rest[cut..], false)?);
            }
            None => ids.extend(tok.encode(rest, false)?),
        }
        self.encoded_bytes = text.len() - start;
        Ok(ids)
    }

    /// Ids taken from the cache by the last call.
    pub fn last_reused_tokens(&self) -> usize {
        self.reused
    }

    /// Bytes of rendered text tokenized by the last call.
    pub fn last_encoded_bytes(&self) -> usize {
        self.encoded_bytes
    }

    /// Forgets the cached prefix.
    pub fn reset(&mut self) {
        *self = ChatSession::default();
    }
}
