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

// A failed call's status, a stable machine-readable code and a message.
// Owned by the caller once returned; release it with `llmd_error_free`.
typedef struct llmd_error llmd_error;

// A decoded `EventBatch`. Immutable: share it between threads freely.
typedef struct llmd_event_batch llmd_event_batch;

// Everything besides tokens that changes a request's block hashes. Starts
// as a text-only request; not safe to mutate from two threads at once.
typedef struct llmd_hash_extras llmd_hash_extras;

// Computes the block keys a vLLM engine publishes for a prompt. Immutable
// after creation: share it between threads freely.
typedef struct llmd_hasher llmd_hasher;

// Owned, NUL-terminated UTF-8 text. Release it with `llmd_string_free`.
typedef struct llmd_string llmd_string;

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

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The status of `err`; `LLMD_STATUS_NULL_ARGUMENT` when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
llmd_status llmd_error_status(const llmd_error *err);

// The NUL-terminated message of `err`, owned by `err` and valid until it is
// freed; an empty string when `err` is NULL.
//
// # Safety
// `err` is NULL or a live error returned by this library.
const char *llmd_error_message(const llmd_error *err);

// A stable lowercase code for `err`, finer than its status when the library
// knows more (e.g. `"no_candidates"` under `LLMD_STATUS_SCHEDULE`); owned by
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

// Writes the publisher's data-parallel rank to `*rank` and returns true when
// the batch carries one; returns false (writing nothing) otherwise.
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

// The library's version as `"MAJOR.MINOR.PATCH"`, static and NUL-terminated.
// Compare with the `LLMD_VERSION_*` macros to detect a header/library mismatch.
const char *llmd_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* LLMD_H */
