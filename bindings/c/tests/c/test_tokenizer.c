/* The tokenizer through the C ABI: a model directory loaded in-process,
 * completions and chat ids, and picks from OpenAI bodies routed on them. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1

static llmd_error *err = NULL;

/* The precise-routing config shared with the C++ tests. */
#define PRECISE_FILE LLMD_TESTDATA "/bindings/precise.yaml"

static const char BODY[] =
    "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"w1 w2\"}]}";

int main(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tokenizers/tiny", LLMD_TESTDATA);
  llmd_tokenizer *t = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_tokenizer_from_dir(dir, strlen(dir), &t, &err), &err);

  llmd_tokens *ids = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_tokenizer_encode(t, S("w1 w2 zz"), true, &ids, &err), &err);
  const uint32_t want[] = {0, 8, 9, 1};
  CHECK(llmd_tokens_len(ids) == 4 && memcmp(llmd_tokens_data(ids), want, sizeof want) == 0);
  llmd_tokens_free(ids);

  static const char MSGS[] = "[{\"role\": \"user\", \"content\": \"w1 w2\"}]";
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_tokenizer_encode_chat(t, S(MSGS), true, NULL, 0, NULL, 0, &ids, &err), &err);
  const uint32_t chat[] = {2, 4, 8, 9, 3, 2, 5};
  CHECK(llmd_tokens_len(ids) == 7 && memcmp(llmd_tokens_data(ids), chat, sizeof chat) == 0);
  llmd_tokens_free(ids);

  /* The rendered prompt those ids come from. */
  llmd_string *text = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_tokenizer_render_chat(t, S(MSGS), true, NULL, 0, NULL, 0, &text, &err), &err);
  llmd_tokens *again = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_tokenizer_encode(t, llmd_string_data(text), llmd_string_len(text), false, &again, &err), &err);
  CHECK(llmd_tokens_len(again) == 7 && memcmp(llmd_tokens_data(again), chat, sizeof chat) == 0);
  llmd_tokens_free(again);
  llmd_string_free(text);
  /* A prompt with a NUL character cannot come back as a C string: refused, not altered. */
  static const char NUL_MSGS[] = "[{\"role\": \"user\", \"content\": \"w1\\u0000w2\"}]";
  text = NULL;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_tokenizer_render_chat(t, S(NUL_MSGS), true, NULL, 0, NULL, 0, &text, &err), &err);
  CHECK(text == NULL && err != NULL && strstr(llmd_error_message(err), "NUL") != NULL);
  RESET_ERR(err);

  /* Rendering as the engine was started: its template and default kwargs. */
  {
    static const char TPL[] = "{% for m in messages %}{{ m.content }}|{% endfor %}{{ flag }}";
    static const char KW[] = "{\"flag\": \"w3\"}";
    llmd_tokenizer *e = NULL;
    CHECK_STATUS(LLMD_STATUS_OK,
                 llmd_tokenizer_from_dir_engine(dir, strlen(dir), S(TPL), S(KW), &e, &err), &err);
    llmd_string *r = NULL;
    CHECK_STATUS(LLMD_STATUS_OK,
                 llmd_tokenizer_render_chat(e, S(MSGS), true, NULL, 0, NULL, 0, &r, &err), &err);
    CHECK(strcmp(llmd_string_data(r), "w1 w2|w3") == 0);
    llmd_string_free(r);
    llmd_tokenizer_free(e);
    e = NULL;
    CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
                 llmd_tokenizer_from_dir_engine(dir, strlen(dir), NULL, 0, S("{\"messages\": []}"), &e, &err), &err);
    CHECK(e == NULL);
    RESET_ERR(err);
    CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
                 llmd_tokenizer_from_dir_engine(dir, strlen(dir), NULL, 3, NULL, 0, &e, &err), &err);
    RESET_ERR(err);
  }

  /* A whole body, as the gateway received it. */
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_tokenizer_encode_openai(t, S("/v1/chat/completions"), (const uint8_t *)BODY, sizeof BODY - 1,
                                            &again, &err),
               &err);
  CHECK(llmd_tokens_len(again) == 7 && memcmp(llmd_tokens_data(again), chat, sizeof chat) == 0);
  llmd_tokens_free(again);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_tokenizer_encode_openai(t, S("/v1/completions"), (const uint8_t *)S("{\"prompt\": \"w1 w2 zz\"}"),
                                            &again, &err),
               &err);
  CHECK(llmd_tokens_len(again) == 4 && memcmp(llmd_tokens_data(again), want, sizeof want) == 0);
  llmd_tokens_free(again);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_tokenizer_encode_openai(t, S("/v1/chat/completions"), (const uint8_t *)S("{\"messages\": {}}"),
                                            &again, &err),
               &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "request") == 0 && strstr(llmd_error_message(err), "'messages'") != NULL);
  RESET_ERR(err);

  /* A session gives the full tokenization turn by turn, reusing the earlier turns. */
  llmd_chat_session *cs = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_chat_session_new(t, &cs, &err), &err);
  static const char TURN1[] = "[{\"role\": \"user\", \"content\": \"w1 w2\"}]";
  static const char TURN2[] =
      "[{\"role\": \"user\", \"content\": \"w1 w2\"}, {\"role\": \"assistant\", \"content\": \"w2\"},"
      " {\"role\": \"user\", \"content\": \"w1\"}]";
  const char *turns[] = {TURN1, TURN2};
  const size_t lens[] = {sizeof TURN1 - 1, sizeof TURN2 - 1};
  for (int i = 0; i < 2; i++) {
    llmd_tokens *full = NULL, *inc = NULL;
    CHECK_STATUS(LLMD_STATUS_OK,
                 llmd_tokenizer_encode_chat(t, turns[i], lens[i], true, NULL, 0, NULL, 0, &full, &err), &err);
    CHECK_STATUS(LLMD_STATUS_OK,
                 llmd_chat_session_encode_chat(cs, turns[i], lens[i], true, NULL, 0, NULL, 0, &inc, &err), &err);
    CHECK(llmd_tokens_len(full) == llmd_tokens_len(inc) &&
          memcmp(llmd_tokens_data(full), llmd_tokens_data(inc), llmd_tokens_len(full) * sizeof(uint32_t)) == 0);
    CHECK(i == 0 || llmd_chat_session_reused_tokens(cs) > 0);
    llmd_tokens_free(full);
    llmd_tokens_free(inc);
  }
  /* After a reset nothing comes from the cache. */
  llmd_chat_session_reset(cs);
  llmd_chat_session_reset(NULL);
  llmd_tokens *fresh = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_chat_session_encode_chat(cs, TURN2, sizeof TURN2 - 1, true, NULL, 0, NULL, 0, &fresh, &err), &err);
  CHECK(llmd_chat_session_reused_tokens(cs) == 0 && llmd_tokens_len(fresh) > 0);
  llmd_tokens_free(fresh);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_chat_session_new(NULL, &cs, &err), &err);
  RESET_ERR(err);
  CHECK(llmd_chat_session_reused_tokens(NULL) == 0);
  /* A valid body whose engine ids cannot be computed here (its own chat
   * template) is code not_exact, apart from malformed ones ("request"). */
  static const char OWN_TEMPLATE[] =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"w1\"}], \"chat_template\": \"{{ 1 }}\"}";
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_tokenizer_encode_openai(t, S("/v1/chat/completions"), (const uint8_t *)OWN_TEMPLATE,
                                            sizeof OWN_TEMPLATE - 1, &ids, &err),
               &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "not_exact") == 0);
  RESET_ERR(err);

  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_tokenizer_encode_chat(t, S("{\"role\": 1}"), true, NULL, 0, NULL, 0, &ids, &err), &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "request") == 0);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_tokenizer_from_dir(S("/nonexistent"), &t, &err), &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "tokenizer_file") == 0);
  RESET_ERR(err);
  CHECK(llmd_tokens_len(NULL) == 0 && llmd_tokens_data(NULL) == NULL);

  uint64_t seed = 1;
  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_from_file(S(PRECISE_FILE), &seed, &s, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint_json(s, S("{\"name\": \"a\", \"address\": \"10.0.0.1:8000\"}"), &err), &err);

  /* Without a tokenizer: estimates, said in the explanation. */
  llmd_decision *d = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_pick_openai(s, S("r1"), S("/v1/chat/completions"), (const uint8_t *)BODY,
                                          sizeof BODY - 1, NULL, 0, &d, &err),
               &err);
  llmd_string *ex = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_explanation_json(d, &ex, &err), &err);
  CHECK(ex != NULL && strstr(llmd_string_data(ex), "estimated from text") != NULL);
  llmd_string_free(ex);
  llmd_decision_free(d);
  llmd_scheduler_on_error(s, S("r1"), LLMD_REQUEST_ERROR_CANCELLED, NULL, NULL, NULL);

  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_set_tokenizer(s, S("m"), t, &err), &err);
  /* The scheduler and the session keep their own references. */
  llmd_tokenizer_free(t);
  {
    llmd_tokens *inc = NULL;
    CHECK_STATUS(LLMD_STATUS_OK, llmd_chat_session_encode_chat(cs, S(TURN1), true, NULL, 0, NULL, 0, &inc, &err), &err);
    CHECK(llmd_tokens_len(inc) == 7);
    llmd_tokens_free(inc);
  }
  llmd_chat_session_free(cs);
  llmd_kv hdr = {{"x-session-id", 12}, {"s1", 2}};
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_pick_openai(s, S("r2"), S("/v1/chat/completions"), (const uint8_t *)BODY,
                                          sizeof BODY - 1, &hdr, 1, &d, &err),
               &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_explanation_json(d, &ex, &err), &err);
  CHECK(ex != NULL && strstr(llmd_string_data(ex), "estimated from text") == NULL);
  CHECK(ex != NULL && strstr(llmd_string_data(ex), "\"prompt_tokens\":7") != NULL);
  llmd_string_free(ex);
  llmd_decision_free(d);
  llmd_scheduler_on_error(s, S("r2"), LLMD_REQUEST_ERROR_CANCELLED, NULL, NULL, NULL);

  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT,
               llmd_scheduler_pick_openai(s, S("r3"), S("/v1/chat/completions"), (const uint8_t *)S("{\"messages\": 3}"),
                                          NULL, 0, &d, &err),
               &err);
  CHECK(err != NULL && strstr(llmd_error_message(err), "'messages'") != NULL);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT,
               llmd_scheduler_set_tokenizer(s, S("m"), NULL, &err), &err);
  RESET_ERR(err);
  llmd_tokenizer_free(NULL);
  llmd_tokens_free(NULL);
  llmd_chat_session_free(NULL);
  llmd_scheduler_free(s);

  /* A config naming the directory (llmd's tokenizerDir) loads it. */
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
           "- type: token-producer\n  parameters: {modelName: m, tokenizerDir: '%s'}\n"
           "- type: precise-prefix-cache-producer\n"
           "- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n"
           "- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n"
           "  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n",
           dir);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_new(cfg, strlen(cfg), &seed, &s, &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_add_endpoint_json(s, S("{\"name\": \"a\", \"address\": \"10.0.0.1:8000\"}"), &err), &err);
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_scheduler_pick_openai(s, S("r4"), S("/v1/chat/completions"), (const uint8_t *)BODY,
                                          sizeof BODY - 1, NULL, 0, &d, &err),
               &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_decision_explanation_json(d, &ex, &err), &err);
  CHECK(ex != NULL && strstr(llmd_string_data(ex), "\"prompt_tokens\":7") != NULL);
  llmd_string_free(ex);
  llmd_decision_free(d);
  llmd_scheduler_free(s);
  return check_summary("test_tokenizer");
}
