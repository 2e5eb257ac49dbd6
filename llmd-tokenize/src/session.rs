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
/// Bytes the kept sessions may hold in all (their rendered text and ids),
/// so that long conversations under many session ids stay bounded.
pub const MAX_SESSION_BYTES: usize = 256 << 20;
/// One session larger than this is not kept (it would crowd out the rest):
/// its next turn is tokenized in full.
pub const MAX_ONE_SESSION_BYTES: usize = MAX_SESSION_BYTES / 16;

/// The sessions of the conversations a scheduler routes, by session id,
/// bounded in number and bytes: the least recently used ones go first.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    map: Mutex<Kept>,
    clock: std::sync::atomic::AtomicU64,
}

/// The kept sessions with their last use, and the bytes they hold.
#[derive(Debug, Default)]
struct Kept {
    sessions: HashMap<String, (ChatSession, u64)>,
    bytes: usize,
    stats: SessionStats,
}

/// What the session cache of a tokenizer holds and has let go
/// ([`crate::Tokenizer::session_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Sessions kept now.
    pub kept: usize,
    /// Bytes they hold (rendered text and ids).
    pub bytes: usize,
    /// Sessions dropped to stay within 4,096 sessions or 256 MiB, least
    /// recently used first.
    pub evicted: u64,
    /// Sessions not kept at all for holding over 16 MiB (their next turn is
    /// tokenized in full).
    pub too_large: u64,
}

/// What one cached session costs: its text and ids, and its id (a
/// request's `x-session-id` or `user`, of any length), so that long ids
/// count against the cache's bounds too.
fn entry_bytes(id: &str, s: &ChatSession) -> usize {
    s.held_bytes() + id.len()
}

impl SessionCache {
    /// Takes `id`'s session out (a new one when there is none).
    pub fn take(&self, id: &str) -> ChatSession {
        let mut k = self.map.lock().unwrap();
        match k.sessions.remove(id) {
            Some((s, _)) => {
                k.bytes -= entry_bytes(id, &s);
                s
            }
            None => ChatSession::default(),
        }
    }

    /// Puts `id`'s session back, unless it alone is over
    /// [`MAX_ONE_SESSION_BYTES`].
    pub fn put(&self, id: &str, s: ChatSession) {
        let size = entry_bytes(id, &s);
        let mut k = self.map.lock().unwrap();
        if size > MAX_ONE_SESSION_BYTES {
            k.stats.too_large += 1;
            return;
        }
        let t = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((old, _)) = k.sessions.remove(id) {
            k.bytes -= entry_bytes(id, &old);
        }
        while !k.sessions.is_empty()
            && (k.sessions.len() >= MAX_SESSIONS || k.bytes + size > MAX_SESSION_BYTES)
        {
            let Some(oldest) = k
                .sessions
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((gone, _)) = k.sessions.remove(&oldest) {
                k.bytes -= entry_bytes(&oldest, &gone);
                k.stats.evicted += 1;
            }
        }
        k.bytes += size;
        k.sessions.insert(id.to_string(), (s, t));
    }

    pub fn stats(&self) -> SessionStats {
        let k = self.map.lock().unwrap();
        SessionStats {
            kept: k.sessions.len(),
            bytes: k.bytes,
            ..k.stats
        }
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

/// The last position in `text` after 0 where a cut token starts: one
/// backward scan, each byte checked only against the cut tokens that begin
/// with it, stopping at the first (the last) match. A search per token (a
/// model has hundreds of reserved special tokens, most absent) would read
/// the whole text once per token.
fn last_cut(text: &str, cuts: &[String]) -> Option<usize> {
    let mut by_first: [Vec<&[u8]>; 256] = std::array::from_fn(|_| Vec::new());
    for c in cuts {
        if let Some(&b) = c.as_bytes().first() {
            by_first[usize::from(b)].push(c.as_bytes());
        }
    }
    let bytes = text.as_bytes();
    (1..bytes.len()).rev().find(|&p| {
        by_first[usize::from(bytes[p])]
            .iter()
            .any(|c| bytes[p..].starts_with(c))
    })
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

    /// Bytes this session keeps (the rendered text up to its cut and its
    /// ids).
    pub fn held_bytes(&self) -> usize {
        self.prefix.len() + self.ids.len() * std::mem::size_of::<u32>()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(bytes: usize) -> ChatSession {
        ChatSession {
            prefix: "x".repeat(bytes),
            ..ChatSession::default()
        }
    }

    /// The kept sessions stay within their byte budget, oldest out first;
    /// one session over its own limit is not kept at all.
    #[test]
    fn sessions_are_bounded_in_bytes() {
        let c = SessionCache::default();
        // Each entry is its text and its id ("s0" .. "s39").
        let each = MAX_ONE_SESSION_BYTES - 16;
        for i in 0..40 {
            c.put(&format!("s{i}"), session(each));
            assert!(c.stats().bytes <= MAX_SESSION_BYTES, "{i}: {:?}", c.stats());
        }
        let kept = MAX_SESSION_BYTES / MAX_ONE_SESSION_BYTES;
        assert_eq!(c.stats().kept, kept);
        assert_eq!(c.stats().evicted, (40 - kept) as u64);
        assert_eq!(c.take("s0").held_bytes(), 0, "the oldest went first");
        assert_eq!(c.take("s39").held_bytes(), each);
        assert_eq!(c.stats().bytes, (c.stats().kept) * (each + 3));
        c.put("huge", session(MAX_ONE_SESSION_BYTES));
        assert_eq!(c.take("huge").held_bytes(), 0);
        assert_eq!(c.stats().too_large, 1);
    }

    /// A session id counts against the bounds like the session's text: a
    /// request's `user` of many megabytes cannot grow the cache past them,
    /// even when its session holds nothing.
    #[test]
    fn session_ids_count_against_the_bounds() {
        let c = SessionCache::default();
        let long = "u".repeat(MAX_ONE_SESSION_BYTES + 1);
        c.put(&long, ChatSession::default());
        assert_eq!(c.stats().too_large, 1);
        assert_eq!((c.stats().kept, c.stats().bytes), (0, 0));
        let id = "v".repeat(MAX_ONE_SESSION_BYTES / 2);
        for i in 0..64 {
            c.put(&format!("{id}{i}"), ChatSession::default());
            assert!(c.stats().bytes <= MAX_SESSION_BYTES, "{i}: {:?}", c.stats());
        }
        assert!(c.stats().kept < 64, "{:?}", c.stats());
        let kept = c.stats().kept;
        let _ = c.take(&format!("{id}63"));
        assert_eq!(c.stats().kept, kept - 1);
        assert_eq!(c.stats().bytes, (kept - 1) * (id.len() + 2));
    }

    /// The one-scan search finds what a search per token finds.
    #[test]
    fn last_cut_is_the_last_start_of_any_cut_token() {
        let naive = |text: &str, cuts: &[String]| {
            cuts.iter()
                .filter_map(|c| text.rfind(c.as_str()))
                .filter(|&p| p > 0)
                .max()
        };
        let cuts: Vec<String> = [
            "<|im_start|>",
            "<|im_end|>",
            "<s>",
            "é<x>",
            "<|reserved_0|>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for text in [
            "",
            "<|im_start|>only at 0",
            "a<|im_start|>b<|im_end|>c",
            "<s>x<s>",
            "ééé<x> <|im_end|><|im_start|>",
            "no cut <| here <|im_sta",
            "日本<s>語",
        ] {
            assert_eq!(last_cut(text, &cuts), naive(text, &cuts), "{text}");
        }
    }
}
