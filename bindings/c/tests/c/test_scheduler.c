/* The scheduler through the C ABI: configuration, endpoints, metrics as
 * numbers and as vLLM text, KV events, picks with explanations, lifecycle,
 * and the documented statuses for bad input. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen, unlink */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1
#define V(lit) ((llmd_str){lit, sizeof(lit) - 1})

static llmd_error *err = NULL;

/* Registers pod-a (10.0.0.1:8000) and pod-b (10.0.0.2:8000) serving "llama". */
static void add_pods(const llmd_scheduler *s) {
  llmd_kv role = {V("llm-d.ai/role"), V("decode")};
  llmd_endpoint_desc a = {V("pod-a"), V("10.0.0.1:8000"), V("llama"), &role, 1, NULL, 0};
  llmd_endpoint_desc b = {V("pod-b"), V("10.0.0.2:8000"), V("llama"), &role, 1, NULL, 0};
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(s, &a, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(s, &b, &err), &err);
}

/* Picks for a token prompt 1..n and returns whether the primary is `name`. */
static int picks(const llmd_scheduler *s, const char *id, uint32_t n, const char *name) {
  uint32_t tokens[256];
  for (uint32_t i = 0; i < n && i < 256; i++) tokens[i] = i + 1;
  llmd_request_desc req = {0};
  req.id = (llmd_str){id, strlen(id)};
  req.model = V("llama");
  req.tokens = tokens;
  req.n_tokens = n;
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick(s, &req, &d, &err), &err);
  if (d == NULL) return 0;
  llmd_decision_info info;
  CHECK(llmd_decision_get_info(d, &info));
  int same = info.primary.name.len == strlen(name) &&
             memcmp(info.primary.name.ptr, name, info.primary.name.len) == 0;
  llmd_decision_free(d);
  return same;
}

static void test_pick_and_explain(void) {
  uint64_t seed = 7;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, &seed, &s, &err), &err);
  add_pods(s);
  CHECK(llmd_scheduler_endpoint_count(s) == 2);

  llmd_kv hdr = {V("x-request-id"), V("abc")};
  llmd_request_desc req = {0};
  req.id = V("r1");
  req.model = V("llama");
  req.prompt = V("hello world, route me somewhere");
  req.headers = &hdr;
  req.n_headers = 1;
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick(s, &req, &d, &err), &err);
  llmd_decision_info info;
  CHECK(llmd_decision_get_info(d, &info));
  CHECK(info.n_targets >= 1 && info.primary.name.len == 5 && !info.has_prefill);
  CHECK(info.n_headers >= 1);
  int found_dest = 0;
  for (size_t i = 0; i < info.n_headers; i++) {
    llmd_kv h = llmd_decision_header(d, i);
    if (h.key.len == strlen("x-gateway-destination-endpoint") &&
        memcmp(h.key.ptr, "x-gateway-destination-endpoint", h.key.len) == 0) {
      found_dest = h.value.len == info.primary.address.len &&
                   memcmp(h.value.ptr, info.primary.address.ptr, h.value.len) == 0;
    }
  }
  CHECK(found_dest);
  llmd_target t0 = llmd_decision_target(d, 0);
  CHECK(t0.name.ptr == info.primary.name.ptr);
  CHECK(llmd_decision_target(d, 99).name.ptr == NULL);
  CHECK(llmd_decision_header(d, 99).key.ptr == NULL);

  llmd_string *json = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_explanation_json(d, &json, &err), &err);
  CHECK(llmd_string_len(json) > 2 && llmd_string_data(json)[0] == '{');
  CHECK(strstr(llmd_string_data(json), "pod-a") != NULL);
  CHECK(strstr(llmd_string_data(json), "pod-b") != NULL);
  llmd_string_free(json);
  json = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_json(d, &json, &err), &err);
  CHECK(strstr(llmd_string_data(json), "\"targets\"") != NULL);
  llmd_string_free(json);
  llmd_decision_free(d);

  /* Lifecycle. */
  bool found = false;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_first_token(s, S("r1"), &found, &err), &err);
  CHECK(found);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_tokens(s, S("r1"), 9, &found, &err), &err);
  llmd_request_summary sum;
  memset(&sum, 0, sizeof sum);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("r1"), 4, &sum, &found, &err), &err);
  CHECK(found && sum.cached_tokens == 4 && sum.output_tokens >= 9 && sum.error == 0);
  CHECK(sum.finished_at_ns >= sum.scheduled_at_ns);
  /* No predicted-latency-producer in this config: no prediction. */
  CHECK(sum.predicted_ttft_ms == -1.0 && sum.predicted_tpot_ms == -1.0);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("r1"), -1, NULL, &found, &err), &err);
  CHECK(!found);
  /* Opens r2 on whichever pod wins; picks() checks the pick status itself. */
  (void)picks(s, "r2", 32, "pod-a");
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_on_error(s, S("r2"), LLMD_REQUEST_ERROR_UPSTREAM, &sum, &found, &err), &err);
  CHECK(found && sum.error == LLMD_REQUEST_ERROR_UPSTREAM);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_on_error(s, S("r2"), 77, NULL, NULL, &err), &err);
  RESET_ERR(err);
  /* An unknown kind still releases the request (as other), with the error. */
  (void)picks(s, "r3", 32, "pod-a");
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_on_error(s, S("r3"), 0, &sum, &found, &err), &err);
  RESET_ERR(err);
  CHECK(found && sum.error == LLMD_REQUEST_ERROR_OTHER);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("r3"), -1, NULL, &found, &err), &err);
  CHECK(!found);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_tick(s, &err), &err);

  /* Token ids passed apart from the descriptor (one copy, no C buffer). */
  {
    uint32_t ids[48];
    for (uint32_t i = 0; i < 48; i++) ids[i] = i + 1;
    llmd_request_desc t = {0};
    t.id = V("tok");
    t.model = V("llama");
    llmd_decision *td = NULL;
    CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick_tokens(s, &t, ids, 48, &td, &err), &err);
    CHECK(td != NULL);
    llmd_decision_free(td);
    llmd_scheduler_on_complete(s, S("tok"), -1, NULL, NULL, NULL);
    t.prompt = V("text too");
    CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick_tokens(s, &t, ids, 48, &td, &err), &err);
    RESET_ERR(err);
    t.prompt = (llmd_str){NULL, 0};
    CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick_tokens(s, &t, NULL, 48, &td, &err), &err);
    RESET_ERR(err);
  }

  /* A non-streaming reply: the engine's usage gives the output tokens. */
  (void)picks(s, "r3", 32, "pod-a");
  llmd_usage usage = {32, 50, 16};
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete_usage(s, S("r3"), &usage, &sum, &found, &err), &err);
  CHECK(found && sum.output_tokens == 50 && sum.cached_tokens == 16 && sum.first_token_at_ns == 0);
  /* Out-of-range counts are refused, but the request is completed anyway. */
  (void)picks(s, "r4", 32, "pod-a");
  llmd_usage huge = {-1, (int64_t)1 << 40, -1};
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_on_complete_usage(s, S("r4"), &huge, &sum, &found, &err), &err);
  CHECK(strstr(llmd_error_message(err), "completion_tokens") != NULL);
  RESET_ERR(err);
  CHECK(found);
  (void)picks(s, "r5", 32, "pod-a");
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_on_complete(s, S("r5"), (int64_t)1 << 33, NULL, &found, &err), &err);
  RESET_ERR(err);
  CHECK(found);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("r5"), -1, NULL, &found, &err), &err);
  CHECK(!found); /* already completed */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete_usage(s, S("r6"), NULL, NULL, &found, &err), &err);
  CHECK(!found);

  /* Metrics for the host's /metrics handler: r1 completed with a first token. */
  llmd_string *text = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_render_metrics(s, &text, &err), &err);
  CHECK(strstr(llmd_string_data(text), "llmd_inference_ttft_bucket") != NULL);
  CHECK(strstr(llmd_string_data(text), "llmd_router_routing_score_bucket") != NULL);
  CHECK(strstr(llmd_string_data(text), "llmd_router_decisions") != NULL);
  CHECK(strlen(llmd_string_data(text)) == llmd_string_len(text));
  llmd_string_free(text);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_render_metrics(NULL, &text, &err), &err);
  RESET_ERR(err);

  /* The same request as JSON. */
  const char rj[] = "{\"id\":\"r3\",\"model\":\"llama\",\"prompt\":{\"tokens\":[1,2,3]}}";
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick_json(s, S(rj), &d, &err), &err);
  llmd_decision_free(d);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick_json(s, S("{\"id\":"), &d, &err), &err);
  RESET_ERR(err);
  llmd_scheduler_free(s);
}

static void test_metrics_steer_picks(void) {
  uint64_t seed = 1;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(""), &seed, &s, &err), &err);
  add_pods(s);
  llmd_endpoint_metrics busy = {0};
  busy.waiting_queue_size = 40;
  busy.running_requests_size = 60;
  busy.kv_cache_usage = 0.95;
  llmd_endpoint_metrics idle = {0};
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_update_metrics(s, S("pod-a"), &busy, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_update_metrics(s, S("pod-b"), &idle, &err), &err);
  CHECK(picks(s, "m1", 64, "pod-b"));
  llmd_scheduler_on_error(s, S("m1"), LLMD_REQUEST_ERROR_CANCELLED, NULL, NULL, NULL);

  /* vLLM /metrics text turns it around. */
  const char busy_text[] =
      "# TYPE vllm:num_requests_waiting gauge\n"
      "vllm:num_requests_waiting{model_name=\"llama\"} 50\n"
      "vllm:num_requests_running{model_name=\"llama\"} 64\n"
      "vllm:kv_cache_usage_perc{model_name=\"llama\"} 0.97\n";
  const char idle_text[] =
      "vllm:num_requests_waiting{model_name=\"llama\"} 0\n"
      "vllm:num_requests_running{model_name=\"llama\"} 1\n"
      "vllm:kv_cache_usage_perc{model_name=\"llama\"} 0.05\n";
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_update_metrics_text(s, S("pod-b"), S(busy_text), &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_update_metrics_text(s, S("pod-a"), S(idle_text), &err), &err);
  CHECK(picks(s, "m2", 64, "pod-a"));
  llmd_scheduler_on_error(s, S("m2"), LLMD_REQUEST_ERROR_CANCELLED, NULL, NULL, NULL);

  CHECK_STATUS(LLMD_STATUS_METRICS_PARSE,
               llmd_scheduler_update_metrics_text(s, S("pod-a"), S("vllm:num_requests_waiting{ 1\n"), &err), &err);
  CHECK(strlen(llmd_error_message(err)) > 0);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT,
               llmd_scheduler_update_metrics(s, S("pod-z"), &idle, &err), &err);
  CHECK(llmd_error_detail(err) == 1002);
  RESET_ERR(err);
  busy.kv_cache_usage = 2.0;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_update_metrics(s, S("pod-a"), &busy, &err), &err);
  RESET_ERR(err);

  /* Removing both leaves nothing to pick. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_remove_endpoint(s, S("pod-a"), &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_remove_endpoint(s, S("pod-b"), &err), &err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_scheduler_remove_endpoint(s, S("pod-b"), &err), &err);
  RESET_ERR(err);
  llmd_request_desc req = {0};
  req.id = V("none");
  req.model = V("llama");
  llmd_decision *d = (llmd_decision *)0x1;
  /* Without a prompt the request itself is refused (400) first. */
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(s, &req, &d, &err), &err);
  CHECK(strcmp(llmd_error_code(err), "invalid_request") == 0 && llmd_error_detail(err) == 400);
  RESET_ERR(err);
  req.prompt = V("hello");
  /* A request without an id (a zero-initialised one) is refused too: two
     would share one lifecycle record. */
  llmd_request_desc anon = req;
  anon.id = (llmd_str){NULL, 0};
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(s, &anon, &d, &err), &err);
  CHECK(strstr(llmd_error_message(err), "no id") != NULL);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_SCHEDULE, llmd_scheduler_pick(s, &req, &d, &err), &err);
  CHECK(d == (llmd_decision *)0x1);
  CHECK(strcmp(llmd_error_code(err), "no_endpoints") == 0);
  CHECK(llmd_error_detail(err) == 503);
  RESET_ERR(err);
  llmd_scheduler_free(s);
}

/* [ts, [BlockStored([111, 222], nil, 1..32, 16, nil, "GPU"), BlockRemoved([111], "CPU"),
 * AllBlocksCleared], dp_rank 0] in vLLM 0.10.2's layout, and the same without the
 * last two events (the stored blocks stay). */
static const uint8_t STORED_ONLY[] = {
    0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0x00, 0x00, 0x91, 0x97, 0xab, 0x42,
    0x6c, 0x6f, 0x63, 0x6b, 0x53, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x92, 0x6f, 0xcc, 0xde,
    0xc0, 0xdc, 0x00, 0x20, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x10, 0xc0, 0xa3, 0x47, 0x50, 0x55,
    0x00};

static const char PRECISE[] =
    "apiVersion: llm-d.ai/v1alpha1\n"
    "kind: EndpointPickerConfig\n"
    "plugins:\n"
    "- name: kv-index\n"
    "  type: precise-prefix-cache-producer\n"
    "  parameters:\n"
    "    tokenProcessorConfig:\n"
    "      blockSizeTokens: 16\n"
    "- type: prefix-cache-scorer\n"
    "  parameters:\n"
    "    prefixMatchInfoProducerName: kv-index\n"
    "- type: max-score-picker\n"
    "schedulingProfiles:\n"
    "- name: default\n"
    "  plugins:\n"
    "  - pluginRef: prefix-cache-scorer\n"
    "    weight: 1\n"
    "  - pluginRef: max-score-picker\n";

/* STORED_ONLY's event, a clear, the event, a clear, the event: one batch. */
static size_t superseding_batch(uint8_t *out) {
  static const uint8_t CLEAR[] = {0x91, 0xb0, 'A', 'l', 'l', 'B', 'l', 'o', 'c',
                                  'k',  's',  'C', 'l', 'e', 'a', 'r', 'e', 'd'};
  const uint8_t *ev = STORED_ONLY + 11; /* after [ts, [ */
  size_t ev_len = sizeof STORED_ONLY - 12, n = 10;
  memcpy(out, STORED_ONLY, n);
  out[n++] = 0x95;
  for (int i = 0; i < 5; i++) {
    memcpy(out + n, i % 2 ? CLEAR : ev, i % 2 ? sizeof CLEAR : ev_len);
    n += i % 2 ? sizeof CLEAR : ev_len;
  }
  out[n++] = 0x00;
  return n;
}

static void test_ingest_counts_by_reason(void) {
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(PRECISE), NULL, &s, &err), &err);
  add_pods(s);
  uint8_t payload[256];
  size_t n = superseding_batch(payload);
  llmd_apply_stats st;
  memset(&st, 0xff, sizeof st);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_ingest_kv_events(s, S("pod-a"), payload, n, NULL, &st, &err), &err);
  CHECK(st.superseded == 3 && st.cleared == 1 && st.stored == 2 && st.skipped == 0);
  CHECK(st.skipped_unknown_parent == 0 && st.skipped_unknown_medium == 0 && st.skipped_stale == 0);
  CHECK(st.parity_mismatches == 0);
  /* A block on a medium this library does not know is skipped, with its reason. */
  uint8_t nvme[sizeof STORED_ONLY];
  memcpy(nvme, STORED_ONLY, sizeof nvme);
  memcpy(nvme + sizeof nvme - 4, "XYZ", 3);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-b"), nvme, sizeof nvme, NULL, &st, &err), &err);
  CHECK(st.stored == 0 && st.skipped == 1 && st.skipped_unknown_medium == 1 && st.superseded == 0);
  llmd_scheduler_free(s);
}

static void test_kv_events_steer_picks(void) {
  uint64_t seed = 3;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(PRECISE), &seed, &s, &err), &err);
  add_pods(s);
  llmd_apply_stats st;
  memset(&st, 0, sizeof st);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-b"), STORED_ONLY, sizeof STORED_ONLY, NULL, &st, &err),
               &err);
  CHECK(st.stored == 2);
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "kv%d", i);
    CHECK(picks(s, id, 48, "pod-b"));
    llmd_scheduler_on_complete(s, id, strlen(id), -1, NULL, NULL, NULL);
  }
  /* The decoded-batch path gives the same counts. */
  llmd_event_batch *b = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_decode(STORED_ONLY, sizeof STORED_ONLY, &b, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_ingest_kv_batch(s, S("pod-a"), b, &st, &err), &err);
  CHECK(st.stored == 2);
  llmd_event_batch_free(b);
  /* With sequence numbers: first, duplicate (ignored), gap, restart. */
  uint64_t seq = 7;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-a"), STORED_ONLY, sizeof STORED_ONLY, &seq, &st, &err),
               &err);
  CHECK(st.seq_status == LLMD_SEQ_STATUS_FIRST && st.ignored == 0); /* blocks already held: nothing new */
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-a"), STORED_ONLY, sizeof STORED_ONLY, &seq, &st, &err),
               &err);
  CHECK(st.seq_status == LLMD_SEQ_STATUS_DUPLICATE && st.ignored == 1 && st.stored == 0);
  seq = 10;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-a"), STORED_ONLY, sizeof STORED_ONLY, &seq, &st, &err),
               &err);
  CHECK(st.seq_status == LLMD_SEQ_STATUS_GAP && st.missing == 2);
  seq = 0;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_ingest_kv_events(s, S("pod-a"), STORED_ONLY, sizeof STORED_ONLY, &seq, &st, &err),
               &err);
  CHECK(st.seq_status == LLMD_SEQ_STATUS_RESTART && st.cleared >= 1 && st.stored == 2);
  /* Malformed bytes: DECODE, nothing applied. */
  CHECK_STATUS(LLMD_STATUS_DECODE,
               llmd_scheduler_ingest_kv_events(s, S("pod-b"), STORED_ONLY, 30, NULL, &st, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT,
               llmd_scheduler_ingest_kv_events(s, S("pod-x"), STORED_ONLY, sizeof STORED_ONLY, NULL, NULL, &err),
               &err);
  RESET_ERR(err);
  /* A length no object can have is refused, not trusted. */
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_ingest_kv_events(s, S("pod-a"), STORED_ONLY, SIZE_MAX, NULL, NULL, &err), &err);
  RESET_ERR(err);
  /* Malformed bytes from a name never registered: that, and no metric
   * series for the name. */
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT,
               llmd_scheduler_ingest_kv_events(s, S("pod-x"), STORED_ONLY, 30, NULL, NULL, &err), &err);
  RESET_ERR(err);
  llmd_string *m = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_render_metrics(s, &m, &err), &err);
  CHECK(strstr(llmd_string_data(m), "pod-x") == NULL);
  llmd_string_free(m);
  llmd_scheduler_free(s);
}

static void test_bad_input(void) {
  llmd_scheduler *s = (llmd_scheduler *)0x1;
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_new(S("plugins: [\n  - {type: "), NULL, &s, &err), &err);
  CHECK(s == (llmd_scheduler *)0x1);
  RESET_ERR(err);
  const char unknown[] =
      "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
      "plugins:\n- type: no-such-scorer\n";
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_new(S(unknown), NULL, &s, &err), &err);
  CHECK(strstr(llmd_error_message(err), "no-such-scorer") != NULL);
  CHECK(llmd_error_detail(err) == 1001);
  RESET_ERR(err);
  const char bad_utf8[] = {'k', 'i', 'n', 'd', ':', ' ', (char)0xc3, (char)0x28};
  CHECK_STATUS(LLMD_STATUS_INVALID_UTF8, llmd_scheduler_new(bad_utf8, sizeof bad_utf8, NULL, &s, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_IO, llmd_scheduler_from_file(S("/nonexistent/llmd.yaml"), NULL, &s, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_new(NULL, 0, NULL, NULL, &err), &err);
  RESET_ERR(err);
  CHECK(s == (llmd_scheduler *)0x1);

  /* Endpoints: duplicate names and unparsable addresses are refused;
   * replace changes a registered one only. */
  llmd_scheduler *e = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, NULL, &e, &err), &err);
  llmd_endpoint_desc desc = {0};
  desc.name = V("pod-x");
  desc.address = V("10.0.0.9:8000");
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(e, &desc, &err), &err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_add_endpoint(e, &desc, &err), &err);
  CHECK(strstr(llmd_error_message(err), "already registered") != NULL);
  RESET_ERR(err);
  desc.address = V("10.0.0.10:8001");
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_replace_endpoint(e, &desc, &err), &err);
  desc.address = V("10.0.0.9");
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_replace_endpoint(e, &desc, &err), &err);
  RESET_ERR(err);
  desc.name = V("pod-y");
  desc.address = V("10.0.0.11:8000");
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_scheduler_replace_endpoint(e, &desc, &err), &err);
  RESET_ERR(err);
  CHECK(llmd_scheduler_endpoint_count(e) == 1);
  llmd_scheduler_free(e);

  /* Every example configuration loads. */
  const char *configs[] = {"01-default-load-and-prefix.yaml", "02-precise-prefix-kv-events.yaml",
                           "03-pd-disaggregation-prefix-decider.yaml", "04-session-affinity-lora.yaml",
                           "05-legacy-apiversion.yaml", "06-v1-flow-control-affinity.yaml",
                           "07-alpha-attribute-topology.yaml", "08-v0.2-era-cache-tracking-pd.yaml",
                           "09-v0.6-era-pd-decider-data-parallel.yaml"};
  for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/llm-d-configs/%s", LLMD_TESTDATA, configs[i]);
    llmd_scheduler *c = NULL;
    CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_from_file(path, strlen(path), NULL, &c, &err), &err);
    RESET_ERR(err);
    llmd_scheduler_free(c);
  }

  /* A freed-then-NULL handle is rejected, never dereferenced. */
  llmd_scheduler *gone = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, NULL, &gone, &err), &err);
  llmd_scheduler_free(gone);
  gone = NULL;
  llmd_scheduler_free(gone);
  llmd_request_desc req = {0};
  req.id = V("x");
  req.model = V("llama");
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick(gone, &req, &d, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_tick(gone, &err), &err);
  RESET_ERR(err);
  CHECK(llmd_scheduler_endpoint_count(gone) == 0);

  llmd_scheduler *ok = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, NULL, &ok, &err), &err);
  add_pods(ok);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick(ok, NULL, &d, &err), &err);
  RESET_ERR(err);
  req.id = (llmd_str){"\xff\xfe", 2};
  CHECK_STATUS(LLMD_STATUS_INVALID_UTF8, llmd_scheduler_pick(ok, &req, &d, &err), &err);
  RESET_ERR(err);
  /* NULL checks first: a NULL out wins over a bad descriptor. */
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick(ok, &req, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick_batch(ok, &req, 1, NULL, NULL, &err), &err);
  RESET_ERR(err);
  req.id = V("x");
  req.tokens = NULL;
  req.n_tokens = 4;
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick(ok, &req, &d, &err), &err);
  RESET_ERR(err);
  req.n_tokens = 0;
  req.ttft_slo_ms = -5;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(ok, &req, &d, &err), &err);
  RESET_ERR(err);
  /* A NULL out is refused before the pick: nothing is left in flight. */
  req.ttft_slo_ms = 0;
  req.prompt = V("hello");
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick(ok, &req, NULL, &err), &err);
  RESET_ERR(err);
  bool in_flight = true;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_first_token(ok, S("x"), &in_flight, &err), &err);
  CHECK(!in_flight);
  req.prompt = (llmd_str){NULL, 0};
  llmd_endpoint_desc no_name = {{NULL, 0}, V("1.2.3.4:1"), {NULL, 0}, NULL, 0, NULL, 3};
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_add_endpoint(ok, &no_name, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_add_endpoint_json(ok, S("{\"name\": 3}"), &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_add_endpoint_json(ok, S("{\"name\":\"pod-c\",\"address\":\"10.0.0.3:8000\"}"), &err),
               &err);
  CHECK(llmd_scheduler_endpoint_count(ok) == 3);
  llmd_scheduler_free(ok);
}

static const char SESSION[] =
    "apiVersion: llm-d.ai/v1alpha1\n"
    "kind: EndpointPickerConfig\n"
    "plugins:\n"
    "- type: session-affinity-scorer\n"
    "- type: max-score-picker\n"
    "schedulingProfiles:\n"
    "- name: default\n"
    "  plugins:\n"
    "  - pluginRef: session-affinity-scorer\n"
    "  - pluginRef: max-score-picker\n";

static void test_response_headers(void) {
  uint64_t seed = 9;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(SESSION), &seed, &s, &err), &err);
  add_pods(s);
  llmd_request_desc req = {0};
  req.id = V("sess-1");
  req.model = V("llama");
  req.prompt = V("hello");
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick(s, &req, &d, &err), &err);
  CHECK(llmd_decision_response_header_count(d) == 1);
  llmd_kv h = llmd_decision_response_header(d, 0);
  CHECK(h.key.len == strlen("x-session-token") && memcmp(h.key.ptr, "x-session-token", h.key.len) == 0);
  CHECK(h.value.len > 0);
  CHECK(llmd_decision_response_header(d, 1).key.ptr == NULL);
  CHECK(llmd_decision_response_header_count(NULL) == 0);
  llmd_decision_free(d);
  llmd_scheduler_on_complete(s, S("sess-1"), -1, NULL, NULL, NULL);
  /* A W3C traceparent: the decision forwards a child span's traceparent and
   * its JSON carries the trace context. */
  llmd_kv tp = {V("traceparent"), V("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")};
  req.id = V("traced-1");
  req.headers = &tp;
  req.n_headers = 1;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick(s, &req, &d, &err), &err);
  int forwarded = 0;
  for (size_t i = 0;; i++) {
    llmd_kv hd = llmd_decision_header(d, i);
    if (hd.key.ptr == NULL) break;
    if (hd.key.len == strlen("traceparent") && memcmp(hd.key.ptr, "traceparent", hd.key.len) == 0)
      forwarded = hd.value.len == 55 && memcmp(hd.value.ptr, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0 &&
                  memcmp(hd.value.ptr + 36, "00f067aa0ba902b7", 16) != 0;
  }
  CHECK(forwarded);
  llmd_string *json = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_json(d, &json, &err), &err);
  CHECK(strstr(llmd_string_data(json), "\"parent_span_id\":\"00f067aa0ba902b7\"") != NULL);
  llmd_string_free(json);
  llmd_decision_free(d);
  llmd_scheduler_on_complete(s, S("traced-1"), -1, NULL, NULL, NULL);
  llmd_scheduler_free(s);
}

/* A config with settings the library accepts but does not execute. */
static const char NOT_EXECUTED[] =
    "apiVersion: llm-d.ai/v1alpha1\n"
    "kind: EndpointPickerConfig\n"
    "plugins:\n"
    "- type: precise-prefix-cache-producer\n"
    "  parameters:\n"
    "    kvEventsConfig: {discoverPods: true, podDiscoveryConfig: {socketPort: 5557}}\n"
    "- type: prefix-cache-scorer\n"
    "  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n"
    "- type: max-score-picker\n";

/* Settings the library accepts but does not execute: listed in the report,
 * refused by the strict constructor. */
static void test_config_report_and_strict(void) {
  llmd_scheduler *s = NULL;
  /* The NULL rule: a NULL config with a non-zero length is a NULL argument. */
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_new(NULL, 10, NULL, &s, &err), &err);
  RESET_ERR(err);
  CHECK(s == NULL);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(NOT_EXECUTED), NULL, &s, &err), &err);
  llmd_string *report = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_config_report_json(s, &report, &err), &err);
  const char *json = llmd_string_data(report);
  CHECK(strstr(json, "\"not_executed\":[") != NULL);
  CHECK(strstr(json, "kvEventsConfig.discoverPods") != NULL);
  CHECK(strstr(json, "kvEventsConfig.podDiscoveryConfig") != NULL);
  llmd_string_free(report);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_config_report_json(NULL, &report, &err), &err);
  RESET_ERR(err);
  llmd_scheduler_free(s);
  llmd_scheduler *strict = NULL;
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_new_strict(S(NOT_EXECUTED), NULL, &strict, &err), &err);
  CHECK(strstr(llmd_error_message(err), "kvEventsConfig.discoverPods") != NULL);
  RESET_ERR(err);
  CHECK(strict == NULL);
}

/* An endpoint beyond the prefix index's maxEndpoints is refused with
 * LLMD_STATUS_INDEX at add time (never accepted with its events dropped);
 * removing one frees its slot. */
static void test_index_slot_limit(void) {
  static const char LIMITED[] =
      "apiVersion: llm-d.ai/v1alpha1\n"
      "kind: EndpointPickerConfig\n"
      "plugins:\n"
      "- name: kv\n"
      "  type: approx-prefix-cache-producer\n"
      "  parameters: {maxEndpoints: 2}\n"
      "- type: prefix-cache-scorer\n"
      "  parameters: {prefixMatchInfoProducerName: kv}\n"
      "- type: max-score-picker\n";
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(S(LIMITED), NULL, &s, &err), &err);
  add_pods(s);
  llmd_endpoint_desc c = {V("pod-c"), V("10.0.0.3:8000"), V("llama"), NULL, 0, NULL, 0};
  CHECK_STATUS(LLMD_STATUS_INDEX, llmd_scheduler_add_endpoint(s, &c, &err), &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "index") == 0);
  RESET_ERR(err);
  CHECK(llmd_scheduler_endpoint_count(s) == 2);
  llmd_string *text = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_render_metrics(s, &text, &err), &err);
  CHECK(strstr(llmd_string_data(text), "llmd_kvindex_endpoints_refused_total 1") != NULL);
  llmd_string_free(text);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_remove_endpoint(s, S("pod-a"), &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint(s, &c, &err), &err);
  llmd_scheduler_free(s);
}

/* Picks `id` with multimodal `items`, expecting status `want`; copies the
 * primary's name into `name` (empty when the pick failed) and completes it. */
static void pick_with_items(const llmd_scheduler *s, const char *id, const llmd_str *items,
                            size_t n, char *name, size_t cap, llmd_status want) {
  uint32_t tokens[32];
  for (uint32_t i = 0; i < 32; i++) tokens[i] = i + 1;
  llmd_request_desc req = {0};
  req.id = (llmd_str){id, strlen(id)};
  req.model = V("llama");
  req.tokens = tokens;
  req.n_tokens = 32;
  req.mm_items = items;
  req.n_mm_items = n;
  llmd_decision *d = NULL;
  CHECK_STATUS(want, llmd_scheduler_pick(s, &req, &d, &err), &err);
  name[0] = 0;
  if (d == NULL) return;
  llmd_decision_info info;
  CHECK(llmd_decision_get_info(d, &info));
  size_t len = info.primary.name.len < cap - 1 ? info.primary.name.len : cap - 1;
  memcpy(name, info.primary.name.ptr, len);
  name[len] = 0;
  llmd_decision_free(d);
  llmd_request_summary sum;
  bool found = false;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, id, strlen(id), 0, &sum, &found, &err), &err);
  CHECK(found);
}

/* Multimodal item identities in the descriptor reach the embeddings-cache
 * plugins: the endpoint that encoded the items gets them again. */
static void test_mm_items(void) {
  static const char cfg[] =
      "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
      "- type: mm-embeddings-cache-scorer\n- type: max-score-picker\n";
  uint64_t seed = 11;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(cfg, sizeof(cfg) - 1, &seed, &s, &err), &err);
  add_pods(s);
  llmd_str items[2] = {V("img-cat"), V("img-dog")};
  char first[64], again[64];
  pick_with_items(s, "m0", items, 2, first, sizeof first, LLMD_STATUS_OK);
  CHECK(first[0] != 0);
  for (int i = 0; i < 8; i++) {
    char id[16];
    snprintf(id, sizeof id, "m%d", i + 1);
    pick_with_items(s, id, items, 2, again, sizeof again, LLMD_STATUS_OK);
    CHECK(strcmp(first, again) == 0);
  }
  llmd_str bad[2] = {V("img-cat"), {"", 0}};
  pick_with_items(s, "m-bad", bad, 2, again, sizeof again, LLMD_STATUS_INVALID_ARGUMENT);
  llmd_scheduler_free(s);
}

/* A window through llmd_scheduler_pick_batch: the samples of each prompt
 * land on one pod, an empty prompt fails in its own slot. */
static void test_pick_batch(void) {
  static const char cfg[] =
      "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
      "- type: burst-prefix-cache-producer\n  parameters: {blockSizeTokens: 16, windowDurationMs: 50}\n"
      "- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: burst-prefix-cache-producer}\n"
      "- type: max-score-picker\n";
  uint64_t seed = 5;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(cfg, sizeof(cfg) - 1, &seed, &s, &err), &err);
  add_pods(s);
  CHECK(llmd_scheduler_burst_window_ms(s) == 50);
  CHECK(llmd_scheduler_burst_window_ms(NULL) == 0);
  uint32_t a[64], b[64];
  for (uint32_t i = 0; i < 64; i++) {
    a[i] = 100 + i;
    b[i] = 900 + i;
  }
  enum { N = 7 };
  llmd_request_desc reqs[N];
  memset(reqs, 0, sizeof reqs);
  char ids[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "batch-%d", i);
    reqs[i].id = (llmd_str){ids[i], strlen(ids[i])};
    reqs[i].model = V("llama");
    reqs[i].tokens = i % 2 == 0 ? a : b;
    reqs[i].n_tokens = 64;
  }
  reqs[N - 1].tokens = NULL;
  reqs[N - 1].n_tokens = 0; /* no prompt: this request fails */
  llmd_decision *out[N];
  llmd_error *errs[N];
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick_batch(s, reqs, N, out, errs, &err), &err);
  char names[N][16];
  for (int i = 0; i < N - 1; i++) {
    CHECK(out[i] != NULL && errs[i] == NULL);
    llmd_decision_info info;
    CHECK(llmd_decision_get_info(out[i], &info));
    snprintf(names[i], sizeof names[i], "%.*s", (int)info.primary.name.len, info.primary.name.ptr);
    llmd_decision_free(out[i]);
  }
  for (int i = 2; i < N - 1; i++) CHECK(strcmp(names[i], names[i % 2]) == 0);
  CHECK(strcmp(names[0], names[1]) != 0);
  CHECK(out[N - 1] == NULL && errs[N - 1] != NULL);
  CHECK(llmd_error_status(errs[N - 1]) == LLMD_STATUS_SCHEDULE ||
        llmd_error_status(errs[N - 1]) == LLMD_STATUS_INVALID_ARGUMENT);
  llmd_error_free(errs[N - 1]);
  /* Errors are optional; bad arguments fail the call and write nothing. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick_batch(s, reqs, 2, out, NULL, &err), &err);
  llmd_decision_free(out[0]);
  llmd_decision_free(out[1]);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick_batch(s, reqs, 2, NULL, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_scheduler_pick_batch(s, NULL, 2, out, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_pick_batch(s, NULL, 0, NULL, NULL, &err), &err);
  llmd_scheduler_free(s);
}

/* A host that fell back to another target reports the endpoint that served
 * the request: its in-flight gauge moves there. */
static void test_served_by(void) {
  RESET_ERR(err);
  uint64_t seed = 7;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, &seed, &s, &err), &err);
  add_pods(s);
  int on_a = picks(s, "fb", 32, "pod-a");
  const char *other = on_a ? "pod-b" : "pod-a";
  const char *first = on_a ? "pod-a" : "pod-b";
  bool found = false;
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT,
               llmd_scheduler_on_served_by(s, S("fb"), S("pod-z"), &found, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_served_by(s, S("fb"), other, 5, &found, &err), &err);
  CHECK(found);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_served_by(s, S("nope"), other, 5, &found, &err), &err);
  CHECK(!found);
  llmd_string *text = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_render_metrics(s, &text, &err), &err);
  char want[128], gone[128];
  snprintf(want, sizeof want, "llmd_router_inflight_requests{endpoint=\"%s\"", other);
  snprintf(gone, sizeof gone, "llmd_router_inflight_requests{endpoint=\"%s\"", first);
  const char *w = strstr(llmd_string_data(text), want);
  const char *g = strstr(llmd_string_data(text), gone);
  CHECK(w != NULL && g != NULL);
  if (w != NULL && g != NULL) {
    const char *wv = strchr(w, '}'), *gv = strchr(g, '}');
    CHECK(wv != NULL && strncmp(wv, "} 1\n", 4) == 0);
    CHECK(gv != NULL && strncmp(gv, "} 0\n", 4) == 0);
  }
  llmd_string_free(text);
  llmd_request_summary sum;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("fb"), -1, &sum, &found, &err), &err);
  CHECK(found);
  llmd_scheduler_free(s);
}

/* llmd_scheduler_options: NULL and zero mean the defaults; strict refuses
 * from text and from a file; max_open_requests bounds the requests held
 * open, the oldest expired (and counted) when a pick finds the table full. */
static void test_options(void) {
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new_with_options(NULL, 0, NULL, &s, &err), &err);
  CHECK(llmd_scheduler_open_requests_limit(s) == ((size_t)1 << 20));
  llmd_scheduler_free(s);
  CHECK(llmd_scheduler_open_requests_limit(NULL) == 0);

  llmd_scheduler_options o = {0};
  o.strict = true;
  s = NULL;
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_new_with_options(S(NOT_EXECUTED), &o, &s, &err), &err);
  CHECK(s == NULL);
  RESET_ERR(err);
  /* Flags are bytes: any non-zero value is true, none is undefined. */
  memset(&o, 0xff, sizeof o);
  o.seed = 1;
  o.max_open_requests = 0;
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_new_with_options(S(NOT_EXECUTED), &o, &s, &err), &err);
  RESET_ERR(err);
  memset(&o, 0, sizeof o);
  o.strict = true;
  char path[] = "/tmp/llmd-options-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  CHECK(f != NULL && fwrite(NOT_EXECUTED, 1, sizeof NOT_EXECUTED - 1, f) == sizeof NOT_EXECUTED - 1);
  fclose(f);
  CHECK_STATUS(LLMD_STATUS_CONFIG, llmd_scheduler_from_file_with_options(path, strlen(path), &o, &s, &err),
               &err);
  RESET_ERR(err);
  o.strict = false;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_from_file_with_options(path, strlen(path), &o, &s, &err), &err);
  llmd_scheduler_free(s);
  unlink(path);

  o.max_open_requests = 4;
  o.has_seed = true;
  o.seed = 3;
  s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new_with_options(NULL, 0, &o, &s, &err), &err);
  CHECK(llmd_scheduler_open_requests_limit(s) == 4);
  add_pods(s);
  const char *ids[] = {"o1", "o2", "o3", "o4", "o5"};
  for (size_t i = 0; i < 5; i++) picks(s, ids[i], 8, "pod-a");
  llmd_string *m = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_render_metrics(s, &m, &err), &err);
  CHECK(strstr(llmd_string_data(m), "llmd_open_requests_expired_at_limit_total 1\n") != NULL);
  llmd_string_free(m);
  CHECK(llmd_scheduler_open_requests(s) == 4);
  CHECK(llmd_scheduler_open_requests(NULL) == 0);
  /* The oldest, o1, was closed; the newest is still open. */
  bool found = true;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_on_complete(s, S("o1"), -1, NULL, &found, &err), &err);
  CHECK(!found);
  /* A cached count below -1 is refused; the request completes all the same. */
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_on_complete(s, S("o5"), -5, NULL, &found, &err), &err);
  RESET_ERR(err);
  CHECK(found);
  CHECK(llmd_scheduler_open_requests(s) == 3);

  /* Token ids beside a prompt text, or a LoRA path without its name, are
   * refused rather than dropped. */
  uint32_t tok_ids[2] = {1, 2};
  llmd_request_desc req = {0};
  req.id = V("both");
  req.model = V("llama");
  req.prompt = V("hello");
  req.tokens = tok_ids;
  req.n_tokens = 2;
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(s, &req, &d, &err), &err);
  RESET_ERR(err);
  req.tokens = NULL; /* a NULL array with a length: still both */
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(s, &req, &d, &err), &err);
  RESET_ERR(err);
  req.n_tokens = 0;
  req.lora_path = V("/adapters/a");
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_scheduler_pick(s, &req, &d, &err), &err);
  CHECK(strstr(llmd_error_message(err), "lora_name") != NULL);
  RESET_ERR(err);
  CHECK(d == NULL);
  llmd_scheduler_free(s);
}

int main(void) {
  test_config_report_and_strict();
  test_options();
  test_pick_batch();
  test_pick_and_explain();
  test_metrics_steer_picks();
  test_kv_events_steer_picks();
  test_ingest_counts_by_reason();
  test_bad_input();
  test_response_headers();
  test_index_slot_limit();
  test_mm_items();
  test_served_by();
  llmd_error_free(err);
  return check_summary("test_scheduler");
}
