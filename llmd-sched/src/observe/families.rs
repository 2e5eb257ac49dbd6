//! Every metric family, its name, help text and buckets: the single place
//! that defines the exposition (docs/metrics.md mirrors this file).

use super::config::{Buckets, MetricsConfig};
use super::histogram::{AtomicHistogram, HistogramCtor};
use super::labels::Labels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A labelled counter family.
pub type CounterFamily = Family<Labels, Counter>;
/// A labelled gauge family.
pub type GaugeFamily = Family<Labels, Gauge>;
/// A labelled histogram family with fixed bounds.
pub type HistogramFamily = Family<Labels, AtomicHistogram, HistogramCtor>;

/// Bounds of `llmd_latency_prediction_error_ratio`.
const PREDICTION_ERROR_BOUNDS: [f64; 12] = [
    0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0,
];

fn hist(b: &Buckets) -> HistogramFamily {
    Family::new_with_constructor(HistogramCtor(b.bounds().clone()))
}

/// The metric families of one [`super::Metrics`].
#[derive(Debug)]
pub struct Families {
    // Requests (labels in comments).
    /// model, pool, profile, endpoint, outcome.
    pub requests: CounterFamily,
    /// model, pool, profile, endpoint, outcome — same labels as `requests`.
    pub output_tokens: HistogramFamily,
    /// model, pool.
    pub input_tokens: HistogramFamily,
    /// model, pool.
    pub cached_tokens: HistogramFamily,
    // Latency.
    /// model, pool.
    pub ttft: HistogramFamily,
    /// model, pool.
    pub tpot: HistogramFamily,
    /// model, pool.
    pub itl: HistogramFamily,
    /// model, pool.
    pub e2e: HistogramFamily,
    /// model, pool.
    pub queue: HistogramFamily,
    /// model, pool, mode.
    pub prefill: HistogramFamily,
    /// model, pool, mode.
    pub decode: HistogramFamily,
    /// model, pool.
    pub handoff: HistogramFamily,
    /// model, pool.
    pub pd_transfer_blocks: HistogramFamily,
    /// model, pool.
    pub pd_transfer_bytes: HistogramFamily,
    // Goodput.
    /// model, pool, slo.
    pub slo_met: CounterFamily,
    /// model, pool, slo.
    pub slo_evaluated: CounterFamily,
    // KV cache.
    /// model, pool.
    pub kv_requests: CounterFamily,
    /// model, pool.
    pub kv_hits: CounterFamily,
    /// model, pool.
    pub kv_predicted_hits: CounterFamily,
    /// model, pool.
    pub kv_prompt_tokens: CounterFamily,
    /// model, pool, source.
    pub kv_cached_tokens: CounterFamily,
    /// model, pool.
    pub kv_predicted_blocks: HistogramFamily,
    // Routing.
    /// model, decision.
    pub decisions: CounterFamily,
    /// profile.
    pub routing_score: HistogramFamily,
    /// profile, scorer.
    pub scorer_score: HistogramFamily,
    /// profile.
    pub score_margin: HistogramFamily,
    /// stage.
    pub scheduler_duration: HistogramFamily,
    /// endpoint, pool.
    pub inflight_requests: GaugeFamily,
    /// endpoint, pool.
    pub inflight_tokens: GaugeFamily,
    // Index and event streams.
    /// endpoint, tier.
    pub index_blocks: GaugeFamily,
    /// endpoint.
    pub events_applied: CounterFamily,
    /// endpoint.
    pub unknown_tags: CounterFamily,
    /// endpoint.
    pub decode_errors: CounterFamily,
    /// endpoint, reason.
    pub blocks_skipped: CounterFamily,
    /// endpoint, from, to.
    pub block_moves: CounterFamily,
    /// kind (queried | probed): blocks of the prefix producers' index lookups.
    pub lookup_blocks: CounterFamily,
    /// endpoint, pool: the engine's own KV-cache usage (0 to 1).
    pub engine_kv_usage: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// endpoint, pool: the engine's KV-cache capacity in blocks.
    pub engine_kv_blocks: GaugeFamily,
    /// endpoint, pool: bytes of one KV block.
    pub engine_kv_block_bytes: GaugeFamily,
    /// endpoint: the latency model's TTFT prediction for each request's target at dispatch.
    pub predicted_ttft: HistogramFamily,
    /// endpoint: the same for TPOT.
    pub predicted_tpot: HistogramFamily,
    /// endpoint, kind (ttft | tpot): |predicted − measured| / measured.
    pub prediction_error: HistogramFamily,
    /// Endpoints refused because a prefix index had no free slot.
    pub endpoints_refused: Counter,
    /// producer: a prefix index's occupied table entries.
    pub index_entries: GaugeFamily,
    /// producer: its capacity in entries.
    pub index_capacity: GaugeFamily,
    /// producer, reason (capacity | displacement): entries it evicted.
    pub index_evicted: CounterFamily,
    /// plugin, selector: strict header selections that matched no endpoint.
    pub screen_no_match: CounterFamily,
    /// plugin, outcome: requests of `pick_batch` windows per burst producer.
    pub burst_requests: CounterFamily,
    /// plugin, event: what a plugin's request hook counted.
    pub plugin_events: CounterFamily,
    /// plugin, revision: a rollout screener's current traffic share.
    pub revision_share: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// header.
    pub trace_context_invalid: CounterFamily,
    /// reason: OpenAI bodies picked on estimated token ids.
    pub prompts_estimated: CounterFamily,
    /// endpoint.
    pub sequence_gaps: CounterFamily,
    /// endpoint.
    pub stream_restarts: CounterFamily,
    /// endpoint (milli-seconds resolution, exposed as seconds).
    pub staleness: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    // Self-observation.
    /// Requests in the lifecycle table.
    pub tracked: Gauge,
    /// Requests not tracked because the table was full.
    pub untracked: Counter,
    /// Open requests the scheduler expired at its limit.
    pub expired_at_limit: Counter,
    /// Lifecycle calls for request ids that are not tracked.
    pub unknown_calls: Counter,
}

impl Families {
    /// Builds every family from `cfg`, with SLO thresholds as bucket edges.
    pub fn new(cfg: &MetricsConfig) -> Families {
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
        let slo = cfg.default_slo;
        let ttft_b = cfg.ttft_buckets.with_edges(secs(slo.ttft));
        let itl_b = cfg.itl_buckets.with_edges(secs(slo.tpot));
        let e2e_b = cfg.e2e_buckets.with_edges(secs(slo.e2e));
        Families {
            requests: Family::default(),
            output_tokens: hist(&cfg.token_buckets),
            input_tokens: hist(&cfg.token_buckets),
            cached_tokens: hist(&cfg.token_buckets),
            ttft: hist(&ttft_b),
            tpot: hist(&itl_b),
            itl: hist(&itl_b),
            e2e: hist(&e2e_b),
            queue: hist(&cfg.queue_buckets),
            prefill: hist(&cfg.prefill_buckets),
            decode: hist(&e2e_b),
            handoff: hist(&cfg.queue_buckets),
            pd_transfer_blocks: hist(&cfg.block_buckets),
            pd_transfer_bytes: hist(&cfg.byte_buckets),
            slo_met: Family::default(),
            slo_evaluated: Family::default(),
            kv_requests: Family::default(),
            kv_hits: Family::default(),
            kv_predicted_hits: Family::default(),
            kv_prompt_tokens: Family::default(),
            kv_cached_tokens: Family::default(),
            kv_predicted_blocks: hist(&cfg.block_buckets),
            decisions: Family::default(),
            routing_score: hist(&cfg.weighted_score_buckets),
            scorer_score: hist(&cfg.score_buckets),
            score_margin: hist(&cfg.margin_buckets),
            scheduler_duration: hist(&cfg.scheduler_buckets),
            inflight_requests: Family::default(),
            inflight_tokens: Family::default(),
            index_blocks: Family::default(),
            events_applied: Family::default(),
            unknown_tags: Family::default(),
            decode_errors: Family::default(),
            blocks_skipped: Family::default(),
            block_moves: Family::default(),
            lookup_blocks: Family::default(),
            engine_kv_usage: Family::default(),
            engine_kv_blocks: Family::default(),
            engine_kv_block_bytes: Family::default(),
            predicted_ttft: hist(&cfg.ttft_buckets),
            predicted_tpot: hist(&cfg.itl_buckets),
            prediction_error: Family::new_with_constructor(HistogramCtor(
                PREDICTION_ERROR_BOUNDS.to_vec().into(),
            )),
            endpoints_refused: Counter::default(),
            index_entries: Family::default(),
            index_capacity: Family::default(),
            index_evicted: Family::default(),
            screen_no_match: Family::default(),
            burst_requests: Family::default(),
            plugin_events: Family::default(),
            revision_share: Family::default(),
            trace_context_invalid: Family::default(),
            prompts_estimated: Family::default(),
            sequence_gaps: Family::default(),
            stream_restarts: Family::default(),
            staleness: Family::default(),
            tracked: Gauge::default(),
            untracked: Counter::default(),
            expired_at_limit: Counter::default(),
            unknown_calls: Counter::default(),
        }
    }

    /// A registry exposing every family under its `llmd_*` name. Counters
    /// get their `_total` suffix from the encoder.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let f = self;
        r.register("llmd_inference_requests", "Requests by their final outcome, counted once when the outcome is known (completion, error, rejection or expiry)", f.requests.clone());
        r.register("llmd_inference_output_tokens", "Output tokens per request, observed with the request's outcome; same labels as llmd_inference_requests_total", f.output_tokens.clone());
        r.register(
            "llmd_inference_input_tokens",
            "Prompt tokens per completed request",
            f.input_tokens.clone(),
        );
        r.register("llmd_inference_cached_tokens", "Prompt tokens the engine reported as served from its prefix cache, per completed request", f.cached_tokens.clone());
        r.register("llmd_inference_ttft", "Time to first token in seconds (first token - arrival at the router); vLLM's buckets plus the default TTFT SLO", f.ttft.clone());
        r.register("llmd_inference_tpot_seconds", "Time per output token per request: (last - first token) / (output tokens - 1); requests with one token are not observed", f.tpot.clone());
        r.register(
            "llmd_inference_inter_token_latency_seconds",
            "Gap between consecutive output tokens, one observation per token",
            f.itl.clone(),
        );
        r.register(
            "llmd_inference_e2e_latency_seconds",
            "Arrival to completion of successful requests",
            f.e2e.clone(),
        );
        r.register(
            "llmd_router_queue_time_seconds",
            "Arrival to scheduling decision inside the router",
            f.queue.clone(),
        );
        r.register("llmd_inference_prefill_time_seconds", "Dispatch to end of prefill: the first token, or the prefill leg's end under P/D when the host reports it; pool is the prefilling endpoint's", f.prefill.clone());
        r.register(
            "llmd_inference_decode_time_seconds",
            "First to last output token on the decode endpoint",
            f.decode.clone(),
        );
        r.register("llmd_inference_pd_kv_transfer_blocks", "P/D only, per request at decision time: KV blocks the decode endpoint receives from the prefill endpoint (the prompt's full blocks minus those predicted cached on the decode endpoint)", f.pd_transfer_blocks.clone());
        r.register("llmd_inference_pd_kv_transfer_bytes", "P/D only: the transfer in bytes (blocks × block size × the model's KV bytes per token, for models with kv_bytes_per_token configured)", f.pd_transfer_bytes.clone());
        r.register("llmd_inference_pd_handoff_seconds", "P/D only: end of the prefill leg to the first token on the decode endpoint (KV transfer and first decode step)", f.handoff.clone());
        r.register("llmd_goodput_requests", "Requests that met the objective named by slo (ttft, tpot, e2e, or all of the request's objectives), counted at completion", f.slo_met.clone());
        r.register("llmd_slo_requests", "Requests evaluated against the objective named by slo, including failed and rejected ones (which never meet it)", f.slo_evaluated.clone());
        r.register(
            "llmd_kvcache_requests",
            "Completed requests whose engine reported prefix-cache usage",
            f.kv_requests.clone(),
        );
        r.register("llmd_kvcache_hits", "Of llmd_kvcache_requests_total: requests with at least one cached prompt token reported by the engine", f.kv_hits.clone());
        r.register("llmd_kvcache_predicted_hits", "Of llmd_kvcache_requests_total: requests for which the router predicted at least one cached block at decision time", f.kv_predicted_hits.clone());
        r.register(
            "llmd_kvcache_prompt_tokens",
            "Prompt tokens of the requests in llmd_kvcache_requests_total",
            f.kv_prompt_tokens.clone(),
        );
        r.register("llmd_kvcache_cached_tokens", "Cached prompt tokens: source=predicted (router's predicted blocks x block size, capped at the prompt) or reported (engine usage)", f.kv_cached_tokens.clone());
        r.register("llmd_kvcache_predicted_hit_blocks", "Blocks of the prompt the router predicted cached on the prefilling endpoint, at decision time", f.kv_predicted_blocks.clone());
        r.register(
            "llmd_router_decisions",
            "Scheduling decisions by P/D outcome (decode-only, prefill-decode, rejected)",
            f.decisions.clone(),
        );
        r.register("llmd_router_routing_score", "Final weighted score of the picked endpoint (plain weighted sum of clamped scorer outputs)", f.routing_score.clone());
        r.register(
            "llmd_router_scorer_score",
            "Raw score of the picked endpoint, one series per scorer",
            f.scorer_score.clone(),
        );
        r.register("llmd_router_score_margin", "Weighted score of the winner minus that of the runner-up (decisions with two or more candidates)", f.score_margin.clone());
        r.register(
            "llmd_router_scheduler_duration_seconds",
            "Scheduler latency per stage",
            f.scheduler_duration.clone(),
        );
        r.register("llmd_router_inflight_requests", "Requests dispatched to the endpoint and not yet finished (prefill endpoints until their leg ends)", f.inflight_requests.clone());
        r.register(
            "llmd_router_inflight_tokens",
            "Prompt plus generated tokens of the endpoint's in-flight requests",
            f.inflight_tokens.clone(),
        );
        r.register(
            "llmd_kvindex_blocks",
            "Blocks the endpoint holds per tier, following its applied KV events (stored minus removed since the last clear)",
            f.index_blocks.clone(),
        );
        r.register(
            "llmd_kvindex_events_applied",
            "KV events applied to the index",
            f.events_applied.clone(),
        );
        r.register(
            "llmd_kvindex_unknown_tags",
            "KV events with a tag the decoder does not know (skipped)",
            f.unknown_tags.clone(),
        );
        r.register(
            "llmd_kvindex_decode_errors",
            "KV event batches that failed to decode",
            f.decode_errors.clone(),
        );
        r.register(
            "llmd_kvindex_blocks_skipped",
            "Blocks (or events, for stale and unknown_medium) of the endpoint's KV events that were not placed in the index, by reason: unknown_parent (router keys: parent or engine key never stored, a parent that ends inside a router block, or too few tokens for a router block), unknown_medium, stale (the endpoint was removed while its batch was applied)",
            f.blocks_skipped.clone(),
        );
        r.register(
            "llmd_kvindex_block_moves",
            "Blocks moved between the endpoint's KV tiers per its events (from, to: gpu, cpu, storage): a block stored in tier `to` that the endpoint held in tier `from`, or removed from it earlier in the same batch. gpu to cpu/storage is an offload, the other way a reload. Counted by precise prefix indexes",
            f.block_moves.clone(),
        );
        r.register(
            "llmd_kvindex_lookup_blocks",
            "Blocks of the prefix producers' index lookups, by kind: queried (the prompt's blocks, once per lookup) and probed (block positions the lookup read in the index). A lookup of a long prompt starts from its verified-prefix checkpoints and skips the blocks they vouch for, so 1 - probed / queried is the share of blocks checkpoints saved",
            f.lookup_blocks.clone(),
        );
        r.register(
            "llmd_endpoint_kv_cache_usage_ratio",
            "The engine's own KV-cache usage (vLLM's kv_cache_usage_perc, 0 to 1), as last reported in the endpoint's metrics; beside llmd_kvindex_blocks{tier=\"gpu\"} / llmd_endpoint_kv_cache_capacity_blocks, the index's view",
            f.engine_kv_usage.clone(),
        );
        r.register(
            "llmd_endpoint_kv_cache_capacity_blocks",
            "The engine's KV-cache capacity in blocks (vLLM's cache_config_info num_gpu_blocks), as last reported; absent while unknown",
            f.engine_kv_blocks.clone(),
        );
        r.register(
            "llmd_endpoint_kv_block_bytes",
            "Bytes of one KV block on the endpoint: its llmd.dev/kv-bytes-per-token label times the engine's block size (cache_config_info); absent while either is unknown. llmd_kvindex_blocks * on(endpoint) group_left llmd_endpoint_kv_block_bytes is the bytes held per tier",
            f.engine_kv_block_bytes.clone(),
        );
        r.register(
            "llmd_predicted_ttft_seconds",
            "The online latency model's predicted TTFT of each request on the endpoint it was sent to, at dispatch (with a predicted-latency-producer)",
            f.predicted_ttft.clone(),
        );
        r.register(
            "llmd_predicted_tpot_seconds",
            "The online latency model's predicted time per output token of each request on its endpoint, at dispatch (streaming mode, once TPOT is learnt)",
            f.predicted_tpot.clone(),
        );
        r.register(
            "llmd_latency_prediction_error_ratio",
            "|predicted - measured| / measured of each prediction checked against its request (kind: ttft at the first token, or the whole request outside streaming mode; tpot at completion)",
            f.prediction_error.clone(),
        );
        r.register(
            "llmd_kvindex_endpoints_refused",
            "Endpoints refused at add_endpoint because a prefix index had no free endpoint slot",
            f.endpoints_refused.clone(),
        );
        r.register(
            "llmd_kvindex_entries",
            "Occupied table entries of a prefix producer's block index (one per model, block, tier and group of 64 endpoints), at exposition time",
            f.index_entries.clone(),
        );
        r.register(
            "llmd_kvindex_capacity_entries",
            "Table entries a prefix producer's block index holds at most",
            f.index_capacity.clone(),
        );
        r.register(
            "llmd_kvindex_entries_evicted",
            "Entries a prefix producer's block index evicted to place others: reason capacity (the table was full) or displacement (below capacity, no slot could be freed: entries lost before the table was full)",
            f.index_evicted.clone(),
        );
        r.register(
            "llmd_screener_strict_no_match",
            "Requests a screener's strict header selector left without an endpoint (failed closed, as NoEndpoints)",
            f.screen_no_match.clone(),
        );
        r.register(
            "llmd_burst_requests",
            "Requests of pick_batch windows per burst-prefix-cache-producer, by outcome: colocated (steered to the replica its group was assigned), no_affinity (shares no prompt prefix with the rest of the window), batch_full (past maxBatchSize: no affinity produced); assigned_absent counts, among the colocated, those whose assigned replica was no longer a candidate at their pick (screened out, or removed since the window was assigned): no affinity",
            f.burst_requests.clone(),
        );
        r.register(
            "llmd_plugin_events",
            "Events a plugin's request hook counted that change what it does later, by plugin instance and event: session_binding_dropped (session-affinity-scorer with sessionId: a binding dropped at the 2^20 bound before its TTL; that session's next request is routed afresh)",
            f.plugin_events.clone(),
        );
        r.register(
            "llmd_rollout_revision_share",
            "A disaggregatedset-rollout-screener's current traffic share per observed revision (0: a required role is missing); series of revisions no longer observed are removed",
            f.revision_share.clone(),
        );
        r.register(
            "llmd_trace_context_invalid",
            "Requests whose traceparent or tracestate header was malformed (ignored: no trace context, or no trace state, is forwarded)",
            f.trace_context_invalid.clone(),
        );
        r.register(
            "llmd_openai_prompts_estimated",
            "OpenAI bodies picked on token ids estimated from their text, by reason: no_tokenizer (none set for the model), multimodal (media parts), chat_template / suffix / prompt_embeds (a field the router does not render), engine_renders (the engine renders the model's prompts otherwise); precise prefix matches need the engine's ids",
            f.prompts_estimated.clone(),
        );
        r.register(
            "llmd_kvindex_sequence_gaps",
            "Gaps in the event stream's sequence numbers (lost batches)",
            f.sequence_gaps.clone(),
        );
        r.register(
            "llmd_kvindex_stream_restarts",
            "Event streams that restarted (sequence went backwards)",
            f.stream_restarts.clone(),
        );
        r.register(
            "llmd_kvindex_stream_staleness_seconds",
            "Time since the endpoint's last event batch, at exposition time",
            f.staleness.clone(),
        );
        r.register(
            "llmd_observe_tracked_requests",
            "Requests between decision and completion in the metrics lifecycle table",
            f.tracked.clone(),
        );
        r.register(
            "llmd_observe_untracked_requests",
            "Requests not timed because the lifecycle table was full",
            f.untracked.clone(),
        );
        r.register(
            "llmd_open_requests_expired_at_limit",
            "Open requests expired because the scheduler's table of open requests was full (outcome expired)",
            f.expired_at_limit.clone(),
        );
        r.register(
            "llmd_observe_unknown_request_calls",
            "Lifecycle calls naming a request id that is not tracked",
            f.unknown_calls.clone(),
        );
        r
    }
}
