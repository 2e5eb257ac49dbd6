//! Per-request facts derived once and shared by every stage of one cycle.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use super::Note;
use crate::error::ScheduleError;
use crate::model::{EndpointState, EndpointTag, Prompt, Request};
use crate::plugins::producers::BurstSlot;

/// Index of an endpoint in the cycle's endpoint snapshot ([`CycleContext::endpoint`]).
pub type EndpointIndex = usize;

/// What one prefix producer found for one endpoint (llm-d `PrefixCacheMatchInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PrefixMatch {
    /// Matched blocks; tier-weighted and truncated for the precise producer.
    pub match_blocks: u32,
    /// Unweighted consecutive matched blocks (`cachedBlockCount`).
    pub cached_blocks: u32,
}

/// One producer's prefix-match output for the whole snapshot.
#[derive(Clone, Debug, Default)]
pub struct PrefixInfo {
    /// Producer instance name (the data key consumers bind to).
    pub producer: Arc<str>,
    /// Tokens per block.
    pub block_size: u32,
    /// Number of blocks the prompt hashed into.
    pub total_blocks: u32,
    /// Block positions the producer's index lookups probed (summed over its
    /// lookups; a verified-prefix checkpoint lets a lookup skip most of a
    /// long prompt). Counted in `llmd_kvindex_lookup_blocks`.
    pub probed_blocks: u32,
    /// Blocks the producer's index lookups were asked about (the prompt's
    /// blocks once per lookup).
    pub queried_blocks: u32,
    /// Per endpoint index; `None` for endpoints the producer did not look at.
    pub matches: Vec<Option<PrefixMatch>>,
    /// The request's block keys, kept for the producer's post-decision hook.
    pub keys: Vec<u64>,
    /// The endpoint under whose served model `keys` were formed, where the
    /// keys depend on the model (`None`: they do not, or no candidate).
    pub key_endpoint: Option<EndpointIndex>,
}

impl PrefixInfo {
    /// The match for one endpoint, if the producer produced one.
    pub fn get(&self, ep: EndpointIndex) -> Option<PrefixMatch> {
        self.matches.get(ep).copied().flatten()
    }
    /// `matchBlocks / totalBlocks` for an endpoint; 0 when missing or empty.
    pub fn ratio(&self, ep: EndpointIndex) -> f64 {
        match self.get(ep) {
            Some(m) if self.total_blocks > 0 => m.match_blocks as f64 / self.total_blocks as f64,
            _ => 0.0,
        }
    }
}

/// A finished profile run.
#[derive(Clone, Debug, Default)]
pub struct ProfileRunResult {
    /// Picked endpoints, in preference order.
    pub targets: Vec<EndpointIndex>,
    /// Every scored endpoint with its combined score.
    pub scored: Vec<(EndpointIndex, f64)>,
}

/// The shared state of one scheduling cycle.
pub struct CycleContext<'a> {
    request: &'a Request,
    now_ns: u64,
    endpoints: &'a [Arc<EndpointState>],
    /// The endpoints' tags side by side (`with_tags`); empty: read from
    /// each endpoint.
    tags: &'a [EndpointTag],
    tokens: Cow<'a, [u32]>,
    tokens_estimated: bool,
    prefix: Vec<PrefixInfo>,
    uncached: Option<Vec<u64>>,
    peer: Option<EndpointIndex>,
    results: Vec<Option<ProfileRunResult>>,
    errors: Vec<Option<ScheduleError>>,
    rng: RefCell<fastrand::Rng>,
    notes: Vec<Note>,
    screens: Vec<ScreenReport>,
    predictor: Option<&'a dyn LatencyPredictor>,
    latency: Option<Vec<Option<LatencyInfo>>>,
    encoder: Option<Vec<Option<(u32, u32)>>>,
    /// What `pick_batch` decided for this request, per burst producer.
    burst: &'a [(Arc<str>, BurstSlot)],
    /// Burst producers whose assigned replica was not among the candidates.
    burst_absent: Vec<Arc<str>>,
    /// Serial number of the request's opening in the scheduler.
    opening: u64,
}

/// Predicted latencies of one request on one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct LatencyPrediction {
    /// Predicted time to first token, milliseconds.
    pub ttft_ms: f64,
    /// Predicted time per output token, milliseconds (`None`: not known yet).
    pub tpot_ms: Option<f64>,
}

/// llm-d's `LatencyPredictionInfo` for one endpoint, as the
/// `predicted-latency-producer` publishes it, with the inputs it came from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LatencyInfo {
    /// The model's inputs for this request on this endpoint.
    pub features: crate::latency::LatencyFeatures,
    /// The prediction, if any model (or the host's predictor) gave one.
    pub prediction: Option<LatencyPrediction>,
    /// Which model answered.
    pub source: Option<crate::latency::PredictionSource>,
    /// Predicted TTFT below the request's TTFT objective (0 when it has none).
    pub ttft_valid: bool,
    /// Predicted TPOT below the buffered TPOT objective; true when TPOT is
    /// not judged (not streaming, or a prefill endpoint).
    pub tpot_valid: bool,
    /// TTFT objective − predicted TTFT, ms.
    pub ttft_headroom_ms: f64,
    /// Buffered TPOT objective − predicted TPOT, ms (0 when not judged).
    pub tpot_headroom_ms: f64,
    /// Requests dispatched there and not finished.
    pub dispatched: u32,
    /// What one more uncached prompt token adds to the predicted TTFT there
    /// (ms): the in-process model's weight of the uncached prompt (llm-d's
    /// throughput heuristic before anything is learnt), also when a host's
    /// predictor gave the prediction; 0 with `predictInProduce: false`.
    pub prefill_ms_per_token: f64,
}

impl LatencyInfo {
    /// llm-d's `IsValid`: both objectives predicted to be met.
    pub fn is_valid(&self) -> bool {
        self.ttft_valid && self.tpot_valid
    }
}

/// What a screener did to one request, for the metrics: the revision
/// shares it drew from, and a strict selector that matched nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScreenReport {
    /// The screener's instance name.
    pub plugin: String,
    /// Every revision it observed, with its traffic share (0: incomplete),
    /// when they changed (the registered endpoints did); `None` otherwise.
    pub shares: Option<Vec<(String, f64)>>,
    /// The strict selector (by name) that left no endpoint, if one did.
    pub strict_no_match: Option<String>,
}

/// A host-supplied latency model (llm-d's `LatencyPredictionInfo` producer).
pub trait LatencyPredictor: Send + Sync {
    /// Prediction for the request in `ctx` on endpoint `ep`, if the model has one.
    fn predict(&self, ctx: &CycleContext<'_>, ep: EndpointIndex) -> Option<LatencyPrediction>;
}

impl<'a> CycleContext<'a> {
    /// A context for `request` over `endpoints` at `now_ns`; `profiles` is the
    /// number of scheduling profiles (result slots).
    pub fn new(
        request: &'a Request,
        endpoints: &'a [Arc<EndpointState>],
        now_ns: u64,
        profiles: usize,
        seed: u64,
    ) -> Self {
        let tokens = match &request.prompt {
            Prompt::Tokens(t) => Cow::Borrowed(t.as_slice()),
            Prompt::Text(_) => Cow::Borrowed(&[][..]),
        };
        CycleContext {
            request,
            now_ns,
            endpoints,
            tags: &[],
            tokens,
            tokens_estimated: false,
            prefix: Vec::new(),
            uncached: None,
            peer: None,
            results: vec![None; profiles],
            errors: vec![None; profiles],
            rng: RefCell::new(fastrand::Rng::with_seed(seed)),
            notes: Vec::new(),
            screens: Vec::new(),
            predictor: None,
            latency: None,
            encoder: None,
            burst: &[],
            burst_absent: Vec::new(),
            opening: 0,
        }
    }

    /// Sets the serial number under which the scheduler opens this request
    /// ([`CycleContext::opening`]).
    pub fn with_opening(mut self, serial: u64) -> Self {
        self.opening = serial;
        self
    }

    /// The serial number under which the scheduler opens this cycle's
    /// request (0 outside a scheduler). Tables that follow the request by
    /// id keep it, so that releasing an old request never releases a newer
    /// one that reused its id.
    pub fn opening(&self) -> u64 {
        self.opening
    }

    /// Attaches the endpoints' tags, one per endpoint in snapshot order,
    /// equal to their [`EndpointState::tag`].
    pub(crate) fn with_tags(mut self, tags: &'a [EndpointTag]) -> Self {
        debug_assert!(tags.is_empty() || tags.len() == self.endpoints.len());
        self.tags = tags;
        self
    }

    /// Endpoint `i`'s [`EndpointTag`] (its uid, model key and role): what
    /// passes over the whole fleet should read instead of the endpoint.
    #[inline]
    pub fn tag(&self, i: EndpointIndex) -> EndpointTag {
        match self.tags.get(i) {
            Some(&t) => t,
            None => self.endpoint(i).tag(),
        }
    }

    /// Attaches what a batch decided for this request (`pick_batch`).
    pub fn with_burst(mut self, slots: &'a [(Arc<str>, BurstSlot)]) -> Self {
        self.burst = slots;
        self
    }

    /// What the batch decided for this request at burst producer `producer`;
    /// `None` outside a batch (a plain `pick`).
    pub fn burst_slot(&self, producer: &str) -> Option<BurstSlot> {
        self.burst
            .iter()
            .find(|(n, _)| &**n == producer)
            .map(|(_, s)| *s)
    }

    /// Attaches a latency predictor for this cycle.
    pub fn with_predictor(mut self, predictor: Option<&'a dyn LatencyPredictor>) -> Self {
        self.predictor = predictor;
        self
    }

    /// Predicted latencies on an endpoint; `None` without a predictor or a
    /// prediction. A TTFT that is not a finite number ≥ 0 is no prediction
    /// (the scheduler's own model then predicts), and a TPOT that is not
    /// finite is an unknown one: a NaN would otherwise sort as a positive
    /// headroom in one plugin and a negative one in another.
    pub fn predict(&self, ep: EndpointIndex) -> Option<LatencyPrediction> {
        let p = self.predictor.and_then(|p| p.predict(self, ep))?;
        (p.ttft_ms.is_finite() && p.ttft_ms >= 0.0).then(|| LatencyPrediction {
            ttft_ms: p.ttft_ms,
            tpot_ms: p.tpot_ms.filter(|t| t.is_finite()),
        })
    }

    /// True when a latency predictor is attached.
    pub fn has_predictor(&self) -> bool {
        self.predictor.is_some()
    }

    /// The `predicted-latency-producer`'s output for an endpoint (with or
    /// without a prediction); `None` when no such producer ran or it did not
    /// look at the endpoint.
    pub fn latency_info(&self, ep: EndpointIndex) -> Option<&LatencyInfo> {
        self.latency.as_ref()?.get(ep)?.as_ref()
    }

    /// True when a `predicted-latency-producer` ran in this cycle.
    pub fn has_latency_info(&self) -> bool {
        self.latency.is_some()
    }

    /// Publishes the latency producer's output (one entry per endpoint index).
    pub fn set_latency_info(&mut self, per_endpoint: Vec<Option<LatencyInfo>>) {
        self.latency = Some(per_endpoint);
    }

    /// `EncoderCacheMatchInfo` of an endpoint: (request items its encoder
    /// cache holds, request items), from `mm-embeddings-cache-producer`.
    pub fn encoder_match(&self, ep: EndpointIndex) -> Option<(u32, u32)> {
        *self.encoder.as_ref()?.get(ep)?
    }

    /// Publishes `EncoderCacheMatchInfo` (one entry per endpoint index).
    pub fn set_encoder_matches(&mut self, per_endpoint: Vec<Option<(u32, u32)>>) {
        self.encoder = Some(per_endpoint);
    }

    /// Takes the latency producer's output (for the decision record).
    pub(crate) fn take_latency_info(&mut self) -> Option<Vec<Option<LatencyInfo>>> {
        self.latency.take()
    }

    /// The request.
    pub fn request(&self) -> &Request {
        self.request
    }
    /// Cycle time in clock nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }
    /// The endpoint snapshot the cycle runs over.
    pub fn endpoints(&self) -> &[Arc<EndpointState>] {
        self.endpoints
    }
    /// One endpoint of the snapshot.
    pub fn endpoint(&self, i: EndpointIndex) -> &EndpointState {
        &self.endpoints[i]
    }
    /// Prompt token ids: the request's own, or the token producer's output for text.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    /// True when the tokens are the `estimate` backend's pseudo-tokens.
    pub fn tokens_estimated(&self) -> bool {
        self.tokens_estimated
    }
    /// Prompt length in tokens (0 when the prompt is text and no producer ran).
    pub fn prompt_tokens(&self) -> usize {
        self.tokens.len()
    }
    /// Sets the tokenized prompt (token producers only).
    pub fn set_tokens(&mut self, tokens: Vec<u32>, estimated: bool) {
        self.tokens = Cow::Owned(tokens);
        self.tokens_estimated = estimated;
    }
    /// Prefix-match output of the named producer.
    pub fn prefix_info(&self, producer: &str) -> Option<&PrefixInfo> {
        self.prefix.iter().find(|p| &*p.producer == producer)
    }
    /// Every producer's prefix-match output.
    pub fn prefix_infos(&self) -> &[PrefixInfo] {
        &self.prefix
    }
    /// Stores a producer's prefix-match output (replacing an earlier one of the same name).
    pub fn set_prefix_info(&mut self, info: PrefixInfo) {
        self.prefix.retain(|p| p.producer != info.producer);
        self.prefix.push(info);
    }
    /// This request's uncached prompt tokens per endpoint (`UncachedRequestTokens`).
    pub fn uncached_tokens(&self, ep: EndpointIndex) -> Option<u64> {
        self.uncached.as_ref().and_then(|u| u.get(ep).copied())
    }
    /// Sets `UncachedRequestTokens` for the snapshot (in-flight producer only).
    pub fn set_uncached_tokens(&mut self, per_endpoint: Vec<u64>) {
        self.uncached = Some(per_endpoint);
    }
    /// The peer endpoint published by the profile handler (decode pick during prefill).
    pub fn peer(&self) -> Option<EndpointIndex> {
        self.peer
    }
    /// Publishes the peer endpoint.
    pub fn set_peer(&mut self, peer: Option<EndpointIndex>) {
        self.peer = peer;
    }
    /// Result of profile `i`, if it ran and succeeded.
    pub fn result(&self, profile: usize) -> Option<&ProfileRunResult> {
        self.results.get(profile).and_then(Option::as_ref)
    }
    /// Why profile `i` failed, if it ran and failed.
    pub fn error(&self, profile: usize) -> Option<&ScheduleError> {
        self.errors.get(profile).and_then(Option::as_ref)
    }
    pub(crate) fn set_result(
        &mut self,
        profile: usize,
        r: Result<ProfileRunResult, ScheduleError>,
    ) {
        if profile < self.results.len() {
            match r {
                Ok(v) => self.results[profile] = Some(v),
                Err(e) => self.errors[profile] = Some(e),
            }
        }
    }
    /// A uniform draw in [0, 1) from the cycle's seeded generator.
    pub fn random_f64(&self) -> f64 {
        self.rng.borrow_mut().f64()
    }
    /// Shuffles a slice with the cycle's seeded generator.
    pub fn shuffle<T>(&self, items: &mut [T]) {
        self.rng.borrow_mut().shuffle(items);
    }
    /// Adds a line to the decision's explanation (formatted only if the
    /// explanation is built).
    pub fn note(&mut self, line: impl Into<Note>) {
        self.notes.push(line.into());
    }
    /// Reports that burst producer `producer` found its assigned replica
    /// missing from the candidates (screened out, or gone since the batch
    /// was assigned), for the scheduler's metrics.
    pub fn report_burst_absent(&mut self, producer: Arc<str>) {
        self.burst_absent.push(producer);
    }
    /// The burst producers [`CycleContext::report_burst_absent`] named.
    pub fn take_burst_absent(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.burst_absent)
    }
    /// Reports what a screener did, for the scheduler's metrics.
    pub fn report_screen(&mut self, report: ScreenReport) {
        self.screens.push(report);
    }
    pub(crate) fn take_screens(&mut self) -> Vec<ScreenReport> {
        std::mem::take(&mut self.screens)
    }
    pub(crate) fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }
}
