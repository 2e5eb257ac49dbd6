/* Per-pick cost from C: llm-d's default pipeline, 4 endpoints with metrics,
 * a 256-token prompt; each iteration picks, reads the primary target, frees
 * the decision and completes the request (the same loop as the Rust
 * criterion bench `pick/rust` and the Go BenchmarkPick). Prints the median
 * of 7 runs in ns per iteration. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmd.h"

#define V(lit) ((llmd_str){lit, sizeof(lit) - 1})

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 200000;
  uint64_t seed = 1;
  llmd_scheduler *s = NULL;
  llmd_error *err = NULL;
  if (llmd_scheduler_new(NULL, 0, &seed, &s, &err) != LLMD_STATUS_OK) {
    fprintf(stderr, "scheduler: %s\n", llmd_error_message(err));
    return 1;
  }
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
      fprintf(stderr, "endpoint setup failed\n");
      return 1;
    }
  }
  uint32_t tokens[256];
  for (uint32_t i = 0; i < 256; i++) tokens[i] = i + 1;
  llmd_request_desc req;
  memset(&req, 0, sizeof req);
  req.id = V("bench");
  req.model = V("llama");
  req.tokens = tokens;
  req.n_tokens = 256;

  double runs[7];
  size_t sink = 0;
  for (int r = 0; r < 7; r++) {
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      llmd_decision *d = NULL;
      if (llmd_scheduler_pick(s, &req, &d, NULL) != LLMD_STATUS_OK) return 1;
      llmd_decision_info info;
      if (llmd_decision_get_info(d, &info)) sink += info.primary.address.len;
      llmd_decision_free(d);
      llmd_scheduler_on_complete(s, "bench", 5, -1, NULL, NULL, NULL);
    }
    runs[r] = (now_ns() - t0) / (double)iters;
  }
  qsort(runs, 7, sizeof runs[0], cmp);
  printf("c pick+complete: median %.0f ns/iter (min %.0f, max %.0f, %ld iters x 7) [%zu]\n",
         runs[3], runs[0], runs[6], iters, sink % 2);
  /* The bare boundary: a lifecycle call for an unknown id. */
  long calls = iters * 20;
  for (int r = 0; r < 7; r++) {
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
      bool found = false;
      llmd_scheduler_on_first_token(s, "unknown", 7, &found, NULL);
      sink += found;
    }
    runs[r] = (now_ns() - t0) / (double)calls;
  }
  qsort(runs, 7, sizeof runs[0], cmp);
  printf("c on_first_token(unknown): median %.1f ns/call (min %.1f, max %.1f) [%zu]\n", runs[3],
         runs[0], runs[6], sink % 2);
  llmd_scheduler_free(s);
  return 0;
}
