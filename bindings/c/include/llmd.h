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

// A failed call's status, a stable machine-readable code and a message.
// Owned by the caller once returned; release it with `llmd_error_free`.
typedef struct llmd_error llmd_error;

// Owned, NUL-terminated UTF-8 text. Release it with `llmd_string_free`.
typedef struct llmd_string llmd_string;

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
