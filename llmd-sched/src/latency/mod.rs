//! In-process latency prediction: an online model per endpoint of the time
//! to first token (TTFT) and time per output token (TPOT) a request will see
//! there, learnt from the lifecycle calls a host already makes (no sidecar).
//!
//! * **Inputs** ([`LatencyFeatures`]) are what llm-d's predictor is given —
//!   prompt length, prefix match, the router's in-flight requests and prompt
//!   tokens, scraped waiting requests and KV usage — with the uncached prompt
//!   (prompt × unmatched share) computed explicitly, since TTFT is
//!   physically queueing plus prefill of what is not cached — and, beyond
//!   llm-d's inputs, the wait for the engine step in flight: token arrivals
//!   (`on_first_token`, `on_tokens`) mark the endpoint's step ends, and a
//!   new request waits for the current step before its prefill starts.
//! * **Model** ([`Rls`]): a linear fit per endpoint by recursive least
//!   squares in information form — O(1) memory and an O(features³) update
//!   per sample (a few hundred operations), a prediction in a few
//!   nanoseconds — with exponential forgetting (about the last 200 samples)
//!   so it follows drift and restarts, a small relative ridge so an input
//!   the samples never vary along stays out of the fit instead of drifting,
//!   and clipped residuals so a stalled request does not drag it. TTFT is fitted on
//!   relative error and for the median: each sample is weighted by the
//!   inverse of its current residual (online reweighted least absolute
//!   deviation), which measured better than the mean fit. llm-d refits an
//!   XGBoost model in a sidecar; the comparison on the simulator is in
//!   docs/benchmarks.md.
//! * **Samples**: TTFT at the first token (or, outside streaming mode, the
//!   whole request, as llm-d records it); TPOT at completion,
//!   `(end − first token) / (output tokens − 1)`. Both against the features
//!   of the endpoint the request went to, as they were at dispatch.
//! * **Cold start**: an endpoint's own model answers after
//!   [`MIN_SAMPLES`]; before that the pooled model of all endpoints, and
//!   before anything is learnt llm-d's throughput heuristic for TTFT (and no
//!   TPOT).
//! * **Reads**: a pick reads each endpoint's weights through a sequence
//!   lock (`snapshot.rs`), so predicting never takes a lock a trainer holds.
//!
//! The `predicted-latency-producer` plugin turns predictions into llm-d's
//! `LatencyPredictionInfo` (headroom against the request's objectives) for
//! `latency-scorer`, `slo-headroom-tier-filter` and `latency-slo-admitter`.

mod admitter;
mod headroom;
mod model;
mod rls;
mod snapshot;

pub use admitter::admit;
pub use headroom::{headroom, view, LatencyView, TpotRule};
pub use model::{
    LatencyFeatures, OnlineLatencyModel, Prediction, PredictionSource, Predictor, FORGETTING,
    MIN_SAMPLES, PEAK_PREFILL_TPS, TPOT_SAMPLE_MS,
};
pub use rls::Rls;
