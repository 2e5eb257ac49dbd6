// The C++ RAII wrapper: values round-trip, failures throw llmd::Error with the
// documented status, handles free themselves (checked by valgrind and ASan).
#include <cstdio>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "llmd.hpp"

static int failed = 0;
static int passed = 0;
#define CHECK(cond)                                                             \
  do {                                                                          \
    if (cond) {                                                                 \
      passed++;                                                                 \
    } else {                                                                    \
      failed++;                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                           \
  } while (0)

// Runs `f` and returns the status of the llmd::Error it throws (OK if none).
template <typename F>
static llmd_status status_of(F&& f) {
  try {
    f();
  } catch (const llmd::Error& e) {
    CHECK(std::strlen(e.what()) > 0);
    return e.status();
  }
  return LLMD_STATUS_OK;
}

static const uint8_t BATCH[] = {
    0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0x00, 0x00, 0x93, 0x97, 0xab, 0x42,
    0x6c, 0x6f, 0x63, 0x6b, 0x53, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x92, 0x6f, 0xcc, 0xde,
    0xc0, 0xdc, 0x00, 0x20, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x10, 0xc0, 0xa3, 0x47, 0x50, 0x55,
    0x93, 0xac, 0x42, 0x6c, 0x6f, 0x63, 0x6b, 0x52, 0x65, 0x6d, 0x6f, 0x76, 0x65, 0x64,
    0x91, 0x6f, 0xa3, 0x43, 0x50, 0x55, 0x91, 0xb0, 0x41, 0x6c, 0x6c, 0x42, 0x6c, 0x6f,
    0x63, 0x6b, 0x73, 0x43, 0x6c, 0x65, 0x61, 0x72, 0x65, 0x64, 0x00};

static void test_hasher() {
  const std::string seed = "42";
  llmd::Hasher h("0.33.0", "sha256_cbor", 16, &seed);
  std::vector<uint32_t> tokens;
  for (uint32_t i = 1; i <= 40; i++) tokens.push_back(i);
  auto keys = h.block_keys(tokens);
  CHECK(keys.size() == 2);
  CHECK(keys[0] == 16300212363532267629ULL);
  llmd::HashExtras salted;
  salted.cache_salt("tenant");
  CHECK(h.block_keys(tokens, &salted)[0] != keys[0]);
  salted.clear_cache_salt();
  CHECK(h.block_keys(tokens, &salted)[0] == keys[0]);
  // Moved-from extras are refused, not hashed as a text-only request.
  llmd::HashExtras taken = std::move(salted);
  CHECK(status_of([&] { h.block_keys(tokens, &salted); }) == LLMD_STATUS_NULL_ARGUMENT);
  CHECK(h.block_keys(tokens, &taken) == keys);
  llmd::Hasher moved = std::move(h);
  CHECK(moved.block_keys(tokens) == keys);
  // A moved-from hasher throws instead of dividing by its block size of 0.
  CHECK(status_of([&] { h.block_keys(tokens); }) == LLMD_STATUS_NULL_ARGUMENT);
  CHECK(status_of([&] { llmd::Hasher bad("", "md5", 16, nullptr); }) == LLMD_STATUS_HASH);
  try {
    llmd::Hasher bad("", "md5", 16, nullptr);
  } catch (const llmd::Error& e) {
    CHECK(e.code() == "hash");
  }
}

static void test_events() {
  auto batch = llmd::EventBatch::decode(BATCH, sizeof BATCH);
  CHECK(batch.size() == 3);
  CHECK(batch.event(0).kind == LLMD_EVENT_KIND_BLOCK_STORED);
  CHECK((batch.keys(0) == std::vector<uint64_t>{111, 222}));
  CHECK(batch.dp_rank() == std::optional<int64_t>(0));
  CHECK(status_of([&] { batch.event(7); }) == LLMD_STATUS_INVALID_ARGUMENT);
  CHECK(status_of([&] { llmd::EventBatch::decode(BATCH, 10); }) == LLMD_STATUS_DECODE);
}


static void test_scheduler() {
  llmd::Scheduler s({}, 11);
  s.add_endpoint({"pod-a", "10.0.0.1:8000", "llama", {{"llm-d.ai/role", "decode"}}, {}});
  s.add_endpoint({"pod-b", "10.0.0.2:8000", "llama", {}, {"adapter-x"}});
  CHECK(s.endpoint_count() == 2);
  llmd_endpoint_metrics busy{};
  busy.waiting_queue_size = 30;
  busy.kv_cache_usage = 0.9;
  s.update_metrics("pod-a", busy);
  s.update_metrics_text("pod-b", "vllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0.1\n");

  llmd::Request r;
  r.id = "cpp-1";
  r.model = "llama";
  for (uint32_t i = 1; i <= 64; i++) r.tokens.push_back(i);
  r.headers = {{"x-session", "s1"}};
  llmd::Decision d = s.pick(r);
  CHECK(d.primary().name == "pod-b");
  CHECK(d.primary().address == "10.0.0.2:8000");
  CHECK(!d.prefill());
  CHECK(!d.targets().empty());
  bool dest = false;
  for (const auto& [k, v] : d.headers()) dest = dest || (k == "x-gateway-destination-endpoint" && v == "10.0.0.2:8000");
  CHECK(dest);
  CHECK(d.explanation_json().find("pod-a") != std::string::npos);
  CHECK(d.json().find("\"targets\"") != std::string::npos);
  {
    // A moved-from decision reads as empty, not through the moved handle's views.
    llmd::Decision taken = std::move(d);
    CHECK(taken.primary().name == "pod-b");
    CHECK(d.primary().name.empty() && !d.prefill() && d.targets().empty());
    d = std::move(taken);
    CHECK(d.primary().name == "pod-b");
  }
  CHECK(status_of([&] { s.on_served_by("cpp-1", "pod-z"); }) == LLMD_STATUS_UNKNOWN_ENDPOINT);
  CHECK(!s.on_served_by("nope", "pod-a"));
  CHECK(s.on_served_by("cpp-1", "pod-a"));
  CHECK(s.on_first_token("cpp-1"));
  CHECK(s.on_tokens("cpp-1", 3));
  auto sum = s.on_complete("cpp-1", 16u);
  CHECK(sum && sum->cached_tokens == 16);
  CHECK(!s.on_complete("cpp-1"));
  {
    // Every field of the C descriptor is reachable: the adapter's path and
    // multimodal items; a request never finished is released by expiry.
    llmd::Request m = r;
    m.id = "cpp-mm";
    m.lora_path = "/adapters/x";
    // A path without the adapter's name is refused.
    CHECK(status_of([&] { s.pick(m); }) == LLMD_STATUS_INVALID_ARGUMENT);
    m.lora_name = "x";
    m.mm_items = {"img-1", "img-2"};
    m.multimodal = true;
    CHECK(!s.pick(m).primary().name.empty());
    CHECK(status_of([&] {
            llmd::Request bad = r;
            bad.id = "cpp-bad";
            bad.mm_items = {""};
            s.pick(bad);
          }) == LLMD_STATUS_INVALID_ARGUMENT);
    // A usage that reports nothing keeps the counted tokens.
    llmd::Request u = r;
    u.id = "cpp-u";
    s.pick(u);
    CHECK(s.on_first_token("cpp-u") && s.on_tokens("cpp-u", 2));
    auto us = s.on_complete("cpp-u", llmd::unknown_usage());
    CHECK(us && us->output_tokens == 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(s.expire_requests(1) == 1);
    CHECK(!s.on_complete("cpp-mm"));
  }
  s.tick();
  CHECK(s.render_metrics().find("llmd_inference_ttft_bucket") != std::string::npos);
  CHECK(s.config_report_json().find("\"not_executed\":[") != std::string::npos);
  const std::string events_cfg =
      "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
      "- type: precise-prefix-cache-producer\n"
      "  parameters: {kvEventsConfig: {discoverPods: true}}\n"
      "- type: prefix-cache-scorer\n"
      "  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n"
      "- type: max-score-picker\n";
  CHECK(status_of([&] { llmd::Scheduler::strict(events_cfg); }) == LLMD_STATUS_CONFIG);
  CHECK(llmd::Scheduler(events_cfg).config_report_json().find("kvEventsConfig.discoverPods") !=
        std::string::npos);
  {
    // The response headers a proxy sets: session affinity's token.
    llmd::Scheduler sess(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: session-affinity-scorer\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n"
        "  - pluginRef: session-affinity-scorer\n  - pluginRef: max-score-picker\n");
    sess.add_endpoint({"pod-a", "10.0.0.1:8000", std::nullopt, {}, {}});
    llmd::Request q;
    q.id = "cpp-sess";
    q.model = "m";
    q.prompt = "hello";
    auto d = sess.pick(q);
    auto rh = d.response_headers();
    CHECK(rh.size() == 1 && rh[0].first == "x-session-token" && !rh[0].second.empty());
    CHECK(d.remove_headers().empty());
  }
  llmd_scheduler_options opts{};
  opts.strict = true;
  CHECK(status_of([&] { llmd::Scheduler::with_options(events_cfg, opts); }) == LLMD_STATUS_CONFIG);
  opts = llmd_scheduler_options{};
  opts.max_open_requests = 3;
  CHECK(llmd::Scheduler::with_options("", opts).open_requests_limit() == 3);
  CHECK(s.open_requests_limit() == (size_t{1} << 20));
  CHECK(status_of([&] { llmd::Scheduler::from_file_with_options("/nonexistent.yaml", opts); }) == LLMD_STATUS_IO);

  // Failures throw with the documented status and code.
  CHECK(status_of([&] { s.remove_endpoint("nope"); }) == LLMD_STATUS_UNKNOWN_ENDPOINT);
  CHECK(status_of([&] { llmd::Scheduler bad("plugins: [ {type: "); }) == LLMD_STATUS_CONFIG);
  CHECK(status_of([&] { llmd::Scheduler::from_file("/nonexistent.yaml"); }) == LLMD_STATUS_IO);
  CHECK(status_of([&] { s.update_metrics_text("pod-a", "vllm:num_requests_waiting{ 1\n"); }) ==
        LLMD_STATUS_METRICS_PARSE);
  llmd::Request other;
  other.id = "cpp-2";
  other.model = "other-model";
  other.prompt = "hello";
  try {
    s.pick(other);
    CHECK(false);
  } catch (const llmd::Error& e) {
    CHECK(e.status() == LLMD_STATUS_SCHEDULE);
    CHECK(e.code() == "no_endpoints");
  }
  auto from_file = llmd::Scheduler::from_file(std::string(LLMD_TESTDATA) +
                                              "/llm-d-configs/03-pd-disaggregation-prefix-decider.yaml");
  CHECK(from_file.endpoint_count() == 0);

  // A window through pick_batch (llm-d's sample burst config): each prompt's
  // samples share a pod; a request for an unserved model fails in its slot.
  auto burst = llmd::Scheduler::from_file(std::string(LLMD_TESTDATA) +
                                          "/llm-d-configs/18-burst-prefix-cache.yaml");
  CHECK(burst.burst_window_ms() == 100);
  CHECK(s.burst_window_ms() == 0);
  burst.add_endpoint({"pod-a", "10.0.1.1:8000", "llama", {}, {}});
  burst.add_endpoint({"pod-b", "10.0.1.2:8000", "llama", {}, {}});
  burst.add_endpoint({"pod-c", "10.0.1.3:8000", "llama", {}, {}});
  std::vector<llmd::Request> window;
  for (int i = 0; i < 6; i++) {
    llmd::Request q;
    q.id = "w" + std::to_string(i);
    q.model = "llama";
    for (uint32_t t = 0; t < 256; t++) q.tokens.push_back(t + (i % 2 ? 5000 : 100));
    window.push_back(q);
  }
  window.push_back(other);
  auto results = burst.pick_batch(window);
  CHECK(results.size() == 7);
  for (int i = 0; i < 6; i++) {
    CHECK(results[i].decision && !results[i].error);
    CHECK(results[i].decision->primary().name == results[i % 2].decision->primary().name);
  }
  CHECK(results[0].decision->primary().name != results[1].decision->primary().name);
  CHECK(!results[6].decision && results[6].error && results[6].error->code() == "no_endpoints");
}

static void test_index() {
  llmd_index_config cfg{};
  cfg.capacity_blocks = 4096;
  cfg.max_endpoints = 16;
  llmd::Index ix(&cfg);
  uint16_t b = ix.register_endpoint("pod-b");
  // BATCH stores blocks of tokens 1..32 then removes one and clears: apply
  // only its first event by decoding a one-event prefix of the same bytes.
  std::vector<uint8_t> stored(BATCH, BATCH + 70);
  stored[10] = 0x91;
  stored.push_back(0x00);
  auto r = ix.apply(b, "llama", llmd::EventBatch::decode(stored.data(), stored.size()));
  CHECK(r.stored == 2);
  std::vector<uint32_t> tokens;
  for (uint32_t i = 1; i <= 48; i++) tokens.push_back(i);
  auto keys = ix.prompt_keys("llama", tokens);
  CHECK(keys.size() == 3);
  auto m = ix.match_prefix("llama", keys);
  CHECK(m.size() == 1 && m[0].endpoint == b && m[0].consecutive_blocks == 2);
  CHECK(ix.stats().endpoints == 1);
  // Cleared: the endpoint stays registered and holds nothing.
  ix.clear_endpoint(b);
  CHECK(ix.match_prefix("llama", keys).empty() && ix.stats().endpoints == 1);
  CHECK(status_of([&] { ix.clear_endpoint(uint16_t(b + 1)); }) == LLMD_STATUS_UNKNOWN_ENDPOINT);
  // Speculative entries from routing expire at a tick past their lifetime
  // (2 s by default), not before.
  ix.record_routing(b, "llama", keys, 0);
  ix.tick(1000000000ull);
  CHECK(ix.match_prefix("llama", keys).size() == 1);
  ix.tick(3000000000ull);
  CHECK(ix.match_prefix("llama", keys).empty());
  cfg.key_mode = 42;
  CHECK(status_of([&] { llmd::Index bad(&cfg); }) == LLMD_STATUS_INVALID_ARGUMENT);
}

// The precise-routing config shared with the C tests.
static const std::string PRECISE_FILE = std::string(LLMD_TESTDATA) + "/bindings/precise.yaml";

static void test_tokenizer() {
  const std::string dir = std::string(LLMD_TESTDATA) + "/tokenizers/tiny";
  auto t = llmd::Tokenizer::from_dir(dir);
  CHECK((t.encode("w1 w2 zz") == std::vector<uint32_t>{0, 8, 9, 1}));
  CHECK((t.encode("w1 w2 zz", false) == std::vector<uint32_t>{8, 9, 1}));
  const std::string msgs = R"([{"role": "user", "content": "w1 w2"}])";
  const std::vector<uint32_t> chat{2, 4, 8, 9, 3, 2, 5};
  CHECK(t.encode_chat(msgs) == chat);
  // The rendered prompt gives the same ids without added special tokens.
  CHECK(t.encode(t.render_chat(msgs), false) == chat);
  CHECK(t.encode_openai("/v1/chat/completions", R"({"model": "m", "messages": )" + msgs + "}") == chat);
  CHECK(status_of([&] { t.encode_chat(R"({"role": 1})"); }) == LLMD_STATUS_INVALID_ARGUMENT);
  try {
    t.encode_openai("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "w1"}], "chat_template": "{{ 1 }}"})");
    CHECK(false);
  } catch (const llmd::Error& e) {
    CHECK(e.code() == "not_exact");
  }
  CHECK(status_of([&] { llmd::Tokenizer::from_dir("/nonexistent"); }) == LLMD_STATUS_INVALID_ARGUMENT);
  // As the engine was started: its template and default kwargs.
  auto engine = llmd::Tokenizer::from_dir_engine(dir, "{% for m in messages %}{{ m.content }}|{% endfor %}{{ flag }}",
                                                 R"({"flag": "w3"})");
  CHECK(engine.render_chat(msgs) == "w1 w2|w3");
  // Template kwargs and tools reach the template.
  CHECK(engine.render_chat(msgs, true, "", R"({"flag": "w1"})") == "w1 w2|w1");
  auto tooled = llmd::Tokenizer::from_dir_engine(dir, "{{ tools | length }} {{ tools[0].function.name }}");
  CHECK(tooled.render_chat(msgs, true, R"([{"type": "function", "function": {"name": "w2"}}])") == "1 w2");
  CHECK(status_of([&] { tooled.render_chat(msgs, true, "{"); }) == LLMD_STATUS_INVALID_ARGUMENT);
  CHECK(status_of([&] { llmd::Tokenizer::from_dir_engine(dir, "", R"({"messages": []})"); }) ==
        LLMD_STATUS_INVALID_ARGUMENT);

  // A session: the same ids turn by turn, the earlier turns reused.
  llmd::ChatSession session(t);
  const std::string turn2 =
      R"([{"role": "user", "content": "w1 w2"}, {"role": "assistant", "content": "w2"}, {"role": "user", "content": "w1"}])";
  CHECK(session.encode_chat(msgs) == chat);
  CHECK(session.encode_chat(turn2) == t.encode_chat(turn2) && session.reused_tokens() > 0);
  session.reset();
  CHECK(session.encode_chat(turn2) == t.encode_chat(turn2) && session.reused_tokens() == 0);

  // Picks from OpenAI bodies routed on the tokenizer's ids.
  auto s = llmd::Scheduler::from_file(PRECISE_FILE, 1);
  s.add_endpoint_json(R"({"name": "a", "address": "10.0.0.1:8000"})");
  CHECK(s.endpoints_json() == R"(["a"])");
  const std::string body = R"({"model": "m", "messages": )" + msgs + "}";
  auto estimated = s.pick_openai("r1", "/v1/chat/completions", body);
  CHECK(estimated.explanation_json().find("estimated from text") != std::string::npos);
  s.on_error("r1", LLMD_REQUEST_ERROR_CANCELLED);
  s.set_tokenizer("m", t);
  auto exact = s.pick_openai("r2", "/v1/chat/completions", body, {{"x-session-id", "s1"}});
  CHECK(exact.explanation_json().find("\"prompt_tokens\":7") != std::string::npos);
  CHECK(exact.primary().name == "a");
  s.on_error("r2", LLMD_REQUEST_ERROR_CANCELLED);
  auto by_json = s.pick_json(R"({"id": "r3", "model": "m", "prompt": {"tokens": [1, 2, 3]}})");
  CHECK(by_json.primary().name == "a" && by_json.json().find("\"a\"") != std::string::npos);
  s.on_error("r3", LLMD_REQUEST_ERROR_CANCELLED);
  CHECK(status_of([&] { s.pick_openai("r4", "/v1/other", body); }) == LLMD_STATUS_INVALID_ARGUMENT);
  CHECK(status_of([&] { s.add_endpoint_json("[1"); }) == LLMD_STATUS_INVALID_ARGUMENT);
  // A decoded batch gives the counts its bytes give.
  s.add_endpoint_json(R"({"name": "b", "address": "10.0.0.2:8000"})");
  auto decoded = s.ingest_kv_batch("a", llmd::EventBatch::decode(BATCH, sizeof BATCH));
  auto bytes = s.ingest_kv_events("b", BATCH, sizeof BATCH);
  CHECK(decoded.stored == 2 && decoded.stored == bytes.stored && decoded.removed == bytes.removed &&
        decoded.cleared == bytes.cleared && decoded.skipped == bytes.skipped);
  CHECK(status_of([&] { s.ingest_kv_batch("nobody", llmd::EventBatch::decode(BATCH, sizeof BATCH)); }) ==
        LLMD_STATUS_UNKNOWN_ENDPOINT);
}

// E/P/D: a multimodal request's encoder endpoints, as targets and as the
// x-encoder-hosts-ports header.
static void test_encode_targets() {
  const char* yaml =
      "apiVersion: llm-d.ai/v1alpha1\n"
      "kind: EndpointPickerConfig\n"
      "plugins:\n"
      "- type: encode-filter\n"
      "- type: decode-filter\n"
      "- type: queue-scorer\n"
      "- name: mm\n"
      "  type: always-disagg-multimodal-decider\n"
      "- type: disagg-profile-handler\n"
      "  parameters:\n"
      "    profiles: {decode: decode, encode: encode}\n"
      "    deciders: {encode: mm}\n"
      "- type: max-score-picker\n"
      "schedulingProfiles:\n"
      "- name: decode\n"
      "  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]\n"
      "- name: encode\n"
      "  plugins: [{pluginRef: encode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]\n";
  llmd::Scheduler s(yaml, 1);
  s.add_endpoint({"d", "10.0.0.1:8000", std::nullopt, {{"llm-d.ai/role", "decode"}}, {}});
  s.add_endpoint({"e", "10.0.0.2:8000", std::nullopt, {{"llm-d.ai/role", "encode"}}, {}});
  llmd::Request r;
  r.id = "mm1";
  r.model = "m";
  for (uint32_t i = 0; i < 32; i++) r.tokens.push_back(i);
  r.multimodal = true;
  auto d = s.pick(r);
  auto enc = d.encode_targets();
  CHECK(enc.size() == 1 && enc[0].name == "e" && enc[0].address == "10.0.0.2:8000");
  CHECK(d.primary().name == "d");
  bool header = false;
  for (const auto& [k, v] : d.headers()) header = header || (k == "x-encoder-hosts-ports" && v == "10.0.0.2:8000");
  CHECK(header);
  s.on_error("mm1", LLMD_REQUEST_ERROR_CANCELLED);
  // A text-only request has none.
  llmd::Request text{"t1", "m", r.tokens};
  CHECK(s.pick(text).encode_targets().empty());
  s.on_error("t1", LLMD_REQUEST_ERROR_CANCELLED);
  CHECK(llmd_decision_encode_target_count(nullptr) == 0);
  CHECK(llmd_decision_encode_target(nullptr, 0).name.ptr == nullptr);
  CHECK(llmd_decision_encode_target(d.get(), 1).name.ptr == nullptr);
}

static void test_feed() {
  auto s = llmd::Scheduler::from_file(PRECISE_FILE);
  llmd::Feed f(s);
  CHECK(f.settings_json().find(R"("setting":"kvEventsConfig.concurrency","executed":true)") != std::string::npos);
  llmd::Feed tuned(s, R"({"concurrency": 2, "heartbeat_interval": 0})");
  CHECK(tuned.settings_json().find(R"("plugin":"host","setting":"concurrency","executed":true)") != std::string::npos);
  try {
    llmd::Feed bad(s, R"({"topic": []})");
    CHECK(false);
  } catch (const llmd::Error& e) {
    CHECK(e.status() == LLMD_STATUS_INVALID_ARGUMENT && std::string(e.what()).find("topic") != std::string::npos);
  }
  llmd::Pod pod{"pod-a", "127.0.0.1:1", std::nullopt, std::nullopt, std::nullopt, true, 1};
  f.add_pod(pod);
  CHECK(f.pods_json() == R"(["pod-a"])" && s.endpoint_count() == 1);
  CHECK(status_of([&] { f.add_pod(pod); }) == LLMD_STATUS_INVALID_ARGUMENT);
  llmd::Pod bad{"pod-b", "127.0.0.1:1", std::string("ipc:///tmp/x"), std::nullopt, std::nullopt, true, 1};
  CHECK(status_of([&] { f.add_pod(bad); }) == LLMD_STATUS_INVALID_ARGUMENT);
  // Syncing makes the followed pods exactly the list.
  // Brace-initialised with the leading fields only (warning-free under -Wextra).
  llmd::Pod other{"pod-c", "127.0.0.1:2"};
  other.no_scrape = true;
  f.sync_pods({other});
  CHECK(f.pods_json() == R"(["pod-c"])" && s.endpoints_json() == R"(["pod-c"])");
  const std::string bound = f.bind_events("tcp://127.0.0.1:0");
  CHECK(bound.rfind("tcp://127.0.0.1:", 0) == 0 && bound != "tcp://127.0.0.1:0");
  CHECK(f.bound_endpoints_json() == "[\"" + bound + "\"]");
  CHECK(!f.running());
  f.start();
  CHECK(f.running() && f.unknown_publisher_messages() == 0);
  CHECK(f.stats_json().find("\"pod-c\"") != std::string::npos);
  CHECK(f.render_metrics().find("llmd_feed_") != std::string::npos);
  CHECK(status_of([&] { f.discover_dns("localhost", 8000, 0); }) == LLMD_STATUS_INVALID_ARGUMENT);
  f.remove_pod("pod-c");
  CHECK(s.endpoint_count() == 0);
  CHECK(status_of([&] { f.remove_pod("pod-c"); }) == LLMD_STATUS_UNKNOWN_ENDPOINT);
  // llm-d's endpoint file: its pods are followed.
  const std::string file = "/tmp/llmd_test_wrapper_endpoints.yaml";
  {
    FILE* out = std::fopen(file.c_str(), "w");
    CHECK(out != nullptr);
    if (out) {
      std::fputs("endpoints:\n- name: pod-f\n  address: 127.0.0.1\n  port: 3\n", out);
      std::fclose(out);
    }
  }
  f.watch_file(file, false);
  bool followed = false;
  for (int i = 0; i < 200 && !followed; i++) {
    followed = f.pods_json().find("pod-f") != std::string::npos;
    if (!followed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(followed);
  std::remove(file.c_str());
  f.stop();
  CHECK(!f.running());
  // A stopped feed takes no more pods.
  CHECK(status_of([&] { f.add_pod(pod); }) == LLMD_STATUS_INVALID_ARGUMENT);
  CHECK(status_of([&] { f.watch_file(file); }) == LLMD_STATUS_INVALID_ARGUMENT);
}

static void test_otlp() {
  llmd::Scheduler s({}, 1);
  s.add_endpoint_json(R"({"name": "a", "address": "10.0.0.1:8000"})");
  const std::string body = R"({"model": "m", "prompt": [1, 2, 3]})";
  auto pick = [&](const char* id, const char* flags) {
    return s.pick_openai(id, "/v1/completions", body,
                         {{"traceparent", std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-") + flags}});
  };
  {
    // A port nothing listens on: spans fail to send, counted, never an error.
    llmd::OtlpExporter x("http://127.0.0.1:9/v1/traces", "svc");
    CHECK(x.export_decision(pick("r1", "01"), 1000, 2000));
    CHECK(!x.export_decision(pick("r2", "00"), 1000, 2000));
    CHECK(x.flush(20000));
    llmd_otlp_stats st = x.stats();
    CHECK(st.unsampled_decisions == 1 && st.failed_spans > 0 && st.exported_spans == 0);
  }
  llmd_otlp_options o{};
  o.max_queue_spans = 1;
  o.timeout_ms = 100;
  llmd::OtlpExporter small("http://127.0.0.1:9/v1/traces", {}, 1.0, &o);
  CHECK(!small.export_decision(pick("r3", "01"), 1000, 2000));
  CHECK(small.flush(20000) && small.stats().dropped_spans > 0);
  CHECK(status_of([] { llmd::OtlpExporter bad("https://c:4318/v1/traces"); }) == LLMD_STATUS_INVALID_ARGUMENT);
  CHECK(status_of([] { llmd::OtlpExporter bad("http://c:4318/v1/traces", {}, 2.0); }) ==
        LLMD_STATUS_INVALID_ARGUMENT);
  for (const char* id : {"r1", "r2", "r3"}) s.on_error(id, LLMD_REQUEST_ERROR_CANCELLED);
}

int main() {
  CHECK(llmd::version() == llmd_version());
  test_hasher();
  test_events();
  test_scheduler();
  test_index();
  test_tokenizer();
  test_encode_targets();
  test_feed();
  test_otlp();
  std::printf("test_wrapper: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
