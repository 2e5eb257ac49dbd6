//! A request's state inside one worker.

use std::sync::Arc;

use crate::tokens::{token_at, KeyChain};

/// What the worker does with a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqKind {
    /// Prefill and decode here.
    Full,
    /// P/D prefill side: compute the prompt, then hand it over.
    PrefillOnly,
    /// P/D decode side: the prompt's KV arrives from a prefill worker.
    RemoteKv,
}

/// One request as the worker sees it.
#[derive(Debug)]
pub struct Seq {
    /// Engine-wide request index.
    pub req: u64,
    /// Role of this worker for the request.
    pub kind: SeqKind,
    pub(crate) prompt: Arc<[u32]>,
    pub(crate) output_len: u32,
    pub(crate) output_seed: u64,
    pub(crate) chain: Box<dyn KeyChain>,
    pub(crate) hashed: u32,
    pub(crate) keys: Vec<u64>,
    pub(crate) blocks: Vec<u32>,
    pub(crate) computed: u32,
    pub(crate) generated: u32,
    pub(crate) committed: usize,
    pub(crate) admitted: bool,
    pub(crate) cached_tokens: u32,
}

impl Seq {
    /// A fresh sequence. `chain` has consumed the whole prompt and `keys`
    /// are its full-block keys (the prompt is hashed once, at arrival).
    pub fn new(
        req: u64,
        kind: SeqKind,
        prompt: Arc<[u32]>,
        output_len: u32,
        output_seed: u64,
        chain: Box<dyn KeyChain>,
        keys: Vec<u64>,
    ) -> Self {
        let hashed = prompt.len() as u32;
        Seq {
            req,
            kind,
            prompt,
            output_len: output_len.max(1),
            output_seed,
            chain,
            hashed,
            keys,
            blocks: Vec::new(),
            computed: 0,
            generated: 0,
            committed: 0,
            admitted: false,
            cached_tokens: 0,
        }
    }

    /// Prompt length in tokens.
    pub fn prompt_len(&self) -> u32 {
        self.prompt.len() as u32
    }

    /// Longest the sequence gets on this worker, in tokens.
    pub fn max_len(&self) -> u64 {
        match self.kind {
            SeqKind::PrefillOnly => u64::from(self.prompt_len()),
            _ => u64::from(self.prompt_len()) + u64::from(self.output_len),
        }
    }

    /// Tokens known now (prompt + generated).
    pub(crate) fn total(&self) -> u32 {
        self.prompt_len() + self.generated
    }

    /// Token at `pos` of prompt followed by output.
    pub(crate) fn token(&self, pos: u32, vocab: u32) -> u32 {
        let pl = self.prompt_len();
        if pos < pl {
            self.prompt[pos as usize]
        } else {
            token_at(self.output_seed, u64::from(pos - pl), vocab)
        }
    }

    /// Extends `keys` to cover `full` blocks, hashing output tokens as needed.
    pub(crate) fn ensure_keys(
        &mut self,
        full: usize,
        bs: usize,
        vocab: u32,
        scratch: &mut Vec<u32>,
    ) {
        let need = (full * bs) as u32;
        if self.keys.len() >= full || need <= self.hashed {
            return;
        }
        scratch.clear();
        scratch.extend((self.hashed..need).map(|p| self.token(p, vocab)));
        if self.chain.extend(scratch, &mut self.keys).is_ok() {
            self.hashed = need;
        }
    }

    /// Tokens of blocks `from..to`, back to back.
    pub(crate) fn block_tokens(
        &self,
        from: usize,
        to: usize,
        bs: usize,
        vocab: u32,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let (s, e) = ((from * bs) as u32, (to * bs) as u32);
        let pl = self.prompt_len();
        if e <= pl {
            out.extend_from_slice(&self.prompt[s as usize..e as usize]);
        } else {
            out.extend((s..e).map(|p| self.token(p, vocab)));
        }
    }
}
