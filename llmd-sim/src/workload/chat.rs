//! Multi-turn chat: sessions arrive by the arrival process; each turn's
//! prompt is the whole conversation so far (system prompt, earlier user
//! messages and the model's earlier replies, token for token) plus a new
//! message. Turns follow each other after an exponential think time
//! (open loop: a turn does not wait for the previous reply to finish).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ArrivalClock, Workload};
use crate::error::{Result, SimError};
use crate::request::{RequestSpec, Slo};
use crate::tokens::{push_tokens, stream_id};

const SYSTEM: u64 = 0x0053_5953;
const USER: u64 = 0x5553_4552;
const REPLY: u64 = 0x5245_504C;

/// Multi-turn chat parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// Turns per session.
    pub turns: u32,
    /// Shared system prompt tokens.
    pub system_prompt_len: u32,
    /// Tokens per user message.
    pub user_len: u32,
    /// Tokens per reply.
    pub output_len: u32,
    /// Mean think time between turns, seconds.
    pub think_time_s: f64,
}

#[derive(PartialEq)]
struct Turn {
    at: f64,
    session: u64,
    turn: u32,
}

impl Eq for Turn {}

impl Ord for Turn {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on time; ties by session then turn, for determinism.
        o.at.total_cmp(&self.at)
            .then(o.session.cmp(&self.session))
            .then(o.turn.cmp(&self.turn))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

pub(super) struct ChatGen {
    c: Chat,
    clock: ArrivalClock,
    pending: BinaryHeap<Turn>,
    next_start: Option<f64>,
    sessions: u64,
    rng: fastrand::Rng,
    next_id: u64,
    max: u64,
    slo: Slo,
    vocab: u32,
    seed: u64,
}

impl ChatGen {
    pub(super) fn new(
        c: Chat,
        mut clock: ArrivalClock,
        seed: u64,
        max: u64,
        slo: Slo,
        vocab: u32,
    ) -> Result<Self> {
        if c.turns == 0
            || c.output_len == 0
            || !(0.0..=1.0 / super::arrivals::MIN_RATE).contains(&c.think_time_s)
        {
            return Err(SimError::Workload(format!(
                "chat needs turns > 0, output_len > 0, and think_time_s within 0..=1 year \
                 (a longer mean draws pauses that overflow to an infinite time), got {}",
                c.think_time_s
            )));
        }
        // The first turn's prompt, and the last turn's whole context.
        super::shapes::prompt_len(
            "chat first prompt (system_prompt_len + user_len)",
            u64::from(c.system_prompt_len) + u64::from(c.user_len),
        )?;
        super::shapes::prompt_len(
            "chat context at the last turn (system_prompt_len + turns x (user_len + output_len))",
            u64::from(c.system_prompt_len)
                + u64::from(c.turns) * (u64::from(c.user_len) + u64::from(c.output_len)),
        )?;
        let next_start = clock.next_arrival();
        Ok(ChatGen {
            c,
            clock,
            pending: BinaryHeap::new(),
            next_start,
            sessions: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0xC4A7),
            next_id: 0,
            max,
            slo,
            vocab,
            seed,
        })
    }

    fn reply_seed(&self, session: u64, turn: u32) -> u64 {
        stream_id(REPLY, self.seed, (session << 20) | u64::from(turn))
    }

    fn prompt(&self, session: u64, turn: u32) -> Vec<u32> {
        let c = &self.c;
        let len = c.system_prompt_len + (turn + 1) * c.user_len + turn * c.output_len;
        let mut p = Vec::with_capacity(len as usize);
        push_tokens(
            &mut p,
            stream_id(SYSTEM, self.seed, 0),
            0,
            c.system_prompt_len.into(),
            self.vocab,
        );
        for j in 0..=turn {
            let user = stream_id(USER, self.seed, (session << 20) | u64::from(j));
            push_tokens(&mut p, user, 0, c.user_len.into(), self.vocab);
            if j < turn {
                push_tokens(
                    &mut p,
                    self.reply_seed(session, j),
                    0,
                    c.output_len.into(),
                    self.vocab,
                );
            }
        }
        p
    }
}

impl Workload for ChatGen {
    fn next_request(&mut self) -> Option<RequestSpec> {
        if self.next_id >= self.max {
            return None;
        }
        let take_start = match (self.pending.peek(), self.next_start) {
            (Some(t), Some(s)) => s < t.at,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return None,
        };
        let turn = if take_start {
            let at = self.next_start?;
            self.next_start = self.clock.next_arrival();
            self.sessions += 1;
            Turn {
                at,
                session: self.sessions,
                turn: 0,
            }
        } else {
            self.pending.pop()?
        };
        if turn.turn + 1 < self.c.turns {
            let think = -self.rng.f64().max(1e-300).ln() * self.c.think_time_s;
            self.pending.push(Turn {
                at: turn.at + think,
                session: turn.session,
                turn: turn.turn + 1,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        Some(RequestSpec {
            id,
            arrival: turn.at,
            prompt: Arc::from(self.prompt(turn.session, turn.turn)),
            output_len: self.c.output_len,
            output_seed: self.reply_seed(turn.session, turn.turn),
            lora: None,
            session: Some(format!("session-{}", turn.session)),
            group: None,
            slo: self.slo,
            priority: 0,
            stage: None,
        })
    }
}
