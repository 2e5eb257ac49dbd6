// Package cbench runs the pick loop of bindings/c/bench/pick_bench.c from
// C, so that Go benchmarks can alternate it with the same loop through the
// Go API in one process and measure what Go adds on a noisy machine.
package cbench

/*
#cgo pkg-config: llmd
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <llmd.h>

#define V(lit) ((llmd_str){lit, sizeof(lit) - 1})

static llmd_scheduler *setup(void) {
  uint64_t seed = 1;
  llmd_scheduler *s = NULL;
  if (llmd_scheduler_new(NULL, 0, &seed, &s, NULL) != LLMD_STATUS_OK) return NULL;
  for (int i = 0; i < 4; i++) {
    char name[16], addr[32];
    int nl = snprintf(name, sizeof name, "pod-%d", i);
    int al = snprintf(addr, sizeof addr, "10.0.0.%d:8000", i);
    llmd_endpoint_desc ep = {{name, (size_t)nl}, {addr, (size_t)al}, V("llama"), NULL, 0, NULL, 0};
    llmd_endpoint_metrics m;
    memset(&m, 0, sizeof m);
    m.waiting_queue_size = (uint32_t)i;
    m.running_requests_size = 2 * (uint32_t)i;
    m.kv_cache_usage = 0.1 * i;
    if (llmd_scheduler_add_endpoint(s, &ep, NULL) != LLMD_STATUS_OK ||
        llmd_scheduler_update_metrics(s, name, (size_t)nl, &m, NULL) != LLMD_STATUS_OK) {
      llmd_scheduler_free(s);
      return NULL;
    }
  }
  return s;
}

// What a host does with a decision: read it, free it, complete the request.
static void read_and_complete(const llmd_scheduler *s, llmd_decision *d) {
  llmd_decision_info info;
  llmd_decision_get_info(d, &info);
  llmd_decision_free(d);
  llmd_scheduler_on_complete(s, "bench", 5, -1, NULL, NULL, NULL);
}

// Nanoseconds per pick+complete over iters iterations; negative on failure.
static double pick_loop(const llmd_scheduler *s, long iters) {
  uint32_t tokens[256];
  for (uint32_t i = 0; i < 256; i++) tokens[i] = i + 1;
  llmd_request_desc req;
  memset(&req, 0, sizeof req);
  req.id = V("bench");
  req.model = V("llama");
  req.tokens = tokens;
  req.n_tokens = 256;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iters; i++) {
    llmd_decision *d = NULL;
    if (llmd_scheduler_pick(s, &req, &d, NULL) != LLMD_STATUS_OK) return -1;
    read_and_complete(s, d);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
}

// The same scheduler, tokenizing chat bodies to model "llama" with the
// tokenizer in dir.
static llmd_scheduler *setup_openai(const char *dir, size_t dir_len) {
  llmd_scheduler *s = setup();
  llmd_tokenizer *t = NULL;
  if (s == NULL || llmd_tokenizer_from_dir(dir, dir_len, &t, NULL) != LLMD_STATUS_OK ||
      llmd_scheduler_set_tokenizer(s, "llama", 5, t, NULL) != LLMD_STATUS_OK) {
    llmd_tokenizer_free(t);
    llmd_scheduler_free(s);
    return NULL;
  }
  llmd_tokenizer_free(t);
  return s;
}

// Nanoseconds per pick_openai+complete of body over iters iterations.
static double pick_openai_loop(const llmd_scheduler *s, const char *body, size_t body_len, long iters) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iters; i++) {
    llmd_decision *d = NULL;
    if (llmd_scheduler_pick_openai(s, "bench", 5, "/v1/chat/completions", 20, (const uint8_t *)body, body_len,
                                   NULL, 0, &d, NULL) != LLMD_STATUS_OK)
      return -1;
    read_and_complete(s, d);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
}

// Nanoseconds per lifecycle call for an unknown id.
static double call_loop(const llmd_scheduler *s, long iters) {
  struct timespec t0, t1;
  bool found = false;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iters; i++) llmd_scheduler_on_first_token(s, "unknown", 7, &found, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Loop is a scheduler set up like the C benchmark's, driven from C.
type Loop struct{ s *C.llmd_scheduler }

// New sets up the scheduler.
func New() (*Loop, error) {
	s := C.setup()
	if s == nil {
		return nil, errors.New("cbench: setup failed")
	}
	return &Loop{s}, nil
}

// Pick returns nanoseconds per pick+complete over iters iterations in C.
func (l *Loop) Pick(iters int) float64 { return float64(C.pick_loop(l.s, C.long(iters))) }

// Call returns nanoseconds per bare lifecycle call over iters iterations in C.
func (l *Loop) Call(iters int) float64 { return float64(C.call_loop(l.s, C.long(iters))) }

// NewOpenAI sets up the scheduler with the tokenizer in dir for "llama".
func NewOpenAI(dir string) (*Loop, error) {
	cd := C.CString(dir)
	defer C.free(unsafe.Pointer(cd))
	s := C.setup_openai(cd, C.size_t(len(dir)))
	if s == nil {
		return nil, errors.New("cbench: openai setup failed")
	}
	return &Loop{s}, nil
}

// PickOpenAI returns nanoseconds per pick_openai+complete of body over iters
// iterations in C; negative on failure.
func (l *Loop) PickOpenAI(body []byte, iters int) float64 {
	cb := C.CBytes(body)
	defer C.free(cb)
	return float64(C.pick_openai_loop(l.s, (*C.char)(cb), C.size_t(len(body)), C.long(iters)))
}

// Close frees the scheduler.
func (l *Loop) Close() { C.llmd_scheduler_free(l.s) }
