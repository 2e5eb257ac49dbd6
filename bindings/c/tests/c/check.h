/* Minimal assertion helpers for the C tests: every failure is reported with
 * its line; main() returns non-zero when any check failed. */
#ifndef LLMD_TEST_CHECK_H
#define LLMD_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "llmd.h"

static int checks_failed = 0;
static int checks_passed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      checks_passed++;                                                     \
    } else {                                                               \
      checks_failed++;                                                     \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,    \
              #cond);                                                      \
    }                                                                      \
  } while (0)

/* Checks a call's status; on mismatch prints the error message if any. */
#define CHECK_STATUS(expected, call, errp)                                 \
  do {                                                                     \
    llmd_status got_ = (call);                                             \
    if (got_ == (expected)) {                                              \
      checks_passed++;                                                     \
    } else {                                                               \
      checks_failed++;                                                     \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s: %s\n",          \
              __FILE__, __LINE__, #call, llmd_status_name(got_),           \
              llmd_status_name(expected),                                  \
              *(errp) ? llmd_error_message(*(errp)) : "(no error)");       \
    }                                                                      \
  } while (0)

/* Frees and clears an error slot between calls. */
#define RESET_ERR(err)                                                     \
  do {                                                                     \
    llmd_error_free(err);                                                  \
    (err) = NULL;                                                          \
  } while (0)

static int check_summary(const char *name) {
  printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}

#endif
