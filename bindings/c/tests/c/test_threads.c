/* One scheduler shared by several threads: picks, lifecycle calls and
 * metrics updates run concurrently on the same const handle. */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"

#define V(lit) ((llmd_str){lit, sizeof(lit) - 1})
#define THREADS 4
#define ITERS 150

static const llmd_scheduler *shared;
static int failures[THREADS];

static void *worker(void *arg) {
  int t = (int)(size_t)arg;
  uint32_t tokens[64];
  for (uint32_t i = 0; i < 64; i++) tokens[i] = (uint32_t)t * 1000 + i;
  for (int i = 0; i < ITERS; i++) {
    char id[32];
    int n = snprintf(id, sizeof id, "t%d-%d", t, i);
    llmd_request_desc req;
    memset(&req, 0, sizeof req);
    req.id = (llmd_str){id, (size_t)n};
    req.model = V("llama");
    req.tokens = tokens;
    req.n_tokens = 16 + (size_t)(i % 48);
    llmd_decision *d = NULL;
    llmd_error *err = NULL;
    if (llmd_scheduler_pick(shared, &req, &d, &err) != LLMD_STATUS_OK) {
      failures[t]++;
      llmd_error_free(err);
      continue;
    }
    llmd_decision_info info;
    if (!llmd_decision_get_info(d, &info) || info.n_targets == 0) failures[t]++;
    llmd_decision_free(d);
    bool found = false;
    llmd_scheduler_on_first_token(shared, id, (size_t)n, &found, NULL);
    if (!found) failures[t]++;
    llmd_scheduler_on_complete(shared, id, (size_t)n, 0, NULL, &found, NULL);
    if (!found) failures[t]++;
    if (i % 10 == 0) {
      llmd_endpoint_metrics m;
      memset(&m, 0, sizeof m);
      m.waiting_queue_size = (uint32_t)(i % 7);
      m.kv_cache_usage = (i % 10) / 10.0;
      if (llmd_scheduler_update_metrics(shared, t % 2 ? "pod-a" : "pod-b", 5, &m, NULL) != LLMD_STATUS_OK)
        failures[t]++;
    }
  }
  return NULL;
}

int main(void) {
  llmd_error *err = NULL;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, NULL, &s, &err), &err);
  llmd_endpoint_desc a = {V("pod-a"), V("10.0.0.1:8000"), V("llama"), NULL, 0, NULL, 0};
  llmd_endpoint_desc b = {V("pod-b"), V("10.0.0.2:8000"), V("llama"), NULL, 0, NULL, 0};
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(s, &a, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(s, &b, &err), &err);
  shared = s;
  pthread_t threads[THREADS];
  for (size_t t = 0; t < THREADS; t++) CHECK(pthread_create(&threads[t], NULL, worker, (void *)t) == 0);
  for (size_t t = 0; t < THREADS; t++) {
    CHECK(pthread_join(threads[t], NULL) == 0);
    CHECK(failures[t] == 0);
  }
  llmd_scheduler_free(s);
  return check_summary("test_threads");
}
