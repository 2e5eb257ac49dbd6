//! Prompt shapes drawn independently per arrival: shared-prefix groups,
//! long-document QA and a LoRA adapter mix.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Made, Shape};
use crate::error::{Result, SimError};
use crate::tokens::{push_tokens, stream_id};

const PREFIX: u64 = 0x5052_4546;
const QUESTION: u64 = 0x5155_4553;
const DOC: u64 = 0x0044_4F43;

fn positive(what: &str, v: u64) -> Result<()> {
    if v == 0 {
        return Err(SimError::Workload(format!("{what} must be > 0")));
    }
    Ok(())
}

/// The most documents or adapters a workload may draw from (1 Mi): each
/// draw reads a table of this many weights, built once.
pub(crate) const MAX_ZIPF_ITEMS: u32 = 1 << 20;

/// `n` items (`what`) drawn by Zipf exponent `skew`: 1..=[`MAX_ZIPF_ITEMS`]
/// items and a finite exponent >= 0.
fn zipf_spec(what: &str, n: u32, skew: f64) -> Result<()> {
    positive(&format!("{what}s"), n.into())?;
    if n > MAX_ZIPF_ITEMS {
        return Err(SimError::Workload(format!(
            "{what}s must be at most {MAX_ZIPF_ITEMS}, got {n}"
        )));
    }
    if !(skew >= 0.0 && skew.is_finite()) {
        return Err(SimError::Workload(format!(
            "{what} skew must be a finite number >= 0, got {skew}"
        )));
    }
    Ok(())
}

/// The longest prompt or context a workload may make, in tokens (4 Mi, far
/// past any model's context): a longer one is a mistake in the scenario,
/// refused before gigabytes of token ids are allocated.
pub(crate) const MAX_PROMPT_TOKENS: u64 = 1 << 22;

/// `what` (a prompt's tokens) is in 1..=[`MAX_PROMPT_TOKENS`]: an empty
/// prompt never takes a step, so the run would never end.
pub(crate) fn prompt_len(what: &str, v: u64) -> Result<()> {
    positive(what, v)?;
    if v > MAX_PROMPT_TOKENS {
        return Err(SimError::Workload(format!(
            "{what} is {v} tokens; at most {MAX_PROMPT_TOKENS}"
        )));
    }
    Ok(())
}

/// Groups of users sharing a system prompt (inference-perf `shared_prefix`).
/// Each (group, user) pair has one fixed question, so repeats hit fully.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefix {
    /// Number of groups.
    pub groups: u32,
    /// Tokens of each group's shared prefix.
    pub system_prompt_len: u32,
    /// Distinct questions per group.
    pub users_per_group: u32,
    /// Tokens of each question.
    pub question_len: u32,
    /// Tokens to generate.
    pub output_len: u32,
    #[serde(skip)]
    seed: u64,
}

impl SharedPrefix {
    /// A shape with the given sizes.
    pub fn new(
        groups: u32,
        system_prompt_len: u32,
        users_per_group: u32,
        question_len: u32,
        output_len: u32,
    ) -> Self {
        SharedPrefix {
            groups,
            system_prompt_len,
            users_per_group,
            question_len,
            output_len,
            seed: 0,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        positive("shared_prefix.groups", self.groups.into())?;
        positive("shared_prefix.users_per_group", self.users_per_group.into())?;
        positive("shared_prefix.output_len", self.output_len.into())?;
        prompt_len(
            "shared_prefix prompt (system_prompt_len + question_len)",
            u64::from(self.system_prompt_len) + u64::from(self.question_len),
        )
    }

    pub(crate) fn seeded(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Shape for SharedPrefix {
    fn make(&mut self, rng: &mut fastrand::Rng, vocab: u32) -> Made {
        let g = rng.u32(0..self.groups);
        let u = rng.u32(0..self.users_per_group);
        let mut prompt = Vec::with_capacity((self.system_prompt_len + self.question_len) as usize);
        push_tokens(
            &mut prompt,
            stream_id(PREFIX, self.seed, g.into()),
            0,
            self.system_prompt_len.into(),
            vocab,
        );
        let q = stream_id(QUESTION, self.seed, (u64::from(g) << 32) | u64::from(u));
        push_tokens(&mut prompt, q, 0, self.question_len.into(), vocab);
        Made {
            prompt,
            output_len: self.output_len,
            lora: None,
            session: None,
            group: Some(g),
        }
    }
}

/// Cumulative weights of Zipf(`s`) over `n` items (item `i` weighs
/// 1/(i+1)^s); `None` for uniform draws (s = 0 or one item).
fn zipf_cdf(n: u32, s: f64) -> Option<Arc<[f64]>> {
    if s <= 0.0 || n <= 1 {
        return None;
    }
    let mut acc = 0.0;
    Some(
        (1..=n)
            .map(|i| {
                acc += 1.0 / f64::from(i).powf(s);
                acc
            })
            .collect(),
    )
}

/// Draws index `i` of `n` with probability ∝ 1/(i+1)^s (uniform for s = 0);
/// `cdf` caches [`zipf_cdf`], so a draw is a binary search.
fn zipf(rng: &mut fastrand::Rng, n: u32, s: f64, cdf: &mut Option<Arc<[f64]>>) -> u32 {
    if s <= 0.0 || n <= 1 {
        return rng.u32(0..n.max(1));
    }
    let c = cdf.get_or_insert_with(|| zipf_cdf(n, s).unwrap_or_else(|| Arc::from([1.0])));
    let x = rng.f64() * c[c.len() - 1];
    c.partition_point(|&v| v < x).min(c.len() - 1) as u32
}

/// Unique questions over a set of long documents, popularity Zipf(`skew`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DocQa {
    /// Number of documents.
    pub documents: u32,
    /// Tokens per document.
    pub document_len: u32,
    /// Tokens per question (unique per request).
    pub question_len: u32,
    /// Tokens to generate.
    pub output_len: u32,
    /// Zipf exponent of document popularity (0 = uniform).
    #[serde(default)]
    pub skew: f64,
    #[serde(skip)]
    seed: u64,
    #[serde(skip)]
    drawn: u64,
    #[serde(skip)]
    popularity: Option<Arc<[f64]>>,
}

impl DocQa {
    pub(crate) fn validate(&self) -> Result<()> {
        zipf_spec("doc_qa.document", self.documents, self.skew)?;
        positive("doc_qa.document_len", self.document_len.into())?;
        prompt_len(
            "doc_qa prompt (document_len + question_len)",
            u64::from(self.document_len) + u64::from(self.question_len),
        )?;
        positive("doc_qa.output_len", self.output_len.into())
    }

    pub(crate) fn seeded(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Shape for DocQa {
    fn make(&mut self, rng: &mut fastrand::Rng, vocab: u32) -> Made {
        let d = zipf(rng, self.documents, self.skew, &mut self.popularity);
        let mut prompt = Vec::with_capacity((self.document_len + self.question_len) as usize);
        push_tokens(
            &mut prompt,
            stream_id(DOC, self.seed, d.into()),
            0,
            self.document_len.into(),
            vocab,
        );
        self.drawn += 1;
        push_tokens(
            &mut prompt,
            stream_id(QUESTION, self.seed ^ 0xD0C, self.drawn),
            0,
            self.question_len.into(),
            vocab,
        );
        Made {
            prompt,
            output_len: self.output_len,
            lora: None,
            session: None,
            group: Some(d),
        }
    }
}

/// Requests spread over LoRA adapters (Zipf popularity), each with the same
/// system prompt: only the adapter separates their caches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoraMix {
    /// Number of adapters.
    pub adapters: u32,
    /// Share of requests on the base model (0–1).
    #[serde(default)]
    pub base_share: f64,
    /// Zipf exponent of adapter popularity.
    #[serde(default = "one")]
    pub skew: f64,
    /// Shared system prompt tokens.
    pub system_prompt_len: u32,
    /// Unique question tokens.
    pub question_len: u32,
    /// Tokens to generate.
    pub output_len: u32,
    #[serde(skip)]
    seed: u64,
    #[serde(skip)]
    drawn: u64,
    #[serde(skip)]
    popularity: Option<Arc<[f64]>>,
}

fn one() -> f64 {
    1.0
}

impl LoraMix {
    pub(crate) fn validate(&self) -> Result<()> {
        zipf_spec("lora.adapter", self.adapters, self.skew)?;
        positive("lora.output_len", self.output_len.into())?;
        prompt_len(
            "lora prompt (system_prompt_len + question_len)",
            u64::from(self.system_prompt_len) + u64::from(self.question_len),
        )?;
        if !(0.0..=1.0).contains(&self.base_share) {
            return Err(SimError::Workload(
                "lora.base_share must be within 0..1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn seeded(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Shape for LoraMix {
    fn make(&mut self, rng: &mut fastrand::Rng, vocab: u32) -> Made {
        let lora = if rng.f64() < self.base_share {
            None
        } else {
            Some(format!(
                "adapter-{}",
                zipf(rng, self.adapters, self.skew, &mut self.popularity)
            ))
        };
        let mut prompt = Vec::with_capacity((self.system_prompt_len + self.question_len) as usize);
        push_tokens(
            &mut prompt,
            stream_id(PREFIX, self.seed ^ 0x10A, 0),
            0,
            self.system_prompt_len.into(),
            vocab,
        );
        self.drawn += 1;
        push_tokens(
            &mut prompt,
            stream_id(QUESTION, self.seed ^ 0x10B, self.drawn),
            0,
            self.question_len.into(),
            vocab,
        );
        Made {
            prompt,
            output_len: self.output_len,
            lora,
            session: None,
            group: None,
        }
    }
}
