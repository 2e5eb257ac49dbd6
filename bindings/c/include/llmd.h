/*
 * libllmd: C ABI of llmd, an embeddable scheduling library for LLM
 * inference routers.
 *
 * Generated from bindings/c by cbindgen (pinned version, see
 * bindings/c/gen-header.sh); do not edit by hand. Conventions, ownership and
 * thread safety: docs/c-api.md.
 */

#ifndef LLMD_H
#define LLMD_H

/* Generated file: regenerate with bindings/c/gen-header.sh. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Major version of the header (`LLMD_VERSION_MAJOR`).
#define LLMD_VERSION_MAJOR 0

// Minor version of the header (`LLMD_VERSION_MINOR`).
#define LLMD_VERSION_MINOR 1

// Patch version of the header (`LLMD_VERSION_PATCH`).
#define LLMD_VERSION_PATCH 0

// Kind of one event. Values are never reused.
enum llmd_event_kind
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // Blocks committed to the prefix cache.
  LLMD_EVENT_KIND_BLOCK_STORED = 1,
  // Blocks evicted.
  LLMD_EVENT_KIND_BLOCK_REMOVED = 2,
  // The publisher dropped its whole prefix cache.
  LLMD_EVENT_KIND_ALL_BLOCKS_CLEARED = 3,
};
#ifndef __cplusplus
typedef uint32_t llmd_event_kind;
#endif // __cplusplus

// How index keys are formed. Passed as `uint32_t`; values are never reused.
enum llmd_key_mode
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // The router's own chained hash of the events' tokens; works whatever
  // seed or algorithm the engines use.
  LLMD_KEY_MODE_ROUTER_KEYS = 1,
  // No events: entries come from `llmd_index_record_routing` only.
  LLMD_KEY_MODE_APPROXIMATE = 2,
  // vLLM's own published keys, computed with a hasher (`hasher` field).
  LLMD_KEY_MODE_ENGINE_PARITY = 3,
};
#ifndef __cplusplus
typedef uint32_t llmd_key_mode;
#endif // __cplusplus

// How a request ended badly. Values are never reused.
enum llmd_request_error
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // The client went away.
  LLMD_REQUEST_ERROR_CANCELLED = 1,
  // The upstream endpoint failed or timed out.
  LLMD_REQUEST_ERROR_UPSTREAM = 2,
  // Anything else.
  LLMD_REQUEST_ERROR_OTHER = 3,
};
#ifndef __cplusplus
typedef uint32_t llmd_request_error;
#endif // __cplusplus

// Sequence status of an ingested batch (per endpoint and data-parallel rank).
// Values are explicit and never reused.
enum llmd_seq_status
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // No sequence number was given.
  LLMD_SEQ_STATUS_NONE = 0,
  // The first number seen from this publisher.
  LLMD_SEQ_STATUS_FIRST = 1,
  // `seq == last + 1`.
  LLMD_SEQ_STATUS_IN_ORDER = 2,
  // Batches were lost; `missing` says how many (the batch is still applied).
  LLMD_SEQ_STATUS_GAP = 3,
  // The publisher restarted: its entries were dropped, then the batch applied.
  LLMD_SEQ_STATUS_RESTART = 4,
  // The same batch again: ignored.
  LLMD_SEQ_STATUS_DUPLICATE = 5,
  // The next lost batch of a recent gap (from the publisher's replay
  // socket, in order, after the live batch that showed the gap): applied.
  // Stop reading the replay after the gap's last number: the later
  // batches it sends were applied live and would read as a restart.
  LLMD_SEQ_STATUS_REPLAYED = 6,
};
#ifndef __cplusplus
typedef uint32_t llmd_seq_status;
#endif // __cplusplus

// Result of a call. Values are explicit and never reused: a code that is
// retired stays reserved, new codes take new numbers.
enum llmd_status
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // Success; outputs were written.
  LLMD_STATUS_OK = 0,
  // A required pointer argument was NULL (or a NULL pointer came with a
  // non-zero length).
  LLMD_STATUS_NULL_ARGUMENT = 1,
  // A string argument was not valid UTF-8.
  LLMD_STATUS_INVALID_UTF8 = 2,
  // An argument was out of range or otherwise invalid.
  LLMD_STATUS_INVALID_ARGUMENT = 3,
  // A caller-provided buffer was too small; nothing was written.
  LLMD_STATUS_BUFFER_TOO_SMALL = 4,
  // Scheduler configuration (YAML/JSON) could not be parsed or built.
  LLMD_STATUS_CONFIG = 5,
  // A file could not be read.
  LLMD_STATUS_IO = 6,
  // Hasher configuration or hashing failed.
  LLMD_STATUS_HASH = 7,
  // KV-event bytes could not be decoded.
  LLMD_STATUS_DECODE = 8,
  // The named endpoint is not known.
  LLMD_STATUS_UNKNOWN_ENDPOINT = 9,
  // Endpoint metrics text could not be parsed.
  LLMD_STATUS_METRICS_PARSE = 10,
  // The scheduler could not pick a target; the error's code says why.
  LLMD_STATUS_SCHEDULE = 11,
  // Serialising a result (JSON) failed.
  LLMD_STATUS_SERIALIZE = 12,
  // The index rejected the call; the message says why.
  LLMD_STATUS_INDEX = 13,
  // A bug inside the library was caught at the ABI boundary. The handle
  // involved stays valid, but the call had no effect that can be relied on.
  LLMD_STATUS_PANIC = 14,
};
#ifndef __cplusplus
typedef uint32_t llmd_status;
#endif // __cplusplus

// Tier of the blocks of an event. Values are never reused.
enum llmd_tier
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  // Device memory (or no medium given).
  LLMD_TIER_GPU = 0,
  // Host memory of an offloading connector.
  LLMD_TIER_CPU = 1,
  // Disk or remote storage.
  LLMD_TIER_STORAGE = 2,
  // A medium this library does not know, or an event without one.
  LLMD_TIER_UNKNOWN = 255,
};
#ifndef __cplusplus
typedef uint32_t llmd_tier;
#endif // __cplusplus

// One conversation's tokenization cache (`llmd_chat_session_new`): each
// `llmd_chat_session_encode_chat` gives the ids `llmd_tokenizer_encode_chat`
// gives, tokenizing only what follows the previous turn. Calls on one
// session are serialized; use one session per conversation.
typedef struct llmd_chat_session llmd_chat_session;

// A scheduling decision. Immutable: read it from any thread; strings it
// returns are borrowed from it and valid until `llmd_decision_free`.
typedef struct llmd_decision llmd_decision;

// A failed call's status, a stable machine-readable code and a message.
// Owned by the caller once returned; release it with `llmd_error_free`.
typedef struct llmd_error llmd_error;

// A decoded `EventBatch`. Immutable: share it between threads freely.
typedef struct llmd_event_batch llmd_event_batch;

// A feed driving one scheduler. Every call takes it as `const`; free it
// (which stops it) before or after the scheduler, in any order.
typedef struct llmd_feed llmd_feed;

// Everything besides tokens that changes a request's block hashes. Starts
// as a text-only request; not safe to mutate from two threads at once.
typedef struct llmd_hash_extras llmd_hash_extras;

// Computes the block keys a vLLM engine publishes for a prompt. Immutable
// after creation: share it between threads freely.
typedef struct llmd_hasher llmd_hasher;

// The concurrent KV-block index. Every call takes it as `const`: reads never
// wait for writers; share one handle between threads.
typedef struct llmd_index llmd_index;

// An OTLP trace exporter. Every call takes it as `const`; share it between
// threads. Release with `llmd_otlp_exporter_free` (which sends what is
// queued first).
typedef struct llmd_otlp_exporter llmd_otlp_exporter;

// A scheduler: endpoints, KV index, pipeline and in-flight state. Every
// call takes it as `const`: share one handle between threads.
typedef struct llmd_scheduler llmd_scheduler;

// Owned, NUL-terminated UTF-8 text. Release it with `llmd_string_free`.
typedef struct llmd_string llmd_string;

// A tokenizer and chat template loaded from a local model directory.
// Every call takes it as `const`; share it between threads.
typedef struct llmd_tokenizer llmd_tokenizer;

// Owned token ids. Release with `llmd_tokens_free`.
typedef struct llmd_tokens llmd_tokens;

// A string as pointer + length (UTF-8, not NUL-terminated). As input it is
// borrowed for the call (NULL means absent where a field says so); as output
// it is borrowed from the handle that returned it.
typedef struct {
  // First byte, or NULL.
  const char *ptr;
  // Length in bytes.
  size_t len;
} llmd_str;

// A name/value pair (labels, headers).
typedef struct {
  // Name.
  llmd_str key;
  // Value.
  llmd_str value;
} llmd_kv;

// One request to schedule. Zero-initialise it (`{0}`) and set what you
// have: absent strings are NULL, absent SLOs are 0.
typedef struct {
  // Request id (required); the lifecycle calls use it.
  llmd_str id;
  // Target model; for LoRA requests the base model.
  llmd_str model;
  // Prompt token ids; used when `prompt` is NULL (ids beside a prompt
  // text are `LLMD_STATUS_INVALID_ARGUMENT`).
  const uint32_t *tokens;
  // Number of tokens.
  size_t n_tokens;
  // Prompt text (tokenized by the configured estimator); NULL to use
  // `tokens`.
  llmd_str prompt;
  // LoRA adapter name; NULL when the request uses none.
  llmd_str lora_name;
  // LoRA adapter path, when engines identify adapters by path; NULL if
  // none (a path without `lora_name` is `LLMD_STATUS_INVALID_ARGUMENT`).
  llmd_str lora_path;
  // vLLM `cache_salt`; NULL if none.
  llmd_str cache_salt;
  // Session id; NULL if none.
  llmd_str session_id;
  // Request headers (names match case-insensitively).
  const llmd_kv *headers;
  // Number of headers.
  size_t n_headers;
  // Objective priority; negative = sheddable.
  int32_t priority;
  // Time-to-first-token objective in ms; 0 = none.
  double ttft_slo_ms;
  // Time-per-output-token objective in ms; 0 = none.
  double tpot_slo_ms;
  // Non-zero: the request carries multimodal items (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
  uint8_t multimodal;
  // When the request reached the host, on the scheduler's clock:
  // nanoseconds since the Unix epoch (`clock_gettime(CLOCK_REALTIME)`,
  // not `CLOCK_MONOTONIC`); 0 = not given, then latencies start at the
  // pick. A time after the pick is taken as not given.
  uint64_t arrived_at_ns;
  // Identities of the request's multimodal items (any stable non-empty
  // string per image, video or audio, e.g. a hash of its URL or bytes),
  // for the `mm-embeddings-cache` plugins; any implies `multimodal`.
  // `llmd_scheduler_pick_openai` fills them from the body itself.
  const llmd_str *mm_items;
  // Number of multimodal items.
  size_t n_mm_items;
} llmd_request_desc;

// A chosen endpoint.
typedef struct {
  // Endpoint name.
  llmd_str name;
  // `ip:port`.
  llmd_str address;
} llmd_target;

// Shape of a decision, read in one call.
typedef struct {
  // The first target (llm-d's destination endpoint).
  llmd_target primary;
  // Whether the request is disaggregated (prefill runs remotely).
  bool has_prefill;
  // The remote prefill endpoint when `has_prefill`.
  llmd_target prefill;
  // Primary targets in preference order (later ones are fallbacks).
  size_t n_targets;
  // Headers the proxy must set.
  size_t n_headers;
  // Headers the proxy must remove.
  size_t n_remove_headers;
} llmd_decision_info;

// Summary of one event of a batch.
typedef struct {
  // What happened.
  llmd_event_kind kind;
  // Where the blocks live.
  llmd_tier tier;
  // Number of block hashes (0 for `ALL_BLOCKS_CLEARED`).
  size_t n_blocks;
  // Number of tokens carried (stored events only).
  size_t n_tokens;
  // Whether `parent_key` is set (stored events continuing a chain).
  bool has_parent;
  // Published 64-bit key of the parent block.
  uint64_t parent_key;
  // Tokens per block (stored events only, else 0).
  int64_t block_size;
} llmd_event_info;

// A pod to follow.
typedef struct {
  // Endpoint name (required); registered in the scheduler unless it is.
  llmd_str name;
  // `host:port` of the pod's OpenAI server (required).
  llmd_str address;
  // KV-event endpoint to connect to (`tcp://host:port`); NULL: none, or
  // `tcp://<host>:<socketPort>` when the config discovers pods.
  llmd_str events;
  // Replay endpoint; NULL: gaps are not replayed.
  llmd_str replay;
  // `/metrics` URL; NULL: `http://<address>/metrics`.
  llmd_str metrics_url;
  // Non-zero: do not scrape `/metrics`.
  uint8_t no_scrape;
  // Data-parallel ranks publishing on consecutive ports (0 means 1).
  uint16_t data_parallel_size;
} llmd_pod_desc;

// Index configuration; zero fields take the defaults.
typedef struct {
  // An `llmd_key_mode`; 0 means router keys.
  uint32_t key_mode;
  // Tokens per block in the router and approximate modes; 0 means 16. In
  // engine parity the hasher's: 0 or that value (another is
  // `LLMD_STATUS_INVALID_ARGUMENT`).
  size_t block_size;
  // The hasher for engine parity (copied; may be freed afterwards).
  const llmd_hasher *hasher;
  // Upper bound on table entries (memory is fixed at creation); 0 = 2^20.
  size_t capacity_blocks;
  // Endpoint slots; 0 = 1024.
  size_t max_endpoints;
  // Lifetime of speculative entries in ns of the caller's clock; 0 = 2 s.
  uint64_t speculative_ttl_ns;
  // Live speculative entries at most; 0 = 65536.
  size_t speculative_capacity;
  // Approximate mode: blocks remembered per endpoint (llm-d's
  // `lruCapacityPerServer`); 0 = 31250.
  size_t approx_capacity_per_endpoint;
  // Router-key mode: engine-key mappings kept per endpoint; 0 = 2^18.
  size_t engine_map_capacity_per_endpoint;
  // Non-zero: the four tier weights below replace the defaults (GPU
  // 1.0, CPU 0.8, storage 0.5, speculative 0.9); each must be finite and
  // non-negative (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
  uint8_t has_tier_weights;
  // Score of a matched block held on GPU.
  double gpu_weight;
  // Score of a matched block held in CPU memory.
  double cpu_weight;
  // Score of a matched block held in storage.
  double storage_weight;
  // Score of a matched speculative block.
  double speculative_weight;
} llmd_index_config;

// Counts from applying one batch to the index.
typedef struct {
  // Blocks stored.
  uint32_t stored;
  // Blocks removed.
  uint32_t removed;
  // Caches cleared.
  uint32_t cleared;
  // Blocks that could not be placed (router keys: unknown parent or
  // engine key, a parent ending inside a router block, too few tokens for
  // a router block). Not counted in `stored`.
  uint32_t unplaceable;
  // Events with a medium this library does not know.
  uint32_t unknown_media;
  // Events ignored: the endpoint is being removed, or the index is in
  // approximate mode.
  uint32_t ignored;
  // Engine parity: parent-less `BlockStored` events re-hashed as a
  // self-check.
  uint32_t parity_checks;
  // Self-checks whose key differed from the event's: the hasher's seed,
  // algorithm or block size is wrong.
  uint32_t parity_mismatches;
  // In a batch with more than one `AllBlocksCleared`, the events before
  // the last one, which it erases: not applied one by one, in none of the
  // other counts (0 for a batch with one clear, applied whole).
  uint32_t superseded;
} llmd_index_apply_report;

// One endpoint's longest consecutive prefix match.
typedef struct {
  // The endpoint's id from `llmd_index_register_endpoint`.
  uint16_t endpoint;
  // Leading blocks of the prompt the endpoint holds.
  uint32_t consecutive_blocks;
  // Those blocks weighted by tier (GPU 1.0, CPU 0.8, ...).
  double weighted_score;
} llmd_endpoint_match;

// Index-wide statistics.
typedef struct {
  // Live table entries.
  uint64_t entries;
  // Table capacity in entries.
  uint64_t capacity;
  // (block, endpoint) holdings.
  uint64_t holdings;
  // Bytes of the table.
  uint64_t table_bytes;
  // Entries evicted for room.
  uint64_t evictions;
  // Registered endpoints.
  uint64_t endpoints;
} llmd_index_stats;

// Counts from applying one KV-event batch.
typedef struct {
  // Blocks added.
  uint32_t stored;
  // Blocks removed.
  uint32_t removed;
  // Endpoint caches cleared.
  uint32_t cleared;
  // Blocks or events not placed, all reasons: the sum of the
  // `skipped_*` fields below.
  uint32_t skipped;
  // What the sequence number said ([`llmd_seq_status`] value); `NONE`
  // when no sequence number was given or for a pre-decoded batch.
  uint32_t seq_status;
  // 1 when the batch was dropped as a duplicate, else 0.
  uint32_t ignored;
  // Batches lost before this one when `seq_status` is `GAP`, else 0.
  uint64_t missing;
  // Of `skipped`: router keys whose parent or engine key was never
  // stored, whose parent ends inside a router block, or too few tokens
  // for a block.
  uint32_t skipped_unknown_parent;
  // Of `skipped`: events with a `medium` that is not GPU, CPU or storage.
  uint32_t skipped_unknown_medium;
  // Of `skipped`: events of an endpoint removed while its batch was on
  // the way.
  uint32_t skipped_stale;
  // Engine parity: published keys that differ from the router's own hash
  // of the same tokens (the configured seed, algorithm or block size is
  // wrong).
  uint32_t parity_mismatches;
  // In a batch with more than one `AllBlocksCleared`, the events before
  // the last one, which it erases: not applied one by one, in none of the
  // other counts (0 for a batch with one clear, applied whole).
  uint32_t superseded;
} llmd_apply_stats;

// What is known about a finished request.
typedef struct {
  // Prompt tokens as scheduled.
  uint64_t prompt_tokens;
  // Clock time of the decision (ns).
  uint64_t scheduled_at_ns;
  // Clock time of the first token; 0 if none was seen.
  uint64_t first_token_at_ns;
  // Clock time of completion or failure.
  uint64_t finished_at_ns;
  // Output tokens reported.
  uint64_t output_tokens;
  // Prompt tokens served from cache as the engine reported; -1 if unknown.
  int64_t cached_tokens;
  // 0 when the request succeeded, else its `llmd_request_error`.
  uint32_t error;
  // The latency model's predicted TTFT (ms) for the request on its target
  // at dispatch (configs with a `predicted-latency-producer`); -1 if none.
  double predicted_ttft_ms;
  // Its predicted time per output token (ms); -1 if none.
  double predicted_tpot_ms;
} llmd_request_summary;

// Token usage the engine reported for a completed request (OpenAI
// `usage`); each count is -1 when not reported.
typedef struct {
  // `prompt_tokens`.
  int64_t prompt_tokens;
  // `completion_tokens`: replaces the tokens counted by the token calls
  // (a non-streaming reply makes none).
  int64_t completion_tokens;
  // `prompt_tokens_details.cached_tokens`.
  int64_t cached_tokens;
} llmd_usage;

// Queue, batching and timing of `llmd_otlp_exporter_new_with_options`. A
// zero field (or a NULL pointer for all of them) means its default.
typedef struct {
  // Spans held for export at most (default 65,536); beyond it decisions
  // are dropped and counted.
  uint64_t max_queue_spans;
  // Spans per request at most (default 512).
  uint64_t max_batch_spans;
  // Longest wait before a partial batch goes, in milliseconds (default
  // 500).
  uint64_t flush_interval_ms;
  // Deadline of one POST, in milliseconds (default 5,000).
  uint64_t timeout_ms;
} llmd_otlp_options;

// Export counters.
typedef struct {
  // Spans the endpoint accepted.
  uint64_t exported_spans;
  // Spans dropped because the queue was full.
  uint64_t dropped_spans;
  // Spans lost to failed POSTs.
  uint64_t failed_spans;
  // Decisions not exported: no trace context, unsampled, or outside the
  // sampling ratio.
  uint64_t unsampled_decisions;
} llmd_otlp_stats;

// How `llmd_scheduler_new_with_options` and
// `llmd_scheduler_from_file_with_options` build a scheduler. A
// zero-initialised struct (`llmd_scheduler_options o = {0};`) gives the
// defaults, as a NULL pointer does.
typedef struct {
  // Non-zero: `seed` is set; without it tie-breaking is random (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
  uint8_t has_seed;
  // Seed that makes tie-breaking reproducible (read when `has_seed`).
  uint64_t seed;
  // Refuse a configuration with any plugin or setting the library accepts
  // and does not execute (`LLMD_STATUS_CONFIG`, naming each), as
  // `llmd_scheduler_new_strict` does; non-zero is true (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
  uint8_t strict;
  // Most requests held open between pick and completion; 0 means the
  // default, 2^20. A pick that finds this many open first expires the
  // oldest sixteenth (`llmd_open_requests_expired_at_limit_total`). Past
  // 2^20 open, the metrics time no more of them
  // (`llmd_observe_untracked_requests_total`).
  uint64_t max_open_requests;
} llmd_scheduler_options;

// An endpoint to register.
typedef struct {
  // Unique name (required).
  llmd_str name;
  // `ip:port` written into the routing headers (required).
  llmd_str address;
  // Served base model; NULL when unknown (then it serves any model).
  llmd_str model;
  // Labels, e.g. `llm-d.ai/role` = `prefill` / `decode` / `both`.
  const llmd_kv *labels;
  // Number of labels.
  size_t n_labels;
  // LoRA adapters the endpoint can serve.
  const llmd_str *lora_adapters;
  // Number of LoRA adapters.
  size_t n_lora_adapters;
} llmd_endpoint_desc;

// A metrics snapshot of one endpoint, as scraped from vLLM.
typedef struct {
  // `vllm:num_requests_waiting`.
  uint32_t waiting_queue_size;
  // `vllm:num_requests_running`.
  uint32_t running_requests_size;
  // `vllm:kv_cache_usage_perc`, in [0, 1].
  double kv_cache_usage;
  // `max_lora`; 0 when unknown.
  uint32_t max_active_models;
  // KV-cache block size in tokens; 0 when unknown.
  uint32_t cache_block_size;
  // Number of GPU KV-cache blocks; 0 when unknown.
  uint64_t cache_num_blocks;
  // When the snapshot was taken (scheduler clock: ns since the Unix
  // epoch, `CLOCK_REALTIME`); 0 = now.
  uint64_t updated_at_ns;
  // LoRA adapters running.
  const llmd_str *active_models;
  // Number of running adapters.
  size_t n_active_models;
  // LoRA adapters waiting for a slot.
  const llmd_str *waiting_models;
  // Number of waiting adapters.
  size_t n_waiting_models;
} llmd_endpoint_metrics;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Runs one scheduling cycle for `req`. On success `*out` receives a
// decision with at least one target. No endpoint for the model gives
// `LLMD_STATUS_SCHEDULE` with code `"no_endpoints"` (detail 503); saturation
// gives code `"resource_exhausted"` (detail 429); a conditional-decode miss
// (`Prefer: if-available`) gives code `"precondition_failed"` (detail 412).
// A pipeline that picks no target gives code `"resource_exhausted"`
// (nothing is recorded for the request).
//
// # Safety
// `s` is NULL or live; `req` is NULL or valid with every pointer valid for
// its length; `out` valid for a write; `err` NULL or valid for a write.
llmd_status llmd_scheduler_pick(const llmd_scheduler *s,
                                const llmd_request_desc *req,
                                llmd_decision **out,
                                llmd_error **err);

// As `llmd_scheduler_pick`, with the prompt's token ids passed as their
// own argument (the descriptor's `tokens` and `prompt` are not used; a
// `prompt` is an error). They are copied once, into the request: a host
// whose memory rules forbid storing its pointers in the descriptor (Go)
// passes its own array here instead of copying it into C memory first.
//
// # Safety
// As `llmd_scheduler_pick`; `tokens` NULL with `n_tokens` 0, or valid for
// `n_tokens` reads, for the duration of the call.
llmd_status llmd_scheduler_pick_tokens(const llmd_scheduler *s,
                                       const llmd_request_desc *req,
                                       const uint32_t *tokens,
                                       size_t n_tokens,
                                       llmd_decision **out,
                                       llmd_error **err);

// Picks a window of `n` requests together, for a
// `burst-prefix-cache-producer`: requests sharing a prompt go to the same
// replica, as llm-d assigns a window (without one, each request is picked
// as by `llmd_scheduler_pick`). `out[i]` receives request `i`'s decision, or
// NULL when it failed; `errs` is NULL or an array of `n` whose `errs[i]`
// receives that request's error (NULL when it succeeded; release each with
// `llmd_error_free`). The call itself fails only on bad arguments (a NULL
// array, an invalid descriptor), and then writes nothing.
// `llmd_scheduler_burst_window_ms` says how long to collect a window.
//
// # Safety
// `s` NULL or live; `reqs` NULL with `n` 0, or `n` valid descriptors as for
// `llmd_scheduler_pick`; `out` valid for `n` writes (NULL with `n` 0);
// `errs` NULL or valid for `n` writes; `err` NULL or valid for a write.
llmd_status llmd_scheduler_pick_batch(const llmd_scheduler *s,
                                      const llmd_request_desc *reqs,
                                      size_t n,
                                      llmd_decision **out,
                                      llmd_error **errs,
                                      llmd_error **err);

// Milliseconds a host should collect requests for
// `llmd_scheduler_pick_batch` (the longest `windowDurationMs` of the
// configured burst producers); 0 without one, or for NULL.
//
// # Safety
// `s` NULL or live.
uint64_t llmd_scheduler_burst_window_ms(const llmd_scheduler *s);

// Like `llmd_scheduler_pick` with the request as JSON (`{"id", "model",
// "prompt": {"tokens": [...]} | {"text": "..."}, "lora", "cache_salt",
// "session_id", "headers", "priority", "slo"}`); malformed JSON is
// `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// As `llmd_scheduler_pick`; `json` valid for `json_len` bytes.
llmd_status llmd_scheduler_pick_json(const llmd_scheduler *s,
                                     const char *json,
                                     size_t json_len,
                                     llmd_decision **out,
                                     llmd_error **err);

// Releases a decision. NULL is accepted and ignored.
//
// # Safety
// `d` is NULL or a decision not yet freed.
void llmd_decision_free(llmd_decision *d);

// Writes the decision's shape to `*out`: its primary and prefill targets
// and how many targets and headers it has. Returns false (writing nothing)
// when `d` or `out` is NULL.
//
// # Safety
// `d` is NULL or live; `out` is NULL or valid for a write.
bool llmd_decision_get_info(const llmd_decision *d, llmd_decision_info *out);

// Target `index` in preference order; NULL views when out of range.
//
// # Safety
// `d` is NULL or live.
llmd_target llmd_decision_target(const llmd_decision *d, size_t index);

// Number of encoder endpoints (E/P/D disaggregation: where the request's
// multimodal items are encoded; also in the `x-encoder-hosts-ports`
// header); 0 for NULL.
//
// # Safety
// `d` is NULL or live.
size_t llmd_decision_encode_target_count(const llmd_decision *d);

// Encoder endpoint `index`; NULL views when out of range.
//
// # Safety
// `d` is NULL or live.
llmd_target llmd_decision_encode_target(const llmd_decision *d, size_t index);

// Header `index` the proxy must set on the upstream request (e.g.
// `x-gateway-destination-endpoint`); NULL views when out of range.
//
// # Safety
// `d` is NULL or live.
llmd_kv llmd_decision_header(const llmd_decision *d, size_t index);

// Header name `index` the proxy must remove; a NULL view when out of range.
//
// # Safety
// `d` is NULL or live.
llmd_str llmd_decision_remove_header(const llmd_decision *d, size_t index);

// Number of headers the proxy sets on the response to the client.
//
// # Safety
// `d` is NULL or live.
size_t llmd_decision_response_header_count(const llmd_decision *d);

// Response header `index` the proxy sets on the response to the client
// (e.g. the session-affinity `x-session-token` naming the endpoint that
// served); NULL views when out of range.
//
// # Safety
// `d` is NULL or live.
llmd_kv llmd_decision_response_header(const llmd_decision *d, size_t index);

// The explanation as JSON: every candidate, every filter drop, every
// scorer's raw and weighted score, per profile. Rendered on request only.
//
// # Safety
// `d` is NULL or live; `out` valid for a write; `err` NULL or valid for a write.
llmd_status llmd_decision_explanation_json(const llmd_decision *d,
                                           llmd_string **out,
                                           llmd_error **err);

// The whole decision (targets, headers, explanation) as JSON.
//
// # Safety
// As `llmd_decision_explanation_json`.
llmd_status llmd_decision_json(const llmd_decision *d, llmd_string **out, llmd_error **err);

// The status of `err`; `LLMD_STATUS_NULL_ARGUMENT` when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
llmd_status llmd_error_status(const llmd_error *err);

// The scheduler's stable numeric code for errors it raised: llm-d's HTTP
// status for scheduling outcomes (503 no endpoints, 429 saturated, 400
// invalid request) and 1001+ for library-side errors; 0 for errors raised
// elsewhere and when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
uint32_t llmd_error_detail(const llmd_error *err);

// The NUL-terminated message of `err`, owned by `err` and valid until it is
// freed; an empty string when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
const char *llmd_error_message(const llmd_error *err);

// A stable lowercase code for `err`, finer than its status when the library
// knows more (e.g. `"no_endpoints"` under `LLMD_STATUS_SCHEDULE`); owned by
// `err`. An empty string when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
const char *llmd_error_code(const llmd_error *err);

// Releases an error. NULL is accepted and ignored.
//
// # Safety
// `err` is NULL or an error returned by this library and not yet freed.
void llmd_error_free(llmd_error *err);

// Decodes one msgpack `EventBatch` payload (the third ZMQ frame). Malformed
// bytes give `LLMD_STATUS_DECODE` with the offset and defect in the message
// and a code naming the defect.
//
// # Safety
// `bytes` is NULL (only with `len` 0) or valid for `len` reads; `out` is
// valid for a write; `err` is NULL or valid for a write.
llmd_status llmd_event_batch_decode(const uint8_t *bytes,
                                    size_t len,
                                    llmd_event_batch **out,
                                    llmd_error **err);

// Releases a batch. NULL is accepted and ignored.
//
// # Safety
// `batch` is NULL or from `llmd_event_batch_decode`, not yet freed.
void llmd_event_batch_free(llmd_event_batch *batch);

// Number of known events in the batch; 0 when `batch` is NULL.
//
// # Safety
// `batch` is NULL or live.
size_t llmd_event_batch_len(const llmd_event_batch *batch);

// Events with an unknown tag that were skipped; 0 when `batch` is NULL.
//
// # Safety
// `batch` is NULL or live.
uint32_t llmd_event_batch_skipped(const llmd_event_batch *batch);

// The batch's timestamp (seconds since the epoch); 0 when `batch` is NULL.
//
// # Safety
// `batch` is NULL or live.
double llmd_event_batch_ts(const llmd_event_batch *batch);

// Returns true when the batch carries the publisher's data-parallel rank,
// and writes it to `*rank` (`rank` may be NULL to only ask); returns false,
// writing nothing, otherwise.
//
// # Safety
// `batch` is NULL or live; `rank` is NULL or valid for a write.
bool llmd_event_batch_dp_rank(const llmd_event_batch *batch, int64_t *rank);

// Writes a summary of event `index` to `*out`.
//
// # Safety
// `batch` is NULL or live; `out` is valid for a write; `err` is NULL or
// valid for a write.
llmd_status llmd_event_batch_event(const llmd_event_batch *batch,
                                   size_t index,
                                   llmd_event_info *out,
                                   llmd_error **err);

// Writes the published 64-bit keys of event `index`'s blocks to `keys` and
// their number to `*keys_len`; `LLMD_STATUS_BUFFER_TOO_SMALL` (nothing
// written) when `keys_cap` is below the event's `n_blocks`.
//
// # Safety
// `batch` is NULL or live; `keys` is valid for `keys_cap` writes; `keys_len`
// for a write; `err` is NULL or valid for a write.
llmd_status llmd_event_batch_event_keys(const llmd_event_batch *batch,
                                        size_t index,
                                        uint64_t *keys,
                                        size_t keys_cap,
                                        size_t *keys_len,
                                        llmd_error **err);

// Creates a feed for `s` that executes what its configuration asks of the
// data plane (a precise producer's `kvEventsConfig`, `metrics-data-source`,
// `file-discovery`; see `llmd_feed_settings_json`). Nothing runs until
// `llmd_feed_start`.
//
// # Safety
// `s` is NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_new(const llmd_scheduler *s, llmd_feed **out, llmd_error **err);

// As `llmd_feed_new`, with the host's settings over the configuration's:
// `options` is a JSON object (`len` bytes; NULL or empty: none) with any of
// `topics` (list of topic prefixes), `concurrency` (ingest workers,
// 1..=1024), `events_port` / `replay_port` (for pods added without those
// endpoints), `scrape_interval`, `scrape_timeout`, `replay_timeout`,
// `remove_after` (seconds), `clear_on_unrecoverable_gap` (bool) and
// `heartbeat_interval` (seconds; 0 sends no ZMTP heartbeats). An unknown
// name, a wrong type or a value out of range is
// `LLMD_STATUS_INVALID_ARGUMENT` naming it. Each setting given appears in
// `llmd_feed_settings_json` as the host's.
//
// # Safety
// `s` is NULL or live; `options` NULL or valid for `len` bytes; `out` valid
// for a write; `err` NULL or valid.
llmd_status llmd_feed_new_with_options(const llmd_scheduler *s,
                                       const char *options,
                                       size_t len,
                                       llmd_feed **out,
                                       llmd_error **err);

// Follows a pod (see `llmd_pod_desc`).
//
// # Safety
// `f` NULL or live; `pod` NULL or valid with its views valid; `err` NULL or
// valid.
llmd_status llmd_feed_add_pod(const llmd_feed *f, const llmd_pod_desc *pod, llmd_error **err);

// Makes the followed pods exactly `pods` (a host's discovery callback,
// e.g. a Kubernetes watch): new names are added, missing ones removed
// (with their index entries), changed ones replaced; pods from DNS or file
// discovery are left alone.
//
// # Safety
// `f` NULL or live; `pods` NULL with `n` 0 or valid for `n` descriptors
// with their views valid; `err` NULL or valid.
llmd_status llmd_feed_sync_pods(const llmd_feed *f,
                                const llmd_pod_desc *pods,
                                size_t n,
                                llmd_error **err);

// Follows every address `host` resolves to (a headless service) as a pod
// at `<ip>:<port>` named by its IP, resolving again every `interval_ms`
// (at least 1; 0 is `LLMD_STATUS_INVALID_ARGUMENT`).
//
// # Safety
// `f` NULL or live; `host` valid for `host_len` bytes; `err` NULL or valid.
llmd_status llmd_feed_discover_dns(const llmd_feed *f,
                                   const char *host,
                                   size_t host_len,
                                   uint16_t port,
                                   uint64_t interval_ms,
                                   llmd_error **err);

// Follows the pods of llm-d's endpoint file at `path` (`endpoints: [{name,
// namespace, address, port, labels}]`), re-read when it changes when
// `watch` is true.
//
// # Safety
// `f` NULL or live; `path` valid for `len` bytes; `err` NULL or valid.
llmd_status llmd_feed_watch_file(const llmd_feed *f,
                                 const char *path,
                                 size_t len,
                                 bool watch,
                                 llmd_error **err);

// Stops following a pod and removes it (and its index entries) from the
// scheduler; `LLMD_STATUS_UNKNOWN_ENDPOINT` (code `unknown_pod`) when the
// feed does not follow it.
//
// # Safety
// `f` NULL or live; `name` valid for `name_len` bytes; `err` NULL or valid.
llmd_status llmd_feed_remove_pod(const llmd_feed *f,
                                 const char *name,
                                 size_t name_len,
                                 llmd_error **err);

// Binds a socket for pods that dial in (`tcp://*:5557`; port 0 picks one)
// and returns the bound endpoint in `out`.
//
// # Safety
// `f` NULL or live; `endpoint` valid for `len` bytes; `out` valid for a
// write; `err` NULL or valid.
llmd_status llmd_feed_bind_events(const llmd_feed *f,
                                  const char *endpoint,
                                  size_t len,
                                  llmd_string **out,
                                  llmd_error **err);

// Starts the feed's threads (a stopped feed cannot start again).
//
// # Safety
// `f` NULL or live; `err` NULL or valid.
llmd_status llmd_feed_start(const llmd_feed *f, llmd_error **err);

// Stops every thread and closes every socket; waits for them. NULL is
// ignored. A stopped feed cannot start again: adding pods, syncing,
// binding and adding discovery sources then give
// `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// `f` NULL or live.
void llmd_feed_stop(const llmd_feed *f);

// True between `llmd_feed_start` and `llmd_feed_stop`; false for NULL.
//
// # Safety
// `f` NULL or live.
bool llmd_feed_running(const llmd_feed *f);

// Messages received on a bound socket from publishers whose topic names
// no followed pod (counted, not applied); 0 for NULL.
//
// # Safety
// `f` NULL or live.
uint64_t llmd_feed_unknown_publisher_messages(const llmd_feed *f);

// Names of the followed pods as a JSON list of strings.
//
// # Safety
// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_pods_json(const llmd_feed *f, llmd_string **out, llmd_error **err);

// The endpoints bound for pods that dial in (`llmd_feed_bind_events` and
// the configuration's `zmqEndpoint`), as a JSON list of strings, as this
// host dials them: a port 0 asked for is the port given, a wildcard host
// `*` is `127.0.0.1`. Empty once the feed is stopped.
//
// # Safety
// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_bound_endpoints_json(const llmd_feed *f, llmd_string **out, llmd_error **err);

// Per-pod counters as JSON: `{"<pod>": {"events": …, "blocks": …,
// "gaps": …, "replays": …, "reconnects": …, "scrape_errors": …,
// "evictions": …, "registration_failures": …,
// "last_event_age_s": …, …}}`.
//
// # Safety
// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_stats_json(const llmd_feed *f, llmd_string **out, llmd_error **err);

// The configuration settings the feed executes or not, as a JSON list of
// `{"plugin", "setting", "executed", "note"}`.
//
// # Safety
// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_settings_json(const llmd_feed *f, llmd_string **out, llmd_error **err);

// The `llmd_feed_*` metrics as Prometheus text.
//
// # Safety
// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_feed_render_metrics(const llmd_feed *f, llmd_string **out, llmd_error **err);

// Stops and releases a feed. NULL is accepted and ignored.
//
// # Safety
// `f` is NULL or a feed not yet freed, with no call on it in flight.
void llmd_feed_free(llmd_feed *f);

// Creates a hasher reproducing vLLM release `vllm_version` (NULL for the
// newest supported, or `"latest"`), algorithm `algo` (vLLM's
// `--prefix-caching-hash-algo` name, e.g. `"sha256_cbor"`), `block_size`
// tokens per block and the engines' `PYTHONHASHSEED` `seed` (NULL when
// unset). On success writes a new hasher to `*out`.
//
// # Safety
// String arguments are NULL or valid for their lengths; `out` is valid for a
// write; `err` is NULL or valid for a write.
llmd_status llmd_hasher_new(const char *vllm_version,
                            size_t vllm_version_len,
                            const char *algo,
                            size_t algo_len,
                            size_t block_size,
                            const char *seed,
                            size_t seed_len,
                            llmd_hasher **out,
                            llmd_error **err);

// Releases a hasher. NULL is accepted and ignored.
//
// # Safety
// `hasher` is NULL or a hasher from `llmd_hasher_new` not yet freed.
void llmd_hasher_free(llmd_hasher *hasher);

// Tokens per hashed block; 0 when `hasher` is NULL.
//
// # Safety
// `hasher` is NULL or a live hasher.
size_t llmd_hasher_block_size(const llmd_hasher *hasher);

// Writes the published keys of the full blocks of `tokens` (a trailing
// partial block is not hashed) to `keys` and their number to `*keys_len`.
// `keys_cap` must be at least `n_tokens / llmd_hasher_block_size(hasher)`,
// otherwise `LLMD_STATUS_BUFFER_TOO_SMALL` and nothing is written.
// `extras` may be NULL for a text-only request.
//
// # Safety
// `hasher` and `extras` are NULL or live; `tokens` is valid for `n_tokens`
// reads, `keys` for `keys_cap` writes; `keys_len` for a write; `err` is NULL
// or valid for a write.
llmd_status llmd_hasher_block_keys(const llmd_hasher *hasher,
                                   const uint32_t *tokens,
                                   size_t n_tokens,
                                   const llmd_hash_extras *extras,
                                   uint64_t *keys,
                                   size_t keys_cap,
                                   size_t *keys_len,
                                   llmd_error **err);

// Creates empty (text-only) request extras.
//
// # Safety
// `out` is valid for a write; `err` is NULL or valid for a write.
llmd_status llmd_hash_extras_new(llmd_hash_extras **out, llmd_error **err);

// Releases request extras. NULL is accepted and ignored.
//
// # Safety
// `extras` is NULL or from `llmd_hash_extras_new`, not yet freed.
void llmd_hash_extras_free(llmd_hash_extras *extras);

// Sets the LoRA adapter: `lora_id` (NULL when absent), `name` and `path`
// (NULL when absent). Which fields are hashed depends on the release.
//
// # Safety
// `extras` is NULL or live and not used by another thread; `lora_id` is NULL
// or valid; strings are NULL or valid for their lengths; `err` is NULL or
// valid for a write.
llmd_status llmd_hash_extras_set_lora(llmd_hash_extras *extras,
                                      const int64_t *lora_id,
                                      const char *name,
                                      size_t name_len,
                                      const char *path,
                                      size_t path_len,
                                      llmd_error **err);

// Sets vLLM's `cache_salt` (NULL clears it).
//
// # Safety
// As `llmd_hash_extras_set_lora`.
llmd_status llmd_hash_extras_set_cache_salt(llmd_hash_extras *extras,
                                            const char *salt,
                                            size_t salt_len,
                                            llmd_error **err);

// Appends a multimodal item: vLLM's item hash `identifier` and its
// placeholder tokens `[offset, offset + length)`. Items go in offset order.
//
// # Safety
// As `llmd_hash_extras_set_lora`.
llmd_status llmd_hash_extras_add_mm_item(llmd_hash_extras *extras,
                                         const char *identifier,
                                         size_t identifier_len,
                                         size_t offset,
                                         size_t length,
                                         llmd_error **err);

// Sets the prompt embeddings: row-major tensor bytes, `row_bytes` per token.
//
// # Safety
// As `llmd_hash_extras_set_lora`; `data` is valid for `data_len` reads.
llmd_status llmd_hash_extras_set_prompt_embeds(llmd_hash_extras *extras,
                                               const uint8_t *data,
                                               size_t data_len,
                                               size_t row_bytes,
                                               llmd_error **err);

// Creates an index (`cfg` NULL: defaults). Invalid sizes give
// `LLMD_STATUS_INDEX` naming the field.
//
// # Safety
// `cfg` is NULL or valid; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_index_new(const llmd_index_config *cfg, llmd_index **out, llmd_error **err);

// Releases an index. NULL is accepted and ignored.
//
// # Safety
// `index` is NULL or an index not yet freed, with no call in flight.
void llmd_index_free(llmd_index *index);

// Registers an endpoint (or finds it) and writes its dense id to `*id`.
//
// # Safety
// `index` NULL or live; `name` valid for `name_len` bytes; `id` valid for a
// write; `err` NULL or valid.
llmd_status llmd_index_register_endpoint(const llmd_index *index,
                                         const char *name,
                                         size_t name_len,
                                         uint16_t *id,
                                         llmd_error **err);

// Removes an endpoint and everything it holds; its id may be reused.
//
// # Safety
// `index` NULL or live; `err` NULL or valid.
llmd_status llmd_index_remove_endpoint(const llmd_index *index, uint16_t id, llmd_error **err);

// Drops every block endpoint `id` holds (its engine restarted), as an
// `AllBlocksCleared` event would; the slot stays registered. An id not
// registered is `LLMD_STATUS_UNKNOWN_ENDPOINT`.
//
// # Safety
// `index` NULL or live; `err` NULL or valid.
llmd_status llmd_index_clear_endpoint(const llmd_index *index, uint16_t id, llmd_error **err);

// Expires the speculative entries whose lifetime ended by `now_ns` (the
// clock `llmd_index_record_routing` is given). Lookups do not read a
// clock: call it periodically (every few hundred milliseconds), or a
// speculative entry stays visible until the next `record_routing` call
// expires a few.
//
// # Safety
// `index` NULL or live; `err` NULL or valid.
llmd_status llmd_index_tick(const llmd_index *index, uint64_t now_ns, llmd_error **err);

// Applies a decoded batch published by endpoint `id` serving `model`;
// `report` (NULL to ignore) receives the counts.
//
// # Safety
// `index`, `batch` NULL or live; `model` valid for its length; `report`
// NULL or valid for a write; `err` NULL or valid.
llmd_status llmd_index_apply_batch(const llmd_index *index,
                                   uint16_t id,
                                   const char *model,
                                   size_t model_len,
                                   const llmd_event_batch *batch,
                                   llmd_index_apply_report *report,
                                   llmd_error **err);

// Writes the keys of a prompt's full blocks in this index's key mode to
// `keys` (`keys_cap` at least `n_tokens / block size`, else
// `LLMD_STATUS_BUFFER_TOO_SMALL`) and their number to `*keys_len`.
//
// # Safety
// `index`, `extras` NULL or live; `model` valid; `tokens` valid for
// `n_tokens` reads; `keys` for `keys_cap` writes; `keys_len` for a write.
llmd_status llmd_index_prompt_keys(const llmd_index *index,
                                   const char *model,
                                   size_t model_len,
                                   const uint32_t *tokens,
                                   size_t n_tokens,
                                   const llmd_hash_extras *extras,
                                   uint64_t *keys,
                                   size_t keys_cap,
                                   size_t *keys_len,
                                   llmd_error **err);

// Writes every endpoint's longest consecutive prefix match of `keys` for
// `model` to `out` and their number to `*out_len` (endpoints without a
// match are left out); `LLMD_STATUS_BUFFER_TOO_SMALL` when more endpoints
// match than `out_cap`. Size it by the registered endpoints
// (`llmd_index_get_stats`), and on `LLMD_STATUS_BUFFER_TOO_SMALL` call again
// with a larger buffer: an endpoint registered, or being removed, while the
// lookup runs can match too.
//
// # Safety
// `index` NULL or live; `model` valid; `keys` valid for `n_keys` reads;
// `out` for `out_cap` writes; `out_len` for a write; `err` NULL or valid.
llmd_status llmd_index_match_prefix(const llmd_index *index,
                                    const char *model,
                                    size_t model_len,
                                    const uint64_t *keys,
                                    size_t n_keys,
                                    llmd_endpoint_match *out,
                                    size_t out_cap,
                                    size_t *out_len,
                                    llmd_error **err);

// Records that a prompt with `keys` was routed to endpoint `id` at
// `now_ns`: the approximate mode's entries, speculative entries otherwise.
//
// # Safety
// `index` NULL or live; `model` valid; `keys` valid for `n_keys` reads;
// `err` NULL or valid.
llmd_status llmd_index_record_routing(const llmd_index *index,
                                      uint16_t id,
                                      const char *model,
                                      size_t model_len,
                                      const uint64_t *keys,
                                      size_t n_keys,
                                      uint64_t now_ns,
                                      llmd_error **err);

// Writes index-wide statistics to `*out`.
//
// # Safety
// `index` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_index_get_stats(const llmd_index *index, llmd_index_stats *out, llmd_error **err);

// Decodes a KV-event payload published by `endpoint` (the third ZMQ frame)
// and applies it to the scheduler's indexes. `seq` (NULL when unknown) is the
// message's sequence number (the second ZMQ frame, 8 bytes big-endian, as
// an integer): duplicates are then ignored and a publisher restart
// drops the endpoint's entries before the batch is applied. `stats` (NULL to
// ignore) receives the counts and the sequence status. Malformed bytes are
// `LLMD_STATUS_DECODE`; nothing is applied then.
//
// # Safety
// `s` is NULL or live; `endpoint` valid for its length; `payload` valid for
// `payload_len` bytes; `seq` NULL or valid for a read; `stats` NULL or valid
// for a write; `err` NULL or
// valid for a write.
llmd_status llmd_scheduler_ingest_kv_events(const llmd_scheduler *s,
                                            const char *endpoint,
                                            size_t endpoint_len,
                                            const uint8_t *payload,
                                            size_t payload_len,
                                            const uint64_t *seq,
                                            llmd_apply_stats *stats,
                                            llmd_error **err);

// Applies an already decoded batch published by `endpoint`.
//
// # Safety
// As `llmd_scheduler_ingest_kv_events`; `batch` is NULL or live.
llmd_status llmd_scheduler_ingest_kv_batch(const llmd_scheduler *s,
                                           const char *endpoint,
                                           size_t endpoint_len,
                                           const llmd_event_batch *batch,
                                           llmd_apply_stats *stats,
                                           llmd_error **err);

// The first token of request `id` arrived. `found` (NULL to ignore)
// tells whether the id was known.
//
// # Safety
// `s` NULL or live; `id` valid for `id_len` bytes; `found` NULL or valid
// for a write; `err` NULL or valid for a write.
llmd_status llmd_scheduler_on_first_token(const llmd_scheduler *s,
                                          const char *id,
                                          size_t id_len,
                                          bool *found,
                                          llmd_error **err);

// Under P/D, the remote prefill of request `id` finished (the KV cache is
// on the decode endpoint): the prefill leg's in-flight gauges are released
// and its time observed (`llmd_inference_prefill_time_seconds`, then
// `llmd_inference_pd_handoff_seconds` at the first token). `found` as in
// `llmd_scheduler_on_first_token`.
//
// # Safety
// As `llmd_scheduler_on_first_token`.
llmd_status llmd_scheduler_on_prefill_done(const llmd_scheduler *s,
                                           const char *id,
                                           size_t id_len,
                                           bool *found,
                                           llmd_error **err);

// Request `id` is served by endpoint `endpoint` instead of its decision's
// first target: the host fell back to another target (one of the
// decision's fallbacks, or its own) after the first could not be reached.
// Its in-flight load and gauges, the endpoint label of its request series
// and the latency model's in-flight accounting move there, and its timings
// train no endpoint's latency model. Call it when the request is sent to
// the new target, before the lifecycle calls that follow. `found` as in
// `llmd_scheduler_on_first_token`; an endpoint that is not registered is
// an error (`LLMD_STATUS_UNKNOWN_ENDPOINT`).
//
// # Safety
// As `llmd_scheduler_on_first_token`; `endpoint` valid for `endpoint_len`
// bytes.
llmd_status llmd_scheduler_on_served_by(const llmd_scheduler *s,
                                        const char *id,
                                        size_t id_len,
                                        const char *endpoint,
                                        size_t endpoint_len,
                                        bool *found,
                                        llmd_error **err);

// `n` more output tokens of request `id` were generated.
//
// # Safety
// As `llmd_scheduler_on_first_token`.
llmd_status llmd_scheduler_on_tokens(const llmd_scheduler *s,
                                     const char *id,
                                     size_t id_len,
                                     uint64_t n,
                                     bool *found,
                                     llmd_error **err);

// Request `id` completed; `cached_tokens` is the engine's reported
// prefix-cache hit (-1 if unknown). `summary` and `found` may be NULL. An
// out-of-range count (below -1, or 2^32 and more) still completes the
// request, and is `LLMD_STATUS_INVALID_ARGUMENT` (see
// `llmd_scheduler_on_complete_usage`).
//
// # Safety
// As `llmd_scheduler_on_first_token`; `summary` NULL or valid for a write.
llmd_status llmd_scheduler_on_complete(const llmd_scheduler *s,
                                       const char *id,
                                       size_t id_len,
                                       int64_t cached_tokens,
                                       llmd_request_summary *summary,
                                       bool *found,
                                       llmd_error **err);

// Request `id` completed with the engine's `usage` (NULL: nothing
// reported): its completion tokens replace the counted ones, so a
// non-streaming reply records its output too (its TTFT is then the whole
// request). A count below -1 or of 2^32 or more is not used; the request
// is completed all the same (`summary` and `found` written) and the call
// fails with `LLMD_STATUS_INVALID_ARGUMENT` naming it. `summary` and `found` may be NULL.
//
// # Safety
// As `llmd_scheduler_on_complete`; `usage` NULL or valid for a read.
llmd_status llmd_scheduler_on_complete_usage(const llmd_scheduler *s,
                                             const char *id,
                                             size_t id_len,
                                             const llmd_usage *usage,
                                             llmd_request_summary *summary,
                                             bool *found,
                                             llmd_error **err);

// Request `id` failed or was cancelled; everything it held is released.
// `kind` is an `llmd_request_error`; another value is
// `LLMD_STATUS_INVALID_ARGUMENT`, but the request is released all the same
// (as `LLMD_REQUEST_ERROR_OTHER`, with `summary` and `found` written): it
// never stays in flight.
//
// # Safety
// As `llmd_scheduler_on_complete`.
llmd_status llmd_scheduler_on_error(const llmd_scheduler *s,
                                    const char *id,
                                    size_t id_len,
                                    uint32_t kind,
                                    llmd_request_summary *summary,
                                    bool *found,
                                    llmd_error **err);

// Renders the scheduler's metrics (TTFT, TPOT, end-to-end, queue, cache
// hits per pool, routing scores, decisions, index and event-stream health;
// the `llmd_*` families) as Prometheus text at the clock's current time.
//
// # Safety
// `s` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_scheduler_render_metrics(const llmd_scheduler *s,
                                          llmd_string **out,
                                          llmd_error **err);

// Starts an exporter to `endpoint` (an `http://host:port/v1/traces` URL)
// with resource `service.name` `service_name` (NULL with 0: "llmd") and
// `sampling_ratio` (0 to 1, by trace id). A bad URL or ratio gives
// `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// Strings valid for their lengths (`service_name` may be NULL with 0);
// `out` valid for a write; `err` NULL or valid.
llmd_status llmd_otlp_exporter_new(const char *endpoint,
                                   size_t endpoint_len,
                                   const char *service_name,
                                   size_t service_name_len,
                                   double sampling_ratio,
                                   llmd_otlp_exporter **out,
                                   llmd_error **err);

// As `llmd_otlp_exporter_new`, with the queue, batch and timing settings
// of `opts` (NULL: the defaults). An interval or timeout over 10^9 s gives
// `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// As `llmd_otlp_exporter_new`; `opts` NULL or valid for a read.
llmd_status llmd_otlp_exporter_new_with_options(const char *endpoint,
                                                size_t endpoint_len,
                                                const char *service_name,
                                                size_t service_name_len,
                                                double sampling_ratio,
                                                const llmd_otlp_options *opts,
                                                llmd_otlp_exporter **out,
                                                llmd_error **err);

// Queues the spans of decision `d` timed from `start_unix_ns` to
// `end_unix_ns` (the host's clock around the pick); never waits on the
// network. Returns whether they were queued: false for NULL arguments, a
// decision without a sampled trace context or outside the sampling ratio,
// or a full queue (each counted).
//
// # Safety
// `e`, `d` NULL or live.
bool llmd_otlp_export_decision(const llmd_otlp_exporter *e,
                               const llmd_decision *d,
                               uint64_t start_unix_ns,
                               uint64_t end_unix_ns);

// Waits until the queued spans are sent (at most `timeout_ms`); returns
// whether the queue drained (false for NULL).
//
// # Safety
// `e` NULL or live.
bool llmd_otlp_flush(const llmd_otlp_exporter *e, uint32_t timeout_ms);

// The export counters (zeros for NULL).
//
// # Safety
// `e` NULL or live.
llmd_otlp_stats llmd_otlp_stats_get(const llmd_otlp_exporter *e);

// Sends what is queued (each batch within the POST timeout), stops the
// export thread and releases the exporter. NULL is ignored.
//
// # Safety
// `e` NULL or not yet freed, with no call on it in flight.
void llmd_otlp_exporter_free(llmd_otlp_exporter *e);

// Creates a scheduler from an llm-d `EndpointPickerConfig` in YAML or JSON
// (`config` NULL or blank: llm-d's default pipeline). `seed` (NULL: random)
// makes tie-breaking reproducible. Malformed documents and invalid plugin
// parameters give `LLMD_STATUS_CONFIG` with a message naming the plugin,
// the field and the reason.
//
// # Safety
// `config` is NULL or valid for `config_len` bytes; `seed` is NULL or valid;
// `out` is valid for a write; `err` is NULL or valid for a write.
llmd_status llmd_scheduler_new(const char *config,
                               size_t config_len,
                               const uint64_t *seed,
                               llmd_scheduler **out,
                               llmd_error **err);

// As `llmd_scheduler_new`, but a configuration with any configured plugin
// or setting that the library accepts and does not execute (a precise
// producer's `kvEventsConfig`, a token producer's `vllm` backend, a
// host-owned plugin) is refused with `LLMD_STATUS_CONFIG`, naming each.
//
// # Safety
// As `llmd_scheduler_new`.
llmd_status llmd_scheduler_new_strict(const char *config,
                                      size_t config_len,
                                      const uint64_t *seed,
                                      llmd_scheduler **out,
                                      llmd_error **err);

// As `llmd_scheduler_new`, with the settings of `opts` (NULL: the
// defaults): seed, strict loading and the open-request limit.
//
// # Safety
// As `llmd_scheduler_new`; `opts` is NULL or valid.
llmd_status llmd_scheduler_new_with_options(const char *config,
                                            size_t config_len,
                                            const llmd_scheduler_options *opts,
                                            llmd_scheduler **out,
                                            llmd_error **err);

// What loading the configuration did, as JSON: `api_version`,
// `feature_gates`, `plugins` (each with `status`, `injected`, `remark` and
// `settings_not_executed`), `warnings`, `document_not_executed` (document-level
// settings accepted but not executed, each `{setting, reason}`), and
// `not_executed` — one line per configured plugin or setting the library
// accepts but does not execute.
//
// # Safety
// `s` is NULL or live; `out` valid for a write; `err` NULL or valid for a write.
llmd_status llmd_scheduler_config_report_json(const llmd_scheduler *s,
                                              llmd_string **out,
                                              llmd_error **err);

// Creates a scheduler from a configuration file (YAML or JSON). An
// unreadable file gives `LLMD_STATUS_IO`.
//
// # Safety
// As `llmd_scheduler_new`; `path` is valid for `path_len` bytes.
llmd_status llmd_scheduler_from_file(const char *path,
                                     size_t path_len,
                                     const uint64_t *seed,
                                     llmd_scheduler **out,
                                     llmd_error **err);

// As `llmd_scheduler_from_file`, with the settings of `opts` (NULL: the
// defaults), as `llmd_scheduler_new_with_options` takes them.
//
// # Safety
// As `llmd_scheduler_from_file`; `opts` is NULL or valid.
llmd_status llmd_scheduler_from_file_with_options(const char *path,
                                                  size_t path_len,
                                                  const llmd_scheduler_options *opts,
                                                  llmd_scheduler **out,
                                                  llmd_error **err);

// Releases a scheduler. NULL is accepted and ignored.
//
// # Safety
// `s` is NULL or a scheduler not yet freed, with no call on it in flight.
void llmd_scheduler_free(llmd_scheduler *s);

// Adds an endpoint. A name already registered, or an address that is not
// `host:port` (IPv6 in brackets, port 1..=65535), is
// `LLMD_STATUS_INVALID_ARGUMENT` (`llmd_scheduler_replace_endpoint`
// changes a registered one).
//
// # Safety
// `s` is NULL or live; `ep` is NULL or valid with every view valid for its
// length; `err` is NULL or valid for a write.
llmd_status llmd_scheduler_add_endpoint(const llmd_scheduler *s,
                                        const llmd_endpoint_desc *ep,
                                        llmd_error **err);

// Replaces the registered endpoint of the same name: its description
// changes, its scraped metrics are kept, its load, cache and index state
// start over; `LLMD_STATUS_UNKNOWN_ENDPOINT` when it is not registered.
//
// # Safety
// As `llmd_scheduler_add_endpoint`.
llmd_status llmd_scheduler_replace_endpoint(const llmd_scheduler *s,
                                            const llmd_endpoint_desc *ep,
                                            llmd_error **err);

// Adds an endpoint given as JSON (`{"name", "address", "labels", "model",
// "lora_adapters", "metrics"}`); malformed JSON is `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// As `llmd_scheduler_add_endpoint`; `json` is valid for `json_len` bytes.
llmd_status llmd_scheduler_add_endpoint_json(const llmd_scheduler *s,
                                             const char *json,
                                             size_t json_len,
                                             llmd_error **err);

// Removes an endpoint; `LLMD_STATUS_UNKNOWN_ENDPOINT` when not registered.
//
// # Safety
// `s` is NULL or live; `name` is valid for `name_len` bytes; `err` is NULL
// or valid for a write.
llmd_status llmd_scheduler_remove_endpoint(const llmd_scheduler *s,
                                           const char *name,
                                           size_t name_len,
                                           llmd_error **err);

// Replaces an endpoint's metrics with numbers.
//
// # Safety
// `s` is NULL or live; `name` valid for `name_len` bytes; `m` is NULL or
// valid with its arrays valid; `err` is NULL or valid for a write.
llmd_status llmd_scheduler_update_metrics(const llmd_scheduler *s,
                                          const char *name,
                                          size_t name_len,
                                          const llmd_endpoint_metrics *m,
                                          llmd_error **err);

// Parses a vLLM `/metrics` scrape (Prometheus text) and stores the snapshot;
// unparsable text is `LLMD_STATUS_METRICS_PARSE`.
//
// # Safety
// `s` is NULL or live; strings valid for their lengths; `err` is NULL or
// valid for a write.
llmd_status llmd_scheduler_update_metrics_text(const llmd_scheduler *s,
                                               const char *name,
                                               size_t name_len,
                                               const char *text,
                                               size_t text_len,
                                               llmd_error **err);

// Releases the requests picked more than `max_age_ms` ago that never
// finished (the host dropped them without `on_complete` / `on_error`): their
// endpoint load, in-flight gauges and latency-model accounting, counted with
// outcome `expired`; `*released` (NULL to ignore) receives how many. Call it
// now and then with an age no request legitimately reaches. Without it the
// open requests are still bounded: a pick that finds
// `llmd_scheduler_open_requests_limit` open expires the oldest sixteenth
// first (`llmd_open_requests_expired_at_limit_total`).
//
// # Safety
// `s` is NULL or live; `released` NULL or valid for a write; `err` NULL or
// valid for a write.
llmd_status llmd_scheduler_expire_requests(const llmd_scheduler *s,
                                           uint64_t max_age_ms,
                                           size_t *released,
                                           llmd_error **err);

// Periodic maintenance (expires speculative index entries). Call it every
// second or so; the library owns no threads.
//
// # Safety
// `s` is NULL or live; `err` is NULL or valid for a write.
llmd_status llmd_scheduler_tick(const llmd_scheduler *s, llmd_error **err);

// Names of the registered endpoints as a JSON list of strings.
//
// # Safety
// `s` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_scheduler_endpoints_json(const llmd_scheduler *s,
                                          llmd_string **out,
                                          llmd_error **err);

// Requests picked and not yet completed (nor failed or expired); 0 when
// `s` is NULL.
//
// # Safety
// `s` is NULL or live.
size_t llmd_scheduler_open_requests(const llmd_scheduler *s);

// The most requests the scheduler holds open between pick and completion
// (`max_open_requests` of `llmd_scheduler_options`, default 2^20); 0 when
// `s` is NULL.
//
// # Safety
// `s` is NULL or live.
size_t llmd_scheduler_open_requests_limit(const llmd_scheduler *s);

// Number of registered endpoints; 0 when `s` is NULL.
//
// # Safety
// `s` is NULL or live.
size_t llmd_scheduler_endpoint_count(const llmd_scheduler *s);

// A static, NUL-terminated name for `status` (e.g. `"LLMD_STATUS_CONFIG"`),
// or `"LLMD_STATUS_UNKNOWN"` for a value this library does not define.
const char *llmd_status_name(uint32_t status);

// The text of `s`, NUL-terminated, owned by `s` and valid until it is freed;
// an empty string when `s` is NULL.
//
// # Safety
// `s` is NULL or a live string returned by this library.
const char *llmd_string_data(const llmd_string *s);

// The length of `s` in bytes, without the terminating NUL; 0 when NULL.
//
// # Safety
// `s` is NULL or a live string returned by this library.
size_t llmd_string_len(const llmd_string *s);

// Releases a string. NULL is accepted and ignored.
//
// # Safety
// `s` is NULL or a string returned by this library and not yet freed.
void llmd_string_free(llmd_string *s);

// Loads a model directory (`tokenizer.json`, `tokenizer_config.json`,
// chat templates as docs/tokenizer.md lists them); nothing is downloaded. A missing or
// malformed file gives `LLMD_STATUS_INVALID_ARGUMENT`, code
// `"tokenizer_file"`, naming the file.
//
// # Safety
// `dir` valid for `dir_len` bytes; `out` valid for a write; `err` NULL or
// valid.
llmd_status llmd_tokenizer_from_dir(const char *dir,
                                    size_t dir_len,
                                    llmd_tokenizer **out,
                                    llmd_error **err);

// As `llmd_tokenizer_from_dir`, rendering as the engine was started:
// `chat_template` as vLLM's `--chat-template` reads it (a file, or the
// template itself when it has `{`, `}` or a line break; NULL with length 0:
// the directory's templates) and `kwargs_json` as its
// `--default-chat-template-kwargs` (a JSON object under every request's own
// kwargs; NULL with length 0: none). A template that cannot be read or
// parsed, or kwargs that are not an object (or name `chat_template`,
// `messages` or `conversation`), give `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// As `llmd_tokenizer_from_dir`; `chat_template` and `kwargs_json` NULL with
// length 0 or valid for their lengths.
llmd_status llmd_tokenizer_from_dir_engine(const char *dir,
                                           size_t dir_len,
                                           const char *chat_template,
                                           size_t chat_template_len,
                                           const char *kwargs_json,
                                           size_t kwargs_len,
                                           llmd_tokenizer **out,
                                           llmd_error **err);

// Token ids of `text` (`/v1/completions` prompts: `add_special_tokens`
// true).
//
// # Safety
// `t` NULL or live; `text` valid for `len` bytes; `out` valid for a write;
// `err` NULL or valid.
llmd_status llmd_tokenizer_encode(const llmd_tokenizer *t,
                                  const char *text,
                                  size_t len,
                                  bool add_special_tokens,
                                  llmd_tokens **out,
                                  llmd_error **err);

// The ids vLLM's chat completions feed the engine for `messages_json` (an
// OpenAI `messages` array), with `add_generation_prompt`; `tools_json` and
// `kwargs_json` (`chat_template_kwargs`) may be NULL. The request's other
// fields (`continue_final_message`, `add_special_tokens`, truncation,
// `documents`) are read by `llmd_tokenizer_encode_openai`, which takes the
// whole body.
//
// # Safety
// `t` NULL or live; each JSON valid for its length (or NULL with 0);
// `out` valid for a write; `err` NULL or valid.
llmd_status llmd_tokenizer_encode_chat(const llmd_tokenizer *t,
                                       const char *messages_json,
                                       size_t messages_len,
                                       bool add_generation_prompt,
                                       const char *tools_json,
                                       size_t tools_len,
                                       const char *kwargs_json,
                                       size_t kwargs_len,
                                       llmd_tokens **out,
                                       llmd_error **err);

// The prompt string vLLM's chat completions render from `messages_json`
// (arguments as `llmd_tokenizer_encode_chat`). Release `*out` with
// `llmd_string_free`. A prompt containing a NUL character (which a C
// string cannot carry) gives `LLMD_STATUS_INVALID_ARGUMENT`.
//
// # Safety
// As `llmd_tokenizer_encode_chat`.
llmd_status llmd_tokenizer_render_chat(const llmd_tokenizer *t,
                                       const char *messages_json,
                                       size_t messages_len,
                                       bool add_generation_prompt,
                                       const char *tools_json,
                                       size_t tools_len,
                                       const char *kwargs_json,
                                       size_t kwargs_len,
                                       llmd_string **out,
                                       llmd_error **err);

// The ids vLLM feeds the engine for an OpenAI body sent to `path`
// (`/v1/completions` or `/v1/chat/completions`), as the gateway received
// it: every body field that reaches the template or the tokenizer applies
// (`tools`, `chat_template_kwargs`, `documents`, `reasoning_effort`,
// `add_special_tokens`, ...). A malformed body gives
// `LLMD_STATUS_INVALID_ARGUMENT`, code `"request"`, naming the field.
//
// # Safety
// `t` NULL or live; `path` and `body` valid for their lengths; `out` valid
// for a write; `err` NULL or valid.
llmd_status llmd_tokenizer_encode_openai(const llmd_tokenizer *t,
                                         const char *path,
                                         size_t path_len,
                                         const uint8_t *body,
                                         size_t body_len,
                                         llmd_tokens **out,
                                         llmd_error **err);

// A new, empty session for one conversation with `t` (which it keeps a
// reference to). Release with `llmd_chat_session_free`.
//
// # Safety
// `t` NULL or live; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_chat_session_new(const llmd_tokenizer *t,
                                  llmd_chat_session **out,
                                  llmd_error **err);

// The ids of the whole conversation `messages_json` (arguments as
// `llmd_tokenizer_encode_chat`), equal to `llmd_tokenizer_encode_chat`'s,
// tokenizing only the text after the previous turn's last safe cut.
//
// # Safety
// `s` NULL or live; otherwise as `llmd_tokenizer_encode_chat`.
llmd_status llmd_chat_session_encode_chat(const llmd_chat_session *s,
                                          const char *messages_json,
                                          size_t messages_len,
                                          bool add_generation_prompt,
                                          const char *tools_json,
                                          size_t tools_len,
                                          const char *kwargs_json,
                                          size_t kwargs_len,
                                          llmd_tokens **out,
                                          llmd_error **err);

// Ids the session's last `llmd_chat_session_encode_chat` took from its
// cache; 0 for NULL.
//
// # Safety
// `s` NULL or live.
size_t llmd_chat_session_reused_tokens(const llmd_chat_session *s);

// Forgets the session's cached prefix: the next call tokenizes the whole
// conversation (as after a new session). NULL is ignored.
//
// # Safety
// `s` NULL or live.
void llmd_chat_session_reset(const llmd_chat_session *s);

// Releases a session. NULL is ignored.
//
// # Safety
// `s` NULL or not yet freed, with no call on it in flight.
void llmd_chat_session_free(llmd_chat_session *s);

// Number of ids.
//
// # Safety
// `t` NULL or live.
size_t llmd_tokens_len(const llmd_tokens *t);

// The ids (valid until `llmd_tokens_free`); NULL for NULL.
//
// # Safety
// `t` NULL or live.
const uint32_t *llmd_tokens_data(const llmd_tokens *t);

// Releases token ids. NULL is ignored.
//
// # Safety
// `t` NULL or not yet freed.
void llmd_tokens_free(llmd_tokens *t);

// Releases a tokenizer (a scheduler it was given to keeps its own
// reference). NULL is ignored.
//
// # Safety
// `t` NULL or not yet freed, with no call on it in flight.
void llmd_tokenizer_free(llmd_tokenizer *t);

// Makes `s` tokenize requests to `model` ("" for every model without its
// own) with `t` in `llmd_scheduler_pick_openai`.
//
// # Safety
// `s`, `t` NULL or live; `model` valid for `model_len` bytes; `err` NULL or
// valid.
llmd_status llmd_scheduler_set_tokenizer(const llmd_scheduler *s,
                                         const char *model,
                                         size_t model_len,
                                         const llmd_tokenizer *t,
                                         llmd_error **err);

// Picks for an OpenAI body as the gateway received it: `path` is
// `/v1/completions` or `/v1/chat/completions`, `request_id` names the
// request for the lifecycle calls, `headers` are the request's. With a
// tokenizer for the model the prompt's ids are the engine's; without one
// they are estimated and the explanation says so. A malformed body gives
// `LLMD_STATUS_INVALID_ARGUMENT` naming the field.
//
// # Safety
// `s` NULL or live; strings valid for their lengths; `headers` NULL with 0
// or valid for `n_headers`; `out` valid for a write; `err` NULL or valid.
llmd_status llmd_scheduler_pick_openai(const llmd_scheduler *s,
                                       const char *request_id,
                                       size_t request_id_len,
                                       const char *path,
                                       size_t path_len,
                                       const uint8_t *body,
                                       size_t body_len,
                                       const llmd_kv *headers,
                                       size_t n_headers,
                                       llmd_decision **out,
                                       llmd_error **err);

// The library's version as `"MAJOR.MINOR.PATCH"`, static and NUL-terminated.
// Compare with the `LLMD_VERSION_*` macros to detect a header/library mismatch.
const char *llmd_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* LLMD_H */
