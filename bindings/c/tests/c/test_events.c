/* KV-event decoding through the C ABI: a vLLM 0.10.2-layout batch, and
 * malformed payloads giving LLMD_STATUS_DECODE with a defect code. */
#include <stdlib.h>

#include "check.h"

/* [ts, [BlockStored([111, 222], nil, 1..32, 16, nil, "GPU"),
 *       BlockRemoved([111], "CPU"), AllBlocksCleared], dp_rank 0] */
static const uint8_t BATCH[] = {
    0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0x00, 0x00, 0x93, 0x97, 0xab, 0x42,
    0x6c, 0x6f, 0x63, 0x6b, 0x53, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x92, 0x6f, 0xcc, 0xde,
    0xc0, 0xdc, 0x00, 0x20, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x10, 0xc0, 0xa3, 0x47, 0x50, 0x55,
    0x93, 0xac, 0x42, 0x6c, 0x6f, 0x63, 0x6b, 0x52, 0x65, 0x6d, 0x6f, 0x76, 0x65, 0x64,
    0x91, 0x6f, 0xa3, 0x43, 0x50, 0x55, 0x91, 0xb0, 0x41, 0x6c, 0x6c, 0x42, 0x6c, 0x6f,
    0x63, 0x6b, 0x73, 0x43, 0x6c, 0x65, 0x61, 0x72, 0x65, 0x64, 0x00};

int main(void) {
  llmd_error *err = NULL;
  llmd_event_batch *b = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_decode(BATCH, sizeof BATCH, &b, &err), &err);
  CHECK(llmd_event_batch_len(b) == 3);
  CHECK(llmd_event_batch_skipped(b) == 0);
  CHECK(llmd_event_batch_ts(b) == 1700000000.5);
  int64_t rank = -1;
  CHECK(llmd_event_batch_dp_rank(b, &rank) && rank == 0);
  CHECK(llmd_event_batch_dp_rank(b, NULL)); /* asks only */

  llmd_event_info info;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_event(b, 0, &info, &err), &err);
  CHECK(info.kind == LLMD_EVENT_KIND_BLOCK_STORED);
  CHECK(info.tier == LLMD_TIER_GPU);
  CHECK(info.n_blocks == 2 && info.n_tokens == 32 && info.block_size == 16);
  CHECK(!info.has_parent);
  uint64_t keys[2];
  size_t n = 0;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_event_keys(b, 0, keys, 2, &n, &err), &err);
  CHECK(n == 2 && keys[0] == 111 && keys[1] == 222);
  n = 9;
  CHECK_STATUS(LLMD_STATUS_BUFFER_TOO_SMALL,
               llmd_event_batch_event_keys(b, 0, keys, 1, &n, &err), &err);
  CHECK(n == 9);
  RESET_ERR(err);

  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_event(b, 1, &info, &err), &err);
  CHECK(info.kind == LLMD_EVENT_KIND_BLOCK_REMOVED && info.tier == LLMD_TIER_CPU);
  CHECK(info.n_blocks == 1);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_event(b, 2, &info, &err), &err);
  CHECK(info.kind == LLMD_EVENT_KIND_ALL_BLOCKS_CLEARED && info.n_blocks == 0);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_event_batch_event_keys(b, 2, NULL, 0, &n, &err), &err);
  CHECK(n == 0);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_event_batch_event(b, 3, &info, &err), &err);
  RESET_ERR(err);
  llmd_event_batch_free(b);

  /* Malformed payloads: every truncation of a valid batch is rejected. */
  for (size_t cut = 0; cut < sizeof BATCH; cut++) {
    llmd_event_batch *bad = NULL;
    llmd_status st = llmd_event_batch_decode(BATCH, cut, &bad, &err);
    CHECK(st == LLMD_STATUS_DECODE);
    CHECK(bad == NULL);
    CHECK(llmd_error_status(err) == LLMD_STATUS_DECODE);
    RESET_ERR(err);
  }
  CHECK_STATUS(LLMD_STATUS_DECODE, llmd_event_batch_decode(BATCH, 20, &b, &err), &err);
  CHECK(strcmp(llmd_error_code(err), "truncated") == 0);
  CHECK(strstr(llmd_error_message(err), "byte") != NULL);
  RESET_ERR(err);
  const uint8_t garbage[] = {0xc1, 0xff, 0x00};
  CHECK_STATUS(LLMD_STATUS_DECODE, llmd_event_batch_decode(garbage, sizeof garbage, &b, &err), &err);
  RESET_ERR(err);
  /* A huge declared length must not allocate: array32 of 2^32-1 items. */
  const uint8_t huge[] = {0x93, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff};
  CHECK_STATUS(LLMD_STATUS_DECODE, llmd_event_batch_decode(huge, sizeof huge, &b, &err), &err);
  RESET_ERR(err);

  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_event_batch_decode(NULL, 5, &b, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_event_batch_decode(BATCH, sizeof BATCH, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_event_batch_event(NULL, 0, &info, &err), &err);
  RESET_ERR(err);
  CHECK(llmd_event_batch_len(NULL) == 0);
  CHECK(!llmd_event_batch_dp_rank(NULL, &rank));
  llmd_event_batch_free(NULL);
  return check_summary("test_events");
}
