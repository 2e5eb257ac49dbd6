//! `predicted-latency-producer`: llm-d's `LatencyPredictionInfo` per
//! candidate — predicted TTFT/TPOT and their headroom against the request's
//! objectives — from the scheduler's in-process online model
//! ([`crate::latency::OnlineLatencyModel`]), or from a host-attached
//! predictor when there is one. Where llm-d calls predictor sidecars, this
//! producer predicts in nanoseconds and learns from the lifecycle calls.

use std::sync::Arc;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, LatencyInfo, Producer};
use crate::latency::{self, LatencyFeatures, OnlineLatencyModel, PredictionSource, TpotRule};

use super::APPROX_PRODUCER;

/// What the scheduler needs to know to train the model.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySettings {
    /// `streamingMode` (false): TTFT is sampled at the first token and TPOT
    /// is predicted, judged and learnt; otherwise TTFT is the whole request
    /// (llm-d's non-streaming rule) and TPOT is not judged.
    pub streaming: bool,
    /// `sloBufferFactor` (1.0, > 0): the TPOT objective is multiplied by it.
    pub slo_buffer: f64,
    /// `endpointRoleLabel`: endpoints whose label has the value `prefill`
    /// are not judged on TPOT.
    pub role_label: Option<String>,
}

/// The producer.
#[derive(Debug)]
pub struct PredictedLatencyProducer {
    /// Training and judging settings.
    pub settings: LatencySettings,
    /// `predictInProduce` (true): false publishes nothing (the SLO plugins
    /// then fail open).
    pub predict_in_produce: bool,
    /// `prefixMatchInfoProducerName`.
    pub prefix_producer: Arc<str>,
    model: Arc<OnlineLatencyModel>,
}

/// A parameter of llm-d's encoder-cache features, which the model does not have.
const SIDECAR_ONLY: &str = "the in-process model has no multimodal encoder features";

impl PredictedLatencyProducer {
    /// Decodes llm-d's parameters; `not_executed` collects those accepted but
    /// not executed.
    pub fn from_params(
        p: &mut Params,
        model: Arc<OnlineLatencyModel>,
        not_executed: &mut Vec<(String, String)>,
    ) -> Result<Self, ConfigError> {
        let slo_buffer = p.f64("sloBufferFactor", 1.0)?;
        if !(slo_buffer > 0.0 && slo_buffer.is_finite()) {
            return Err(p.err("sloBufferFactor", "must be > 0"));
        }
        let streaming = p.bool("streamingMode", false)?;
        let role_label = p.opt_string("endpointRoleLabel")?.filter(|s| !s.is_empty());
        let predict_in_produce = p.bool("predictInProduce", true)?;
        let prefix_producer: Arc<str> = p
            .string("prefixMatchInfoProducerName", APPROX_PRODUCER)?
            .into();
        // Deprecated and ignored by llm-d too.
        for k in ["samplingMean", "maxDecodeTokenSamplesForPrediction"] {
            p.note_not_executed(
                not_executed,
                k,
                "deprecated; ignored (llm-d ignores it too)",
            );
            p.opt_f64(k)?;
        }
        p.note_not_executed(
            not_executed,
            "contextTTL",
            "requests leave the model's in-flight accounting at on_complete / on_error, not after a TTL",
        );
        p.opt_duration_ns("contextTTL")?;
        if p.bool("useEncoderCacheFeatures", false)? {
            not_executed.push((
                "useEncoderCacheFeatures".into(),
                "the in-process model has no multimodal encoder features".into(),
            ));
        }
        p.note_not_executed(
            not_executed,
            "encoderCacheMatchInfoProducerName",
            SIDECAR_ONLY,
        );
        p.opt_string("encoderCacheMatchInfoProducerName")?;
        Ok(PredictedLatencyProducer {
            settings: LatencySettings {
                streaming,
                slo_buffer,
                role_label,
            },
            predict_in_produce,
            prefix_producer,
            model,
        })
    }
}

/// Reads the model's inputs for the request in a cycle, endpoint by
/// endpoint; what is the same for every endpoint is looked up once.
struct FeatureReader<'r, 'c> {
    ctx: &'r CycleContext<'c>,
    input: f64,
    /// The prefix source's matches and the request's block count.
    prefix: Option<&'r crate::framework::PrefixInfo>,
}

impl<'r, 'c> FeatureReader<'r, 'c> {
    fn new(ctx: &'r CycleContext<'c>, prefix_producer: &str) -> Self {
        FeatureReader {
            ctx,
            input: ctx.prompt_tokens() as f64,
            prefix: ctx.prefix_info(prefix_producer),
        }
    }

    /// The model's inputs on endpoint `i`.
    fn features(&self, i: EndpointIndex) -> LatencyFeatures {
        let (ctx, input) = (self.ctx, self.input);
        let ep = ctx.endpoint(i);
        let score = self
            .prefix
            .map_or(0.0, |info| info.ratio(i).clamp(0.0, 1.0));
        // The uncached prompt from this producer's own prefix source when it
        // has one (the in-flight producer may read another), else the
        // in-flight producer's `UncachedRequestTokens`.
        let inflight_uncached = ctx.uncached_tokens(i);
        let uncached = match (self.prefix, inflight_uncached) {
            (Some(_), _) | (None, None) => input * (1.0 - score),
            (None, Some(u)) => u as f64,
        };
        // Running requests: the router's in-flight count when the in-flight
        // producer keeps one, else the scraped count.
        let running = if inflight_uncached.is_some() {
            ep.inflight_requests().max(0) as f64
        } else {
            f64::from(ep.running_requests_size())
        };
        LatencyFeatures {
            input_tokens: input,
            uncached_tokens: uncached,
            inflight_prefill_tokens: ep.inflight_tokens().max(0) as f64,
            waiting: f64::from(ep.waiting_queue_size()),
            running,
            // A host's NaN would predict 0 ms there (clamp keeps NaN): read
            // as empty.
            kv_usage: nan_as_zero(ep.kv_cache_usage()).clamp(0.0, 1.0),
            step_wait_ms: 0.0, // set by the predictor from the endpoint's step clock
        }
    }
}

/// `v`, or 0 when it is NaN.
fn nan_as_zero(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

impl Producer for PredictedLatencyProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let mut out: Vec<Option<LatencyInfo>> = vec![None; ctx.endpoints().len()];
        let req = ctx.request();
        let ttft_slo = req.ttft_slo_ms().filter(|v| *v > 0.0).unwrap_or(0.0);
        let tpot_slo = req.tpot_slo_ms().filter(|v| *v > 0.0).unwrap_or(0.0);
        let predictor = self.model.predictor();
        let reader = FeatureReader::new(ctx, &self.prefix_producer);
        for &i in candidates {
            let mut f = reader.features(i);
            let uid = ctx.endpoint(i).uid();
            let model = predictor.predict(uid, &mut f, ctx.now_ns());
            let mut info = LatencyInfo {
                features: f,
                prediction: None,
                source: None,
                ttft_valid: false,
                tpot_valid: false,
                ttft_headroom_ms: 0.0,
                tpot_headroom_ms: 0.0,
                dispatched: model.dispatched,
                prefill_ms_per_token: 0.0,
            };
            if self.predict_in_produce {
                let (p, source) = match ctx.predict(i) {
                    Some(p) => (p, PredictionSource::Host),
                    None => (model.latency, model.source),
                };
                let prefill = self
                    .settings
                    .role_label
                    .as_deref()
                    .is_some_and(|l| ctx.endpoint(i).label(l) == Some("prefill"));
                let rule = TpotRule {
                    judged: self.settings.streaming && !prefill,
                    buffer: self.settings.slo_buffer,
                    endpoint_min_ms: model.min_tpot_slo_ms,
                };
                let (tv, pv, th, ph) = latency::headroom(&p, ttft_slo, tpot_slo, rule);
                info.prediction = Some(p);
                info.source = Some(source);
                info.ttft_valid = tv;
                info.tpot_valid = pv;
                info.ttft_headroom_ms = th;
                info.tpot_headroom_ms = ph;
                info.prefill_ms_per_token = model.prefill_ms_per_token;
            }
            out[i] = Some(info);
        }
        drop(predictor);
        ctx.set_latency_info(out);
    }

    fn on_endpoint_removed(&self, uid: u64) {
        self.model.forget(uid);
    }
}
