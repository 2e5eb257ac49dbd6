/* The KV-block index through the C ABI: endpoints, event batches, prompt
 * keys, prefix matches in every key mode, statistics and bad input. */
#include <stdlib.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1

/* [ts, [BlockStored([111, 222], nil, 1..32, 16, nil, "GPU")], dp_rank 0] (vLLM 0.10.2). */
static const uint8_t STORED[] = {
    0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0x00, 0x00, 0x91, 0x97, 0xab, 0x42,
    0x6c, 0x6f, 0x63, 0x6b, 0x53, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x92, 0x6f, 0xcc, 0xde,
    0xc0, 0xdc, 0x00, 0x20, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x10, 0xc0, 0xa3, 0x47, 0x50, 0x55,
    0x00};

static llmd_error *err = NULL;

static void test_router_keys(void) {
  llmd_index_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.capacity_blocks = 4096;
  cfg.max_endpoints = 64;
  llmd_index *ix = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_new(&cfg, &ix, &err), &err);
  uint16_t a = 999, b = 999, a2 = 999;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_register_endpoint(ix, S("pod-a"), &a, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_register_endpoint(ix, S("pod-b"), &b, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_register_endpoint(ix, S("pod-a"), &a2, &err), &err);
  CHECK(a != b && a == a2);

  llmd_event_batch *batch = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_decode(STORED, sizeof STORED, &batch, &err), &err);
  llmd_index_apply_report rep;
  memset(&rep, 0xff, sizeof rep);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_apply_batch(ix, b, S("llama"), batch, &rep, &err), &err);
  CHECK(rep.stored == 2 && rep.unplaceable == 0 && rep.ignored == 0 && rep.superseded == 0);
  CHECK(rep.parity_checks == 0 && rep.parity_mismatches == 0); /* router keys: no self-check */
  llmd_event_batch_free(batch);

  uint32_t tokens[48];
  for (uint32_t i = 0; i < 48; i++) tokens[i] = i + 1;
  uint64_t keys[3];
  size_t nk = 0;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 48, NULL, keys, 3, &nk, &err), &err);
  CHECK(nk == 3);
  CHECK_STATUS(LLMD_STATUS_BUFFER_TOO_SMALL,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 48, NULL, keys, 2, &nk, &err), &err);
  RESET_ERR(err);

  llmd_endpoint_match m[4];
  size_t nm = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("llama"), keys, 3, m, 4, &nm, &err), &err);
  CHECK(nm == 1);
  CHECK(m[0].endpoint == b && m[0].consecutive_blocks == 2 && m[0].weighted_score == 2.0);
  /* Another model shares nothing. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("other"), keys, 3, m, 4, &nm, &err), &err);
  CHECK(nm == 0);
  nm = 77;
  CHECK_STATUS(LLMD_STATUS_BUFFER_TOO_SMALL,
               llmd_index_match_prefix(ix, S("llama"), keys, 3, m, 0, &nm, &err), &err);
  CHECK(nm == 77);
  RESET_ERR(err);

  llmd_index_stats st;
  memset(&st, 0, sizeof st);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_get_stats(ix, &st, &err), &err);
  CHECK(st.entries >= 2 && st.endpoints == 2 && st.capacity >= 4096 && st.table_bytes > 0);

  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_remove_endpoint(ix, b, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("llama"), keys, 3, m, 4, &nm, &err), &err);
  CHECK(nm == 0);

  /* Bad input. */
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_index_match_prefix(NULL, S("llama"), keys, 3, m, 4, &nm, &err), &err);
  RESET_ERR(err);
  /* The NULL rule: NULL with a non-zero capacity is a NULL argument, even
   * when nothing would be written; NULL with capacity 0 is an empty buffer. */
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_index_match_prefix(ix, S("other"), keys, 3, NULL, 8, &nm, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("other"), keys, 3, NULL, 0, &nm, &err), &err);
  CHECK(nm == 0);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 48, NULL, NULL, 3, &nk, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_BUFFER_TOO_SMALL,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 48, NULL, NULL, 0, &nk, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_index_match_prefix(ix, NULL, 5, keys, 3, m, 4, &nm, &err), &err);
  RESET_ERR(err);
  /* Slots never registered (or removed) are refused, not silently ignored. */
  llmd_event_batch *again = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_decode(STORED, sizeof STORED, &again, &err), &err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_index_apply_batch(ix, 900, S("llama"), again, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_index_apply_batch(ix, b, S("llama"), again, NULL, &err), &err);
  RESET_ERR(err);
  llmd_event_batch_free(again);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_index_record_routing(ix, b, S("llama"), keys, 2, 0, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_index_apply_batch(ix, a, S("llama"), NULL, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_UTF8,
               llmd_index_register_endpoint(ix, "\xc3\x28", 2, &a2, &err), &err);
  RESET_ERR(err);
  llmd_index_free(ix);
  llmd_index_free(NULL);
}

static void test_unallocatable_table(void) {
  // 2^36 entries (~1.7 TB of table): an error status, never an abort.
  llmd_index_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.capacity_blocks = (size_t)1 << 36;
  llmd_index *ix = NULL;
  CHECK_STATUS(LLMD_STATUS_INDEX, llmd_index_new(&cfg, &ix, &err), &err);
  CHECK(ix == NULL);
  RESET_ERR(err);
}

static void test_capacities_and_weights(void) {
  llmd_index_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.has_tier_weights = true;
  cfg.gpu_weight = 1.0;
  cfg.cpu_weight = 0.8;
  cfg.storage_weight = 0.5;
  cfg.speculative_weight = 0.25;
  llmd_index *ix = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_new(&cfg, &ix, &err), &err);
  uint16_t a = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_register_endpoint(ix, S("pod-a"), &a, &err), &err);
  uint32_t tokens[32];
  for (uint32_t i = 0; i < 32; i++) tokens[i] = 3 * i + 1;
  uint64_t keys[2];
  size_t nk = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_prompt_keys(ix, S("m"), tokens, 32, NULL, keys, 2, &nk, &err), &err);
  /* Router keys: routing inserts speculative entries, scored 0.25 each. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_record_routing(ix, a, S("m"), keys, 2, 0, &err), &err);
  llmd_endpoint_match m[1];
  size_t nm = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("m"), keys, 2, m, 1, &nm, &err), &err);
  CHECK(nm == 1 && m[0].consecutive_blocks == 2 && m[0].weighted_score == 0.5);
  /* Speculative entries expire at a tick past their lifetime (2 s by
   * default), not before. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_tick(ix, 1000000000ull, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("m"), keys, 2, m, 1, &nm, &err), &err);
  CHECK(nm == 1);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_tick(ix, 3000000000ull, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("m"), keys, 2, m, 1, &nm, &err), &err);
  CHECK(nm == 0);
  /* Clearing drops what an endpoint holds; the slot stays registered. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_record_routing(ix, a, S("m"), keys, 2, 0, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_clear_endpoint(ix, a, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("m"), keys, 2, m, 1, &nm, &err), &err);
  CHECK(nm == 0);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_record_routing(ix, a, S("m"), keys, 1, 0, &err), &err);
  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_index_clear_endpoint(ix, 999, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_index_tick(NULL, 0, &err), &err);
  RESET_ERR(err);
  llmd_index_free(ix);
  /* A capacity past 2^32 - 2 is refused, not clamped. */
  cfg.speculative_capacity = (size_t)1 << 40;
  CHECK_STATUS(LLMD_STATUS_INDEX, llmd_index_new(&cfg, &ix, &err), &err);
  CHECK(strstr(llmd_error_message(err), "speculative_capacity") != NULL);
  RESET_ERR(err);
  cfg.speculative_capacity = 0;
  cfg.gpu_weight = -1.0;
  CHECK_STATUS(LLMD_STATUS_INDEX, llmd_index_new(&cfg, &ix, &err), &err);
  RESET_ERR(err);
}

static void test_approximate_and_parity(void) {
  llmd_index_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.key_mode = LLMD_KEY_MODE_APPROXIMATE;
  cfg.capacity_blocks = 4096;
  cfg.max_endpoints = 8;
  llmd_index *ix = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_new(&cfg, &ix, &err), &err);
  uint16_t a = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_register_endpoint(ix, S("pod-a"), &a, &err), &err);
  uint32_t tokens[64];
  for (uint32_t i = 0; i < 64; i++) tokens[i] = 7 * i;
  uint64_t keys[4];
  size_t nk = 0;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 64, NULL, keys, 4, &nk, &err), &err);
  CHECK(nk == 4);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_record_routing(ix, a, S("llama"), keys, 2, 1000, &err), &err);
  llmd_endpoint_match m[2];
  size_t nm = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_match_prefix(ix, S("llama"), keys, 4, m, 2, &nm, &err), &err);
  CHECK(nm == 1 && m[0].endpoint == a && m[0].consecutive_blocks == 2);
  llmd_index_free(ix);

  /* Engine parity: prompt keys are vLLM's own. */
  llmd_hasher *h = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_hasher_new(S("0.33.0"), S("sha256_cbor"), 16, S("42"), &h, &err), &err);
  cfg.key_mode = LLMD_KEY_MODE_ENGINE_PARITY;
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_index_new(&cfg, &ix, &err), &err);
  RESET_ERR(err);
  cfg.hasher = h;
  /* The hasher's block size is the index's: another one is refused. */
  cfg.block_size = 64;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_index_new(&cfg, &ix, &err), &err);
  CHECK(strstr(llmd_error_message(err), "block_size") != NULL);
  RESET_ERR(err);
  cfg.block_size = 16;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_new(&cfg, &ix, &err), &err);
  llmd_index_free(ix);
  cfg.block_size = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_index_new(&cfg, &ix, &err), &err);
  llmd_hasher_free(h);
  for (uint32_t i = 0; i < 32; i++) tokens[i] = i + 1;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_index_prompt_keys(ix, S("llama"), tokens, 32, NULL, keys, 4, &nk, &err), &err);
  CHECK(nk == 2 && keys[0] == 16300212363532267629ULL);
  llmd_index_free(ix);

  /* Invalid configurations. */
  cfg.hasher = NULL;
  cfg.key_mode = 9;
  ix = (llmd_index *)0x1;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_index_new(&cfg, &ix, &err), &err);
  RESET_ERR(err);
  cfg.key_mode = LLMD_KEY_MODE_ROUTER_KEYS;
  cfg.max_endpoints = 1u << 20;
  CHECK_STATUS(LLMD_STATUS_INDEX, llmd_index_new(&cfg, &ix, &err), &err);
  CHECK(strstr(llmd_error_message(err), "max_endpoints") != NULL);
  RESET_ERR(err);
  CHECK(ix == (llmd_index *)0x1);
}

int main(void) {
  test_router_keys();
  test_unallocatable_table();
  test_capacities_and_weights();
  test_approximate_and_parity();
  return check_summary("test_index");
}
