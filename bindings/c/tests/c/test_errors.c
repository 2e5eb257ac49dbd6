/* Version macros, status names and the error/string objects' NULL contract. */
#include <stdlib.h>

#include "check.h"

int main(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", LLMD_VERSION_MAJOR,
           LLMD_VERSION_MINOR, LLMD_VERSION_PATCH);
  CHECK(strcmp(llmd_version(), expected) == 0);

  CHECK(strcmp(llmd_status_name(LLMD_STATUS_OK), "LLMD_STATUS_OK") == 0);
  CHECK(strcmp(llmd_status_name(LLMD_STATUS_CONFIG), "LLMD_STATUS_CONFIG") == 0);
  CHECK(strcmp(llmd_status_name(LLMD_STATUS_PANIC), "LLMD_STATUS_PANIC") == 0);
  CHECK(strcmp(llmd_status_name(9999), "LLMD_STATUS_UNKNOWN") == 0);
  /* Values are part of the ABI and never change. */
  CHECK(LLMD_STATUS_NULL_ARGUMENT == 1);
  CHECK(LLMD_STATUS_INVALID_UTF8 == 2);
  CHECK(LLMD_STATUS_DECODE == 8);
  CHECK(LLMD_STATUS_PANIC == 14);

  /* Accessors and frees accept NULL. */
  CHECK(llmd_error_status(NULL) == LLMD_STATUS_NULL_ARGUMENT);
  CHECK(strcmp(llmd_error_message(NULL), "") == 0);
  CHECK(strcmp(llmd_error_code(NULL), "") == 0);
  llmd_error_free(NULL);
  CHECK(llmd_string_len(NULL) == 0);
  CHECK(strcmp(llmd_string_data(NULL), "") == 0);
  llmd_string_free(NULL);

  return check_summary("test_errors");
}
