/* The OTLP trace exporter through the C ABI: a sampled decision is queued
 * and its export counted (here to a port nothing listens on: failed, never
 * an error or a hang), unsampled ones are counted and not sent, queue and
 * timing options apply, bad arguments are refused, NULLs are harmless. */
#include <stdint.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1

static llmd_error *err = NULL;

static llmd_decision *pick(llmd_scheduler *s, const char *id, const char *traceparent) {
  static const char BODY[] = "{\"model\": \"m\", \"prompt\": [1, 2, 3]}";
  llmd_kv hdr = {{"traceparent", 11}, {traceparent, strlen(traceparent)}};
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_pick_openai(s, id, strlen(id), S("/v1/completions"), (const uint8_t *)BODY,
                                          sizeof BODY - 1, &hdr, 1, &d, &err),
               &err);
  return d;
}

int main(void) {
  uint64_t seed = 1;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(NULL, 0, &seed, &s, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint_json(s, S("{\"name\": \"a\", \"address\": \"10.0.0.1:8000\"}"), &err), &err);

  llmd_otlp_exporter *e = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_otlp_exporter_new(S("http://127.0.0.1:9/v1/traces"), NULL, 0, 1.0, &e, &err), &err);
  llmd_decision *d = pick(s, "r1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(llmd_otlp_export_decision(e, d, 1000, 2000));
  llmd_decision_free(d);
  d = pick(s, "r2", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  CHECK(!llmd_otlp_export_decision(e, d, 1000, 2000));
  llmd_decision_free(d);
  CHECK(llmd_otlp_flush(e, 20000));
  llmd_otlp_stats st = llmd_otlp_stats_get(e);
  CHECK(st.unsampled_decisions == 1 && st.failed_spans > 0 && st.exported_spans == 0 && st.dropped_spans == 0);
  llmd_otlp_exporter_free(e);

  /* Options: a one-span queue drops a decision's spans (counted); an
   * interval beyond 10^9 s is refused; zero fields are the defaults. */
  llmd_otlp_options o = {0};
  o.max_queue_spans = 1;
  o.flush_interval_ms = 1;
  o.timeout_ms = 100;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_otlp_exporter_new_with_options(S("http://127.0.0.1:9/v1/traces"), S("svc"), 1.0, &o, &e, &err),
               &err);
  d = pick(s, "r3", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(!llmd_otlp_export_decision(e, d, 1000, 2000));
  llmd_decision_free(d);
  CHECK(llmd_otlp_flush(e, 20000));
  st = llmd_otlp_stats_get(e);
  CHECK(st.dropped_spans > 0 && st.exported_spans == 0);
  llmd_otlp_exporter_free(e);
  o = (llmd_otlp_options){0};
  o.flush_interval_ms = UINT64_MAX;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_otlp_exporter_new_with_options(S("http://127.0.0.1:9/v1/traces"), NULL, 0, 1.0, &o, &e, &err), &err);
  CHECK(strstr(llmd_error_message(err), "flush_interval") != NULL);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_otlp_exporter_new_with_options(S("http://127.0.0.1:9/v1/traces"), NULL, 0, 1.0, NULL, &e, &err),
               &err);
  llmd_otlp_exporter_free(e);

  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_otlp_exporter_new(S("https://c:4318/v1/traces"), NULL, 0, 1.0, &e, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_otlp_exporter_new(S("http://c:4318/v1/traces"), S("svc"), 2.0, &e, &err), &err);
  RESET_ERR(err);
  CHECK(!llmd_otlp_export_decision(NULL, NULL, 0, 0));
  CHECK(!llmd_otlp_flush(NULL, 0));
  CHECK(llmd_otlp_stats_get(NULL).exported_spans == 0);
  llmd_otlp_exporter_free(NULL);
  llmd_scheduler_free(s);
  return check_summary("test_otlp");
}
