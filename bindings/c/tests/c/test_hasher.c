/* Block hashing through the C ABI: a vLLM vector, partial blocks, extras,
 * and the documented statuses for bad input. */
#include <stdlib.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1

int main(void) {
  llmd_error *err = NULL;
  llmd_hasher *h = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_hasher_new(S("0.33.0"), S("sha256_cbor"), 16, S("42"), &h, &err), &err);
  CHECK(h != NULL);
  CHECK(llmd_hasher_block_size(h) == 16);

  uint32_t tokens[40];
  for (uint32_t i = 0; i < 40; i++) tokens[i] = i + 1;
  uint64_t keys[4] = {0};
  size_t n = 99;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 32, NULL, keys, 4, &n, &err), &err);
  CHECK(n == 2);
  /* vLLM 0.33.0, sha256_cbor, block 16, PYTHONHASHSEED=42, tokens 1..32. */
  CHECK(keys[0] == 16300212363532267629ULL);
  uint64_t first = keys[0], second = keys[1];

  /* A trailing partial block is not hashed. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 40, NULL, keys, 4, &n, &err), &err);
  CHECK(n == 2 && keys[0] == first && keys[1] == second);

  /* Too small a buffer: status, nothing written. */
  n = 77;
  keys[0] = 5;
  CHECK_STATUS(LLMD_STATUS_BUFFER_TOO_SMALL,
               llmd_hasher_block_keys(h, tokens, 32, NULL, keys, 1, &n, &err), &err);
  CHECK(n == 77 && keys[0] == 5);
  CHECK(llmd_error_status(err) == LLMD_STATUS_BUFFER_TOO_SMALL);
  CHECK(strlen(llmd_error_message(err)) > 0);
  RESET_ERR(err);

  /* Extras: a cache salt changes block 0 and therefore the whole chain. */
  llmd_hash_extras *x = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hash_extras_new(&x, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hash_extras_set_cache_salt(x, S("tenant-a"), &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 32, x, keys, 4, &n, &err), &err);
  CHECK(n == 2 && keys[0] != first && keys[1] != second);
  int64_t lora_id = 3;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_hash_extras_set_lora(x, &lora_id, S("adapter"), S("/adapters/a"), &err), &err);
  uint64_t salted0 = keys[0];
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 32, x, keys, 4, &n, &err), &err);
  CHECK(keys[0] != salted0);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hash_extras_add_mm_item(x, S("img-0"), 2, 4, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 32, x, keys, 4, &n, &err), &err);
  /* Items must cover at least one token. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hash_extras_add_mm_item(x, S("img-1"), 20, 0, &err), &err);
  CHECK_STATUS(LLMD_STATUS_HASH, llmd_hasher_block_keys(h, tokens, 32, x, keys, 4, &n, &err), &err);
  RESET_ERR(err);
  llmd_hash_extras_free(x);
  llmd_hash_extras_free(NULL);

  /* Bad input gives the documented status; outputs stay untouched. */
  llmd_hasher *h2 = (llmd_hasher *)0x1;
  CHECK_STATUS(LLMD_STATUS_HASH,
               llmd_hasher_new(NULL, 0, S("md5"), 16, NULL, 0, &h2, &err), &err);
  CHECK(h2 == (llmd_hasher *)0x1);
  CHECK(strcmp(llmd_error_code(err), "hash") == 0);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_HASH,
               llmd_hasher_new(NULL, 0, S("sha256"), 0, S("0"), &h2, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_HASH,
               llmd_hasher_new(S("not-a-version"), S("sha256"), 16, S("0"), &h2, &err), &err);
  RESET_ERR(err);
  const char bad_utf8[] = {'s', 'h', (char)0xff, 'a'};
  CHECK_STATUS(LLMD_STATUS_INVALID_UTF8,
               llmd_hasher_new(NULL, 0, bad_utf8, sizeof bad_utf8, 16, NULL, 0, &h2, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hasher_new(NULL, 0, NULL, 6, 16, NULL, 0, &h2, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hasher_new(NULL, 0, S("sha256"), 16, S("0"), NULL, &err), &err);
  RESET_ERR(err);
  CHECK(h2 == (llmd_hasher *)0x1);
  /* A NULL error slot is allowed: the status alone reports the failure. */
  CHECK(llmd_hasher_new(NULL, 0, S("md5"), 16, NULL, 0, &h2, NULL) == LLMD_STATUS_HASH);

  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hasher_block_keys(NULL, tokens, 32, NULL, keys, 4, &n, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hasher_block_keys(h, NULL, 32, NULL, keys, 4, &n, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hasher_block_keys(h, tokens, 32, NULL, keys, 4, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_hash_extras_set_cache_salt(NULL, S("x"), &err), &err);
  RESET_ERR(err);
  /* Fewer tokens than a block: no keys, and `keys` may be NULL. */
  CHECK_STATUS(LLMD_STATUS_OK, llmd_hasher_block_keys(h, tokens, 5, NULL, NULL, 0, &n, &err), &err);
  CHECK(n == 0);
  CHECK(llmd_hasher_block_size(NULL) == 0);

  llmd_hasher_free(h);
  h = NULL;
  llmd_hasher_free(h);
  return check_summary("test_hasher");
}
