//! Seeded request generators. Each yields requests in arrival order and
//! materialises token ids only when a request is drawn, so memory stays
//! bounded by what is in flight.

mod arrivals;
mod chat;
mod shapes;
mod trace;

use std::path::Path;
use std::sync::Arc;

/// The most requests (or chat sessions) one run sends: each is kept for
/// the run's figures.
pub const MAX_REQUESTS: u64 = 10_000_000;

pub use arrivals::{ArrivalClock, Arrivals, Stage};
pub use chat::Chat;
pub use shapes::{DocQa, LoraMix, SharedPrefix};
pub use trace::{TraceLine, TraceSpec};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::request::{RequestSpec, Slo};
use crate::tokens::stream_id;

/// Label of output-token streams.
pub(crate) const OUTPUT_LABEL: u64 = 0x4F55_5450_5554;

/// A source of requests in arrival order.
pub trait Workload: Send {
    /// The next request, or `None` when the workload is exhausted.
    fn next_request(&mut self) -> Option<RequestSpec>;
}

/// Which workload to run and how requests arrive. Exactly one of the
/// workload kinds must be set.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Arrival process (ignored by `trace`, which carries its own times).
    pub arrivals: Arrivals,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// llm-d's benchmark shape: groups sharing a system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_prefix: Option<SharedPrefix>,
    /// Multi-turn chat with growing context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<Chat>,
    /// Questions over long documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_qa: Option<DocQa>,
    /// Requests spread over LoRA adapters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraMix>,
    /// Replay of a JSONL trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSpec>,
    /// Share of requests (0..=1, drawn per request from the seed) sent
    /// sheddable, priority −1, which a router's admission control may
    /// refuse; the rest keep their priority (0, or a trace line's).
    pub sheddable: f64,
}

/// One generated prompt before it gets an id and arrival time.
pub(crate) struct Made {
    pub prompt: Vec<u32>,
    pub output_len: u32,
    pub lora: Option<String>,
    pub session: Option<String>,
    pub group: Option<u32>,
}

/// A prompt shape drawn independently per arrival.
pub(crate) trait Shape: Send {
    fn make(&mut self, rng: &mut fastrand::Rng, vocab: u32) -> Made;
}

/// Independent arrivals of one shape.
struct Open<S: Shape> {
    clock: ArrivalClock,
    shape: S,
    rng: fastrand::Rng,
    next_id: u64,
    max: u64,
    slo: Slo,
    vocab: u32,
    seed: u64,
}

impl<S: Shape> Workload for Open<S> {
    fn next_request(&mut self) -> Option<RequestSpec> {
        if self.next_id >= self.max {
            return None;
        }
        let (arrival, stage) = self.clock.next_staged()?;
        let m = self.shape.make(&mut self.rng, self.vocab);
        let id = self.next_id;
        self.next_id += 1;
        Some(RequestSpec {
            id,
            arrival,
            prompt: Arc::from(m.prompt),
            output_len: m.output_len,
            output_seed: stream_id(OUTPUT_LABEL, self.seed, id),
            lora: m.lora,
            session: m.session,
            group: m.group,
            slo: self.slo,
            priority: 0,
            stage,
        })
    }
}

impl WorkloadSpec {
    /// Builds the generator. `base` resolves a relative trace path.
    pub fn build(&self, seed: u64, vocab: u32, slo: Slo, base: &Path) -> Result<Box<dyn Workload>> {
        let set = [
            self.shared_prefix.is_some(),
            self.chat.is_some(),
            self.doc_qa.is_some(),
            self.lora.is_some(),
            self.trace.is_some(),
        ];
        if set.iter().filter(|b| **b).count() != 1 {
            return Err(SimError::Workload(
                "set exactly one of shared_prefix, chat, doc_qa, lora, trace".into(),
            ));
        }
        self.arrivals.validate().map_err(SimError::Workload)?;
        if self.max_requests.is_none() && self.trace.is_none() && self.arrivals.ladder.is_none() {
            return Err(SimError::Workload(
                "max_requests is needed with a plain arrival rate (the run would never end); \
                 or give a ladder of stages"
                    .into(),
            ));
        }
        // Every request is kept for the summary: the run's size is bounded.
        if let Some(n) = self.max_requests.filter(|&n| n > MAX_REQUESTS) {
            return Err(SimError::Workload(format!(
                "max_requests is at most {MAX_REQUESTS}, got {n}"
            )));
        }
        if let (None, Some(stages)) = (self.max_requests, &self.arrivals.ladder) {
            let expected: f64 = stages.iter().map(|s| s.rate * s.duration_s).sum();
            if !expected.is_finite() || expected > MAX_REQUESTS as f64 {
                return Err(SimError::Workload(format!(
                    "the ladder would send about {expected:.3e} requests (sessions), at most \
                     {MAX_REQUESTS}: shorten it or set max_requests"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.sheddable) {
            return Err(SimError::Workload(format!(
                "sheddable must be a share in [0, 1], got {}",
                self.sheddable
            )));
        }
        let inner = self.build_kind(seed, vocab, slo, base)?;
        Ok(match self.sheddable {
            s if s > 0.0 => Box::new(Sheddable {
                inner,
                share: s,
                seed,
            }),
            _ => inner,
        })
    }

    fn build_kind(
        &self,
        seed: u64,
        vocab: u32,
        slo: Slo,
        base: &Path,
    ) -> Result<Box<dyn Workload>> {
        let max = self.max_requests.unwrap_or(u64::MAX);
        let clock = ArrivalClock::new(self.arrivals.clone(), seed ^ 0xA11);
        fn open<S: Shape + 'static>(
            clock: ArrivalClock,
            shape: S,
            seed: u64,
            max: u64,
            slo: Slo,
            vocab: u32,
        ) -> Box<dyn Workload> {
            Box::new(Open {
                clock,
                shape,
                rng: fastrand::Rng::with_seed(seed ^ 0x5A4E),
                next_id: 0,
                max,
                slo,
                vocab,
                seed,
            })
        }
        if let Some(s) = &self.shared_prefix {
            s.validate()?;
            return Ok(open(clock, s.clone().seeded(seed), seed, max, slo, vocab));
        }
        if let Some(s) = &self.doc_qa {
            s.validate()?;
            return Ok(open(clock, s.clone().seeded(seed), seed, max, slo, vocab));
        }
        if let Some(s) = &self.lora {
            s.validate()?;
            return Ok(open(clock, s.clone().seeded(seed), seed, max, slo, vocab));
        }
        if self.arrivals.drain_stages && (self.chat.is_some() || self.trace.is_some()) {
            return Err(SimError::Workload(
                "arrivals.drain_stages applies to independent requests (shared_prefix, doc_qa, \
                 lora), not to chat sessions or traces"
                    .into(),
            ));
        }
        if let Some(c) = &self.chat {
            return Ok(Box::new(chat::ChatGen::new(
                c.clone(),
                clock,
                seed,
                max,
                slo,
                vocab,
            )?));
        }
        match &self.trace {
            Some(t) => Ok(Box::new(trace::TraceGen::load(
                t, base, seed, max, slo, vocab,
            )?)),
            None => Err(SimError::Workload("no workload kind set".into())),
        }
    }
}

/// Label of the sheddable draw.
const SHED_LABEL: u64 = 0x5348_4544;

/// Marks a seeded share of another workload's requests sheddable.
struct Sheddable {
    inner: Box<dyn Workload>,
    share: f64,
    seed: u64,
}

impl Workload for Sheddable {
    fn next_request(&mut self) -> Option<RequestSpec> {
        let mut r = self.inner.next_request()?;
        // A uniform draw in [0, 1) from the request id alone, so a policy
        // comparison sheds the same requests' priority in every run.
        let u = (stream_id(SHED_LABEL, self.seed, r.id) >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.share {
            r.priority = -1;
        }
        Some(r)
    }
}
