/* The feed through the C ABI: built from a precise config (its settings
 * report), following a pod whose /metrics this test serves over loopback,
 * stats and metrics as text, pod removal, and misuse. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define S(lit) lit, sizeof(lit) - 1
#define V(lit) ((llmd_str){lit, sizeof(lit) - 1})
#define NONE ((llmd_str){NULL, 0})

static llmd_error *err = NULL;

/* The precise-routing config shared with the C++ tests. */
#define PRECISE_FILE LLMD_TESTDATA "/bindings/precise.yaml"

static const char METRICS[] =
    "vllm:num_requests_waiting{model_name=\"m\"} 7\n"
    "vllm:num_requests_running{model_name=\"m\"} 2\n";

static int listener = -1;

/* Answers every connection with the metrics page until the socket closes. */
static void *serve(void *arg) {
  (void)arg;
  for (;;) {
    int c = accept(listener, NULL, NULL);
    if (c < 0) return NULL;
    char buf[2048];
    ssize_t n = read(c, buf, sizeof buf);
    (void)n;
    char out[512];
    int k = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof METRICS - 1, METRICS);
    ssize_t w = write(c, out, (size_t)k);
    (void)w;
    close(c);
  }
}

static int contains(const llmd_string *s, const char *part) {
  return s != NULL && strstr(llmd_string_data(s), part) != NULL;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

int main(void) {
  listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(listener, 16) == 0);
  socklen_t len = sizeof a;
  getsockname(listener, (struct sockaddr *)&a, &len);
  char address[32];
  snprintf(address, sizeof address, "127.0.0.1:%d", ntohs(a.sin_port));
  pthread_t server;
  pthread_create(&server, NULL, serve, NULL);

  llmd_scheduler *s = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_from_file(S(PRECISE_FILE), NULL, &s, &err), &err);
  llmd_feed *f = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_new(s, &f, &err), &err);

  llmd_string *text = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_settings_json(f, &text, &err), &err);
  CHECK(contains(text, "\"setting\":\"kvEventsConfig.concurrency\",\"executed\":true"));
  llmd_string_free(text);

  /* The host's settings over the configuration's, each reported; bad ones
   * are refused by name. */
  llmd_feed *tuned = NULL;
  CHECK_STATUS(LLMD_STATUS_OK,
               llmd_feed_new_with_options(s, S("{\"concurrency\": 2, \"heartbeat_interval\": 0}"), &tuned, &err),
               &err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_settings_json(tuned, &text, &err), &err);
  CHECK(contains(text, "\"plugin\":\"host\",\"setting\":\"concurrency\",\"executed\":true"));
  CHECK(contains(text, "\"setting\":\"heartbeat_interval\""));
  llmd_string_free(text);
  llmd_feed_free(tuned);
  tuned = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_new_with_options(s, NULL, 0, &tuned, &err), &err);
  llmd_feed_free(tuned);
  tuned = NULL;
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_new_with_options(s, S("{\"concurrency\": 0}"), &tuned, &err), &err);
  CHECK(tuned == NULL && strstr(llmd_error_message(err), "concurrency") != NULL);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_new_with_options(s, S("{\"topic\": []}"), &tuned, &err), &err);
  CHECK(strstr(llmd_error_message(err), "unknown option 'topic'") != NULL);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_new_with_options(s, S("[1"), &tuned, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_feed_new_with_options(s, NULL, 3, &tuned, &err), &err);
  RESET_ERR(err);

  llmd_pod_desc pod = {V("pod-a"), {address, strlen(address)}, NONE, NONE, NONE, 0, 1};
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_add_pod(f, &pod, &err), &err);
  CHECK(llmd_scheduler_endpoint_count(s) == 1);
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_add_pod(f, &pod, &err), &err);
  RESET_ERR(err);
  llmd_pod_desc bad = {V("pod-b"), V("127.0.0.1:1"), V("ipc:///tmp/x"), NONE, NONE, 1, 1};
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_add_pod(f, &bad, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_feed_add_pod(f, NULL, &err), &err);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_NULL_ARGUMENT, llmd_feed_start(NULL, &err), &err);
  RESET_ERR(err);

  CHECK(!llmd_feed_running(f) && !llmd_feed_running(NULL));
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_pods_json(f, &text, &err), &err);
  CHECK(strcmp(llmd_string_data(text), "[\"pod-a\"]") == 0);
  llmd_string_free(text);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_scheduler_endpoints_json(s, &text, &err), &err);
  CHECK(strcmp(llmd_string_data(text), "[\"pod-a\"]") == 0);
  llmd_string_free(text);
  CHECK(llmd_feed_unknown_publisher_messages(f) == 0 && llmd_feed_unknown_publisher_messages(NULL) == 0);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_start(f, &err), &err);
  CHECK(llmd_feed_running(f));
  int scraped = 0;
  /* Up to a minute: valgrind runs this test too, one thread at a time. */
  for (int i = 0; i < 6000 && !scraped; i++) {
    CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_stats_json(f, &text, &err), &err);
    scraped = contains(text, "\"up\":true") && !contains(text, "\"scrapes\":0,");
    llmd_string_free(text);
    if (!scraped) sleep_ms(10);
  }
  CHECK(scraped);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_render_metrics(f, &text, &err), &err);
  CHECK(contains(text, "llmd_feed_pod_up{pod=\"pod-a\"} 1"));
  llmd_string_free(text);

  llmd_string *bound = NULL;
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_bind_events(f, S("tcp://127.0.0.1:0"), &bound, &err), &err);
  CHECK(bound != NULL && strncmp(llmd_string_data(bound), "tcp://127.0.0.1:", 16) == 0);
  char want[96];
  snprintf(want, sizeof want, "[\"%s\"]", llmd_string_data(bound));
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_bound_endpoints_json(f, &text, &err), &err);
  CHECK(strcmp(llmd_string_data(text), want) == 0);
  llmd_string_free(text);
  llmd_string_free(bound);

  CHECK_STATUS(LLMD_STATUS_UNKNOWN_ENDPOINT, llmd_feed_remove_pod(f, S("nope"), &err), &err);
  CHECK(err != NULL && strcmp(llmd_error_code(err), "unknown_pod") == 0);
  RESET_ERR(err);
  CHECK_STATUS(LLMD_STATUS_OK, llmd_feed_remove_pod(f, S("pod-a"), &err), &err);
  CHECK(llmd_scheduler_endpoint_count(s) == 0);

  llmd_feed_stop(f);
  llmd_feed_stop(NULL);
  CHECK(!llmd_feed_running(f));
  CHECK_STATUS(LLMD_STATUS_INVALID_ARGUMENT, llmd_feed_start(f, &err), &err);
  RESET_ERR(err);
  /* The feed keeps the scheduler alive: either may be freed first. */
  llmd_scheduler_free(s);
  llmd_feed_free(f);
  llmd_feed_free(NULL);

  shutdown(listener, SHUT_RDWR);
  close(listener);
  pthread_join(server, NULL);
  return check_summary("test_feed");
}
