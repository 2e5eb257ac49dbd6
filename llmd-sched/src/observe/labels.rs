//! Label values: bounded interning of models and endpoints, and the closed
//! sets of outcomes, decisions and SLO kinds.

use ahash::AHashMap;
use parking_lot::RwLock;
use std::sync::Arc;

/// A label set: static keys, shared values. Hash and Eq make it a family key.
pub type Labels = Vec<(&'static str, Arc<str>)>;

/// Label value used once a cap is reached.
pub const OVERFLOW: &str = "other";
/// Label value for "no endpoint" (rejected requests).
pub const NONE: &str = "none";

/// Longest label value interned; a longer one (a client's 1 MB "model") is
/// [`OVERFLOW`], so no value repeated on every line of a family can bloat the
/// exposition.
pub const MAX_VALUE_BYTES: usize = 256;

/// Interns label values up to a cap; values beyond it, and values over
/// [`MAX_VALUE_BYTES`], map to [`OVERFLOW`], so a host that sends arbitrary
/// model names cannot grow the exposition.
#[derive(Debug)]
pub struct Interner {
    cap: usize,
    values: RwLock<AHashMap<Arc<str>, Arc<str>>>,
    overflow: Arc<str>,
}

impl Interner {
    /// An interner keeping at most `cap` distinct values.
    pub fn new(cap: usize) -> Self {
        Interner {
            cap,
            values: RwLock::new(AHashMap::new()),
            overflow: Arc::from(OVERFLOW),
        }
    }

    /// The shared label value for `v`, or `other` past the cap or the
    /// length limit.
    pub fn get(&self, v: &str) -> Arc<str> {
        if v.len() > MAX_VALUE_BYTES {
            return self.overflow.clone();
        }
        if let Some(found) = self.values.read().get(v) {
            return found.clone();
        }
        let mut w = self.values.write();
        if let Some(found) = w.get(v) {
            return found.clone();
        }
        if w.len() >= self.cap {
            return self.overflow.clone();
        }
        let a: Arc<str> = Arc::from(v);
        w.insert(a.clone(), a.clone());
        a
    }

    /// Frees `v`'s place (its endpoint left), so that the cap counts live
    /// values; series already labelled with it keep their label.
    pub fn release(&self, v: &str) {
        self.values.write().remove(v);
    }

    /// Whether `v` is the overflow value.
    pub fn is_overflow(&self, v: &Arc<str>) -> bool {
        Arc::ptr_eq(v, &self.overflow)
    }
}

/// How a request ended; the `outcome` label of `llmd_inference_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Completed normally.
    Ok,
    /// The engine answered with an error.
    EngineError,
    /// No answer in time.
    Timeout,
    /// The client went away.
    Cancelled,
    /// Connecting to or talking to the endpoint failed.
    TransportError,
    /// Any other failure the host reports.
    OtherError,
    /// Refused by the scheduler: no capacity / all filtered (HTTP 429).
    Rejected429,
    /// Refused by the scheduler: no endpoints at all (HTTP 503).
    Rejected503,
    /// Never completed; dropped by [`super::Metrics::expire`].
    Expired,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::EngineError,
        Outcome::Timeout,
        Outcome::Cancelled,
        Outcome::TransportError,
        Outcome::OtherError,
        Outcome::Rejected429,
        Outcome::Rejected503,
        Outcome::Expired,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::EngineError => "error_engine",
            Outcome::Timeout => "error_timeout",
            Outcome::Cancelled => "error_cancelled",
            Outcome::TransportError => "error_transport",
            Outcome::OtherError => "error_other",
            Outcome::Rejected429 => "rejected_429",
            Outcome::Rejected503 => "rejected_503",
            Outcome::Expired => "expired",
        }
    }

    /// Position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a dispatched request failed (the host's view).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The engine answered with an error status.
    Engine,
    /// No answer in time.
    Timeout,
    /// The client went away.
    Cancelled,
    /// Connect or transport failure.
    Transport,
    /// Anything else.
    Other,
}

impl From<ErrorKind> for Outcome {
    fn from(k: ErrorKind) -> Outcome {
        match k {
            ErrorKind::Engine => Outcome::EngineError,
            ErrorKind::Timeout => Outcome::Timeout,
            ErrorKind::Cancelled => Outcome::Cancelled,
            ErrorKind::Transport => Outcome::TransportError,
            ErrorKind::Other => Outcome::OtherError,
        }
    }
}

/// Why the scheduler refused a request (llm-d's dropped reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// `rejected-saturated`: filters removed every endpoint (HTTP 429).
    Saturated,
    /// `rejected-no-endpoints`: no candidate endpoints (HTTP 503).
    NoEndpoints,
}

impl From<RejectReason> for Outcome {
    fn from(r: RejectReason) -> Outcome {
        match r {
            RejectReason::Saturated => Outcome::Rejected429,
            RejectReason::NoEndpoints => Outcome::Rejected503,
        }
    }
}

/// The P/D outcome of a decision (llm-d's `decision_type`, plus `rejected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PdDecision {
    /// One endpoint prefills and decodes.
    DecodeOnly,
    /// A prefill endpoint computes the KV cache, a decode endpoint generates.
    PrefillDecode,
    /// No target was chosen.
    Rejected,
    /// An encode endpoint encodes the multimodal inputs, the decode
    /// endpoint prefills and decodes (E/PD).
    EncodeDecode,
    /// Encode, prefill and decode on three endpoints (E/P/D).
    EncodePrefillDecode,
}

impl PdDecision {
    /// Every decision, in label order (indexed by the discriminant).
    pub const ALL: [PdDecision; 5] = [
        PdDecision::DecodeOnly,
        PdDecision::PrefillDecode,
        PdDecision::Rejected,
        PdDecision::EncodeDecode,
        PdDecision::EncodePrefillDecode,
    ];

    /// The decision of a pick that ran an encode and/or a prefill profile.
    pub fn of(encode: bool, prefill: bool) -> PdDecision {
        match (encode, prefill) {
            (false, false) => PdDecision::DecodeOnly,
            (false, true) => PdDecision::PrefillDecode,
            (true, false) => PdDecision::EncodeDecode,
            (true, true) => PdDecision::EncodePrefillDecode,
        }
    }

    /// Whether a remote prefill ran.
    pub fn disaggregated_prefill(self) -> bool {
        matches!(
            self,
            PdDecision::PrefillDecode | PdDecision::EncodePrefillDecode
        )
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PdDecision::DecodeOnly => "decode-only",
            PdDecision::PrefillDecode => "prefill-decode",
            PdDecision::Rejected => "rejected",
            PdDecision::EncodeDecode => "encode-decode",
            PdDecision::EncodePrefillDecode => "encode-prefill-decode",
        }
    }
}

/// Which objective a goodput counter refers to (`slo` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SloKind {
    /// Time to first token.
    Ttft,
    /// Time per output token.
    Tpot,
    /// End-to-end latency.
    E2e,
    /// Every objective the request has.
    All,
}

impl SloKind {
    /// Every kind, in label order.
    pub const ALL: [SloKind; 4] = [SloKind::Ttft, SloKind::Tpot, SloKind::E2e, SloKind::All];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Ttft => "ttft",
            SloKind::Tpot => "tpot",
            SloKind::E2e => "e2e",
            SloKind::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_caps_distinct_values() {
        let i = Interner::new(2);
        assert_eq!(&*i.get("a"), "a");
        assert_eq!(&*i.get("b"), "b");
        assert_eq!(&*i.get("c"), OVERFLOW);
        assert_eq!(&*i.get("a"), "a");
    }
}
