// llmd.hpp: header-only C++17 RAII wrapper over the libllmd C ABI.
//
// Every handle is a move-only owner that frees itself; every failed call
// throws llmd::Error carrying the C status, the stable code and the message.
// Nothing here allocates on behalf of the library beyond std::string copies
// of returned text.
#ifndef LLMD_HPP
#define LLMD_HPP

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmd.h"

namespace llmd {

// A failed call: the C status, the library's stable code and its message.
class Error : public std::runtime_error {
 public:
  Error(llmd_status status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  llmd_status status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }

 private:
  llmd_status status_;
  std::string code_;
};

namespace detail {

// The error of a call that returned `status`, taking ownership of `err`.
inline Error take_error(llmd_status status, llmd_error* err) {
  // Freed however this returns: building the strings can throw.
  struct Owned {
    llmd_error* e;
    ~Owned() { llmd_error_free(e); }
  } owned{err};
  std::string code = llmd_error_code(err);
  std::string message = err ? llmd_error_message(err) : llmd_status_name(status);
  return Error(status, std::move(code), message);
}

// Throws llmd::Error for a non-OK status, taking ownership of `err`.
inline void check(llmd_status status, llmd_error* err) {
  if (status == LLMD_STATUS_OK) return;
  throw take_error(status, err);
}

// Calls `f(&err)` and throws on failure.
template <typename F>
void call(F&& f) {
  llmd_error* err = nullptr;
  llmd_status status = f(&err);
  check(status, err);
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};

template <typename T, void (*Free)(T*)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

// Takes an owned llmd_string and copies it into a std::string.
inline std::string take_string(llmd_string* s) {
  Handle<llmd_string, llmd_string_free> owned(s);
  return std::string(llmd_string_data(owned.get()), llmd_string_len(owned.get()));
}

// Takes an owned llmd_tokens and copies the ids into a std::vector.
inline std::vector<uint32_t> take_tokens(llmd_tokens* t) {
  Handle<llmd_tokens, llmd_tokens_free> owned(t);
  const uint32_t* ids = llmd_tokens_data(owned.get());
  return ids ? std::vector<uint32_t>(ids, ids + llmd_tokens_len(owned.get()))
             : std::vector<uint32_t>();
}

// Calls `f(&out, &err)` for a call that returns text, and takes the text.
template <typename F>
std::string text(F&& f) {
  llmd_string* s = nullptr;
  call([&](llmd_error** e) { return f(&s, e); });
  return take_string(s);
}

// An optional JSON argument: an empty view passes NULL (none).
inline const char* opt_json(std::string_view s) noexcept { return s.empty() ? nullptr : s.data(); }

}  // namespace detail

// The library's run-time version ("MAJOR.MINOR.PATCH").
inline std::string version() { return llmd_version(); }


// Everything besides tokens that changes a request's block hashes.
class HashExtras {
 public:
  HashExtras() {
    llmd_hash_extras* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_hash_extras_new(&raw, e); });
    h_.reset(raw);
  }
  HashExtras& lora(const int64_t* id, const std::string* name, const std::string* path) {
    detail::call([&](llmd_error** e) {
      return llmd_hash_extras_set_lora(h_.get(), id, name ? name->data() : nullptr,
                                       name ? name->size() : 0, path ? path->data() : nullptr,
                                       path ? path->size() : 0, e);
    });
    return *this;
  }
  HashExtras& cache_salt(std::string_view salt) {
    detail::call([&](llmd_error** e) {
      return llmd_hash_extras_set_cache_salt(h_.get(), salt.data() ? salt.data() : "",
                                             salt.size(), e);
    });
    return *this;
  }
  // Clears the salt (as the C call given NULL).
  HashExtras& clear_cache_salt() {
    detail::call([&](llmd_error** e) {
      return llmd_hash_extras_set_cache_salt(h_.get(), nullptr, 0, e);
    });
    return *this;
  }
  // The request's prompt embeddings: row-major tensor bytes, `row_bytes`
  // per token (see llmd_hash_extras_set_prompt_embeds).
  HashExtras& prompt_embeds(const uint8_t* data, size_t len, size_t row_bytes) {
    detail::call([&](llmd_error** e) {
      return llmd_hash_extras_set_prompt_embeds(h_.get(), data, len, row_bytes, e);
    });
    return *this;
  }
  HashExtras& mm_item(std::string_view identifier, size_t offset, size_t length) {
    detail::call([&](llmd_error** e) {
      return llmd_hash_extras_add_mm_item(h_.get(), identifier.data(), identifier.size(),
                                          offset, length, e);
    });
    return *this;
  }
  const llmd_hash_extras* get() const noexcept { return h_.get(); }

 private:
  detail::Handle<llmd_hash_extras, llmd_hash_extras_free> h_;
};

// Computes the block keys vLLM publishes for a prompt. Thread-safe.
class Hasher {
 public:
  // `vllm_version` empty means the newest supported; `seed` null when unset.
  Hasher(std::string_view vllm_version, std::string_view algo, size_t block_size,
         const std::string* seed) {
    llmd_hasher* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_hasher_new(vllm_version.empty() ? nullptr : vllm_version.data(),
                             vllm_version.size(), algo.data(), algo.size(), block_size,
                             seed ? seed->data() : nullptr, seed ? seed->size() : 0, &raw, e);
    });
    h_.reset(raw);
  }
  size_t block_size() const noexcept { return llmd_hasher_block_size(h_.get()); }
  std::vector<uint64_t> block_keys(const std::vector<uint32_t>& tokens,
                                   const HashExtras* extras = nullptr) const {
    if (!h_) throw Error(LLMD_STATUS_NULL_ARGUMENT, "null_argument", "a moved-from Hasher");
    // A moved-from HashExtras would hash as a text-only request: refused.
    if (extras && !extras->get())
      throw Error(LLMD_STATUS_NULL_ARGUMENT, "null_argument", "a moved-from HashExtras");
    std::vector<uint64_t> keys(tokens.size() / block_size());
    size_t n = 0;
    detail::call([&](llmd_error** e) {
      return llmd_hasher_block_keys(h_.get(), tokens.data(), tokens.size(),
                                    extras ? extras->get() : nullptr, keys.data(), keys.size(),
                                    &n, e);
    });
    keys.resize(n);
    return keys;
  }
  const llmd_hasher* get() const noexcept { return h_.get(); }

 private:
  detail::Handle<llmd_hasher, llmd_hasher_free> h_;
};

// One decoded vLLM EventBatch payload. Immutable, thread-safe.
class EventBatch {
 public:
  static EventBatch decode(const uint8_t* bytes, size_t len) {
    llmd_event_batch* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_event_batch_decode(bytes, len, &raw, e); });
    return EventBatch(raw);
  }
  size_t size() const noexcept { return llmd_event_batch_len(h_.get()); }
  double timestamp() const noexcept { return llmd_event_batch_ts(h_.get()); }
  // The publisher's data-parallel rank, when the batch carries one.
  std::optional<int64_t> dp_rank() const noexcept {
    int64_t rank = 0;
    if (!llmd_event_batch_dp_rank(h_.get(), &rank)) return std::nullopt;
    return rank;
  }
  llmd_event_info event(size_t i) const {
    llmd_event_info info{};
    detail::call([&](llmd_error** e) { return llmd_event_batch_event(h_.get(), i, &info, e); });
    return info;
  }
  std::vector<uint64_t> keys(size_t i) const {
    std::vector<uint64_t> out(event(i).n_blocks);
    size_t n = 0;
    detail::call([&](llmd_error** e) {
      return llmd_event_batch_event_keys(h_.get(), i, out.data(), out.size(), &n, e);
    });
    out.resize(n);
    return out;
  }
  const llmd_event_batch* get() const noexcept { return h_.get(); }

 private:
  explicit EventBatch(llmd_event_batch* raw) : h_(raw) {}
  detail::Handle<llmd_event_batch, llmd_event_batch_free> h_;
};

// A borrowed view as std::string_view (empty for a NULL view).
inline std::string_view view(llmd_str s) noexcept {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

namespace detail {
inline llmd_str str(std::string_view s) noexcept { return llmd_str{s.data(), s.size()}; }
inline llmd_str opt_str(const std::optional<std::string>& s) noexcept {
  return s ? llmd_str{s->data(), s->size()} : llmd_str{nullptr, 0};
}
}  // namespace detail

// A chosen endpoint.
struct Target {
  std::string name;
  std::string address;
};

// An endpoint to register.
struct EndpointSpec {
  std::string name;
  std::string address;
  std::optional<std::string> model = std::nullopt;
  std::vector<std::pair<std::string, std::string>> labels = {};
  std::vector<std::string> lora_adapters = {};
};

// A request to schedule; set either `tokens` or `prompt`.
// A usage that reports nothing (every count -1): start from it and set
// what the engine's response gave. A zero-initialised `llmd_usage` reports
// 0 for every count, which replaces the tokens counted.
inline llmd_usage unknown_usage() noexcept { return llmd_usage{-1, -1, -1}; }

struct Request {
  std::string id;
  std::string model;
  std::vector<uint32_t> tokens = {};
  std::optional<std::string> prompt = std::nullopt;
  std::optional<std::string> lora_name = std::nullopt;
  // The adapter's path, for engines that identify adapters by path.
  std::optional<std::string> lora_path = std::nullopt;
  std::optional<std::string> cache_salt = std::nullopt;
  std::optional<std::string> session_id = std::nullopt;
  std::vector<std::pair<std::string, std::string>> headers = {};
  int32_t priority = 0;
  double ttft_slo_ms = 0;
  double tpot_slo_ms = 0;
  // The request carries multimodal items.
  bool multimodal = false;
  // Identities of its multimodal items (any stable non-empty string per
  // image, video or audio) for the mm-embeddings-cache plugins; any
  // implies `multimodal`.
  std::vector<std::string> mm_items = {};
  // When the request reached the host, Unix time in nanoseconds (the
  // scheduler's clock); 0 = latencies start at the pick.
  uint64_t arrived_at_ns = 0;
};

namespace detail {

// A request's C descriptor, borrowing from the Request (both must outlive the call).
struct RequestDesc {
  std::vector<llmd_kv> headers;
  std::vector<llmd_str> mm_items;
  llmd_request_desc desc{};
  // `desc.headers` and `desc.mm_items` point into the vectors: a copy
  // would point into the source's, a move keeps the buffers.
  RequestDesc(const RequestDesc&) = delete;
  RequestDesc& operator=(const RequestDesc&) = delete;
  RequestDesc(RequestDesc&&) = default;
  RequestDesc& operator=(RequestDesc&&) = default;
  explicit RequestDesc(const Request& r) {
    for (const auto& [k, v] : r.headers) headers.push_back({str(k), str(v)});
    desc.id = str(r.id);
    desc.model = str(r.model);
    desc.tokens = r.tokens.data();
    desc.n_tokens = r.tokens.size();
    desc.prompt = opt_str(r.prompt);
    desc.lora_name = opt_str(r.lora_name);
    desc.lora_path = opt_str(r.lora_path);
    desc.cache_salt = opt_str(r.cache_salt);
    desc.session_id = opt_str(r.session_id);
    desc.headers = headers.data();
    desc.n_headers = headers.size();
    desc.priority = r.priority;
    desc.ttft_slo_ms = r.ttft_slo_ms;
    desc.tpot_slo_ms = r.tpot_slo_ms;
    desc.arrived_at_ns = r.arrived_at_ns;
    for (const auto& m : r.mm_items) mm_items.push_back(str(m));
    desc.multimodal = r.multimodal;
    desc.mm_items = mm_items.data();
    desc.n_mm_items = mm_items.size();
  }
};

}  // namespace detail

// A scheduling decision; owns its handle, copies nothing until asked.
class Decision {
 public:
  explicit Decision(llmd_decision* raw) : h_(raw) { llmd_decision_get_info(h_.get(), &info_); }
  // The info's views point into the handle: a moved-from decision keeps
  // none of them (it reads as empty, never as freed memory).
  Decision(Decision&& o) noexcept : h_(std::move(o.h_)), info_(std::exchange(o.info_, {})) {}
  Decision& operator=(Decision&& o) noexcept {
    h_ = std::move(o.h_);
    info_ = std::exchange(o.info_, {});
    return *this;
  }
  Target primary() const {
    return {std::string(view(info_.primary.name)), std::string(view(info_.primary.address))};
  }
  std::optional<Target> prefill() const {
    if (!info_.has_prefill) return std::nullopt;
    return Target{std::string(view(info_.prefill.name)), std::string(view(info_.prefill.address))};
  }
  std::vector<Target> targets() const {
    std::vector<Target> out;
    for (size_t i = 0; i < info_.n_targets; i++) {
      llmd_target t = llmd_decision_target(h_.get(), i);
      out.push_back({std::string(view(t.name)), std::string(view(t.address))});
    }
    return out;
  }
  // Encoder endpoints (E/P/D: where the request's multimodal items are
  // encoded), in order.
  std::vector<Target> encode_targets() const {
    std::vector<Target> out;
    size_t n = llmd_decision_encode_target_count(h_.get());
    for (size_t i = 0; i < n; i++) {
      llmd_target t = llmd_decision_encode_target(h_.get(), i);
      out.push_back({std::string(view(t.name)), std::string(view(t.address))});
    }
    return out;
  }
  std::vector<std::pair<std::string, std::string>> headers() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (size_t i = 0; i < info_.n_headers; i++) {
      llmd_kv kv = llmd_decision_header(h_.get(), i);
      out.emplace_back(std::string(view(kv.key)), std::string(view(kv.value)));
    }
    return out;
  }
  // Header names the proxy removes from the request it forwards.
  std::vector<std::string> remove_headers() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < info_.n_remove_headers; i++) {
      out.emplace_back(view(llmd_decision_remove_header(h_.get(), i)));
    }
    return out;
  }
  // Headers the proxy sets on the response to the client (e.g. the
  // session-affinity token naming the endpoint that served).
  std::vector<std::pair<std::string, std::string>> response_headers() const {
    std::vector<std::pair<std::string, std::string>> out;
    size_t n = llmd_decision_response_header_count(h_.get());
    for (size_t i = 0; i < n; i++) {
      llmd_kv kv = llmd_decision_response_header(h_.get(), i);
      out.emplace_back(std::string(view(kv.key)), std::string(view(kv.value)));
    }
    return out;
  }
  // Every candidate, filter drop and scorer's raw and weighted score, as JSON.
  std::string explanation_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_decision_explanation_json(h_.get(), out, e);
    });
  }
  // The whole decision (targets, headers, explanation) as JSON.
  std::string json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) { return llmd_decision_json(h_.get(), out, e); });
  }
  const llmd_decision* get() const noexcept { return h_.get(); }

 private:
  detail::Handle<llmd_decision, llmd_decision_free> h_;
  llmd_decision_info info_{};
};

// A tokenizer and chat templates from a local model directory (see
// llmd_tokenizer_from_dir). Immutable, thread-safe. Chat calls take the
// messages, tools and template keyword arguments as JSON text; an empty
// `tools_json` or `kwargs_json` means none.
class Tokenizer {
 public:
  static Tokenizer from_dir(std::string_view dir) {
    llmd_tokenizer* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_tokenizer_from_dir(dir.data(), dir.size(), &raw, e); });
    return Tokenizer(raw);
  }
  // As the engine was started: its `--chat-template` (a file or the template
  // itself; empty: the directory's) and `--default-chat-template-kwargs`
  // (a JSON object; empty: none).
  static Tokenizer from_dir_engine(std::string_view dir, std::string_view chat_template,
                                   std::string_view default_kwargs_json = {}) {
    llmd_tokenizer* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_tokenizer_from_dir_engine(dir.data(), dir.size(), detail::opt_json(chat_template),
                                            chat_template.size(), detail::opt_json(default_kwargs_json),
                                            default_kwargs_json.size(), &raw, e);
    });
    return Tokenizer(raw);
  }
  // A `/v1/completions` prompt's ids (special tokens added by default).
  std::vector<uint32_t> encode(std::string_view text, bool add_special_tokens = true) const {
    llmd_tokens* ids = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_tokenizer_encode(h_.get(), text.data(), text.size(), add_special_tokens, &ids, e);
    });
    return detail::take_tokens(ids);
  }
  // The ids vLLM feeds the engine for a chat.
  std::vector<uint32_t> encode_chat(std::string_view messages_json, bool add_generation_prompt = true,
                                    std::string_view tools_json = {},
                                    std::string_view kwargs_json = {}) const {
    llmd_tokens* ids = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_tokenizer_encode_chat(h_.get(), messages_json.data(), messages_json.size(),
                                        add_generation_prompt, detail::opt_json(tools_json),
                                        tools_json.size(), detail::opt_json(kwargs_json),
                                        kwargs_json.size(), &ids, e);
    });
    return detail::take_tokens(ids);
  }
  // The prompt text those ids come from.
  std::string render_chat(std::string_view messages_json, bool add_generation_prompt = true,
                          std::string_view tools_json = {}, std::string_view kwargs_json = {}) const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_tokenizer_render_chat(h_.get(), messages_json.data(), messages_json.size(),
                                        add_generation_prompt, detail::opt_json(tools_json),
                                        tools_json.size(), detail::opt_json(kwargs_json),
                                        kwargs_json.size(), out, e);
    });
  }
  // The ids of a whole OpenAI body (`/v1/completions` or
  // `/v1/chat/completions`), every field that reaches the engine applied.
  std::vector<uint32_t> encode_openai(std::string_view path, std::string_view body) const {
    llmd_tokens* ids = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_tokenizer_encode_openai(h_.get(), path.data(), path.size(),
                                          reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                                          &ids, e);
    });
    return detail::take_tokens(ids);
  }
  const llmd_tokenizer* get() const noexcept { return h_.get(); }

 private:
  explicit Tokenizer(llmd_tokenizer* raw) : h_(raw) {}
  detail::Handle<llmd_tokenizer, llmd_tokenizer_free> h_;
};

// One conversation's chat tokenization, reusing the ids of earlier turns
// (see llmd_chat_session_new); holds its own reference to the tokenizer.
class ChatSession {
 public:
  explicit ChatSession(const Tokenizer& t) {
    llmd_chat_session* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_chat_session_new(t.get(), &raw, e); });
    h_.reset(raw);
  }
  // Equal to Tokenizer::encode_chat's ids for the same arguments.
  std::vector<uint32_t> encode_chat(std::string_view messages_json, bool add_generation_prompt = true,
                                    std::string_view tools_json = {},
                                    std::string_view kwargs_json = {}) const {
    llmd_tokens* ids = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_chat_session_encode_chat(h_.get(), messages_json.data(), messages_json.size(),
                                           add_generation_prompt, detail::opt_json(tools_json),
                                           tools_json.size(), detail::opt_json(kwargs_json),
                                           kwargs_json.size(), &ids, e);
    });
    return detail::take_tokens(ids);
  }
  // Forgets the earlier turns.
  void reset() const noexcept { llmd_chat_session_reset(h_.get()); }
  // Ids the last call took from earlier turns instead of tokenizing.
  size_t reused_tokens() const noexcept { return llmd_chat_session_reused_tokens(h_.get()); }

 private:
  detail::Handle<llmd_chat_session, llmd_chat_session_free> h_;
};

// The scheduler. All methods are const and thread-safe.
class Scheduler {
 public:
  // From an llm-d EndpointPickerConfig (YAML or JSON); empty: llm-d's default.
  explicit Scheduler(std::string_view config = {}, std::optional<uint64_t> seed = std::nullopt) {
    llmd_scheduler* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_new(config.data(), config.size(), seed ? &*seed : nullptr, &raw, e);
    });
    h_.reset(raw);
  }
  static Scheduler from_file(const std::string& path, std::optional<uint64_t> seed = std::nullopt) {
    llmd_scheduler* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_from_file(path.data(), path.size(), seed ? &*seed : nullptr, &raw, e);
    });
    return Scheduler(raw);
  }
  // As the constructor, refusing configured settings the library accepts
  // but does not execute (see llmd_scheduler_new_strict).
  static Scheduler strict(std::string_view config, std::optional<uint64_t> seed = std::nullopt) {
    llmd_scheduler* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_new_strict(config.data(), config.size(), seed ? &*seed : nullptr, &raw, e);
    });
    return Scheduler(raw);
  }
  // With every setting of llmd_scheduler_options (seed, strict,
  // max_open_requests; zero fields are the defaults).
  static Scheduler with_options(std::string_view config, const llmd_scheduler_options& o) {
    llmd_scheduler* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_new_with_options(config.data(), config.size(), &o, &raw, e);
    });
    return Scheduler(raw);
  }
  static Scheduler from_file_with_options(const std::string& path, const llmd_scheduler_options& o) {
    llmd_scheduler* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_from_file_with_options(path.data(), path.size(), &o, &raw, e);
    });
    return Scheduler(raw);
  }
  // Registers an endpoint; a name already registered throws (see replace_endpoint).
  void add_endpoint(const EndpointSpec& ep) const { put_endpoint(ep, false); }
  // Replaces the registered endpoint of the same name (its scraped metrics are
  // kept; its load, cache and index state start over).
  void replace_endpoint(const EndpointSpec& ep) const { put_endpoint(ep, true); }
  void remove_endpoint(std::string_view name) const {
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_remove_endpoint(h_.get(), name.data(), name.size(), e);
    });
  }
  void update_metrics(std::string_view name, const llmd_endpoint_metrics& m) const {
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_update_metrics(h_.get(), name.data(), name.size(), &m, e);
    });
  }
  // A vLLM /metrics scrape.
  void update_metrics_text(std::string_view name, std::string_view text) const {
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_update_metrics_text(h_.get(), name.data(), name.size(), text.data(),
                                                text.size(), e);
    });
  }
  // `seq`: the ZMQ sequence number of the message, when known (duplicates are
  // ignored, a publisher restart drops the endpoint's entries first).
  llmd_apply_stats ingest_kv_events(std::string_view endpoint, const uint8_t* payload,
                                    size_t len, std::optional<uint64_t> seq = std::nullopt) const {
    llmd_apply_stats st{};
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_ingest_kv_events(h_.get(), endpoint.data(), endpoint.size(), payload,
                                             len, seq ? &*seq : nullptr, &st, e);
    });
    return st;
  }
  // Registers an endpoint given as JSON (`{"name", "address", "labels",
  // "model", "lora_adapters", "metrics"}`).
  void add_endpoint_json(std::string_view json) const {
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_add_endpoint_json(h_.get(), json.data(), json.size(), e);
    });
  }
  // The registered endpoints' names, as a JSON list.
  std::string endpoints_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_scheduler_endpoints_json(h_.get(), out, e);
    });
  }
  // An already decoded batch (EventBatch::decode), as ingest_kv_events.
  llmd_apply_stats ingest_kv_batch(std::string_view endpoint, const EventBatch& b) const {
    llmd_apply_stats st{};
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_ingest_kv_batch(h_.get(), endpoint.data(), endpoint.size(), b.get(), &st, e);
    });
    return st;
  }
  // Tokenizes `model`'s OpenAI bodies in pick_openai with `t` (the
  // scheduler keeps its own reference).
  void set_tokenizer(std::string_view model, const Tokenizer& t) const {
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_set_tokenizer(h_.get(), model.data(), model.size(), t.get(), e);
    });
  }
  // Picks for an OpenAI body as the gateway received it (`path`:
  // `/v1/completions` or `/v1/chat/completions`) with its request headers.
  Decision pick_openai(std::string_view id, std::string_view path, std::string_view body,
                       const std::vector<std::pair<std::string, std::string>>& headers = {}) const {
    std::vector<llmd_kv> kvs;
    for (const auto& [k, v] : headers) kvs.push_back({detail::str(k), detail::str(v)});
    llmd_decision* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_pick_openai(h_.get(), id.data(), id.size(), path.data(), path.size(),
                                        reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                                        kvs.data(), kvs.size(), &raw, e);
    });
    return Decision(raw);
  }
  // Picks for a request given as JSON (see llmd_scheduler_pick_json).
  Decision pick_json(std::string_view json) const {
    llmd_decision* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_pick_json(h_.get(), json.data(), json.size(), &raw, e);
    });
    return Decision(raw);
  }
  Decision pick(const Request& r) const {
    detail::RequestDesc d(r);
    llmd_decision* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_scheduler_pick(h_.get(), &d.desc, &raw, e); });
    return Decision(raw);
  }
  // One request's outcome in pick_batch: a decision, or the error pick would
  // have thrown for it.
  struct BatchResult {
    std::optional<Decision> decision;
    std::optional<Error> error;
  };
  // Picks a window of requests together, for a burst-prefix-cache-producer:
  // requests sharing a prompt go to the same replica, as llm-d assigns a
  // window. Throws only for bad arguments; each request's own failure is in
  // its result. burst_window_ms() says how long to collect a window.
  std::vector<BatchResult> pick_batch(const std::vector<Request>& reqs) const {
    std::vector<detail::RequestDesc> owned;
    owned.reserve(reqs.size());
    std::vector<llmd_request_desc> descs;
    descs.reserve(reqs.size());
    for (const auto& r : reqs) {
      owned.emplace_back(r);
      descs.push_back(owned.back().desc);
    }
    std::vector<llmd_decision*> out(reqs.size(), nullptr);
    std::vector<llmd_error*> errs(reqs.size(), nullptr);
    // Everything that allocates comes before the call or after every
    // returned handle has an owner, so a std::bad_alloc leaks nothing and
    // leaves no request open without its decision.
    std::vector<BatchResult> results(reqs.size());
    std::vector<detail::Handle<llmd_error, llmd_error_free>> owned_errs(reqs.size());
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_pick_batch(h_.get(), descs.data(), descs.size(), out.data(),
                                       errs.data(), e);
    });
    for (size_t i = 0; i < reqs.size(); i++) {
      if (out[i] != nullptr) {
        results[i].decision.emplace(out[i]);
      } else {
        owned_errs[i].reset(errs[i]);
      }
    }
    for (size_t i = 0; i < reqs.size(); i++) {
      if (owned_errs[i]) {
        llmd_error* err = owned_errs[i].release();
        results[i].error.emplace(detail::take_error(llmd_error_status(err), err));
      }
    }
    return results;
  }
  // Milliseconds to collect requests for pick_batch; 0 without a burst producer.
  uint64_t burst_window_ms() const { return llmd_scheduler_burst_window_ms(h_.get()); }
  // Lifecycle feedback; each returns whether the request id was known.
  bool on_first_token(std::string_view id) const {
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_first_token(h_.get(), id.data(), id.size(), &found, e);
    });
    return found;
  }
  // P/D: the remote prefill finished (see llmd_scheduler_on_prefill_done).
  bool on_prefill_done(std::string_view id) const {
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_prefill_done(h_.get(), id.data(), id.size(), &found, e);
    });
    return found;
  }
  // The request is served by `endpoint` instead of its first target (the host
  // fell back; see llmd_scheduler_on_served_by). Throws for an unknown endpoint.
  bool on_served_by(std::string_view id, std::string_view endpoint) const {
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_served_by(h_.get(), id.data(), id.size(), endpoint.data(),
                                         endpoint.size(), &found, e);
    });
    return found;
  }
  bool on_tokens(std::string_view id, uint64_t n) const {
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_tokens(h_.get(), id.data(), id.size(), n, &found, e);
    });
    return found;
  }
  std::optional<llmd_request_summary> on_complete(std::string_view id,
                                                  std::optional<uint32_t> cached = {}) const {
    llmd_request_summary sum{};
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_complete(h_.get(), id.data(), id.size(),
                                        cached ? int64_t(*cached) : -1, &sum, &found, e);
    });
    return found ? std::optional<llmd_request_summary>(sum) : std::nullopt;
  }
  // Completion with the engine's usage (counts of -1: not reported).
  std::optional<llmd_request_summary> on_complete(std::string_view id, const llmd_usage& usage) const {
    llmd_request_summary sum{};
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_complete_usage(h_.get(), id.data(), id.size(), &usage, &sum, &found, e);
    });
    return found ? std::optional<llmd_request_summary>(sum) : std::nullopt;
  }
  std::optional<llmd_request_summary> on_error(std::string_view id,
                                               llmd_request_error kind) const {
    llmd_request_summary sum{};
    bool found = false;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_on_error(h_.get(), id.data(), id.size(), kind, &sum, &found, e);
    });
    return found ? std::optional<llmd_request_summary>(sum) : std::nullopt;
  }
  void tick() const {
    detail::call([&](llmd_error** e) { return llmd_scheduler_tick(h_.get(), e); });
  }
  // Releases requests picked more than `max_age_ms` ago that never
  // finished (counted as `expired`); returns how many.
  size_t expire_requests(uint64_t max_age_ms) const {
    size_t released = 0;
    detail::call([&](llmd_error** e) {
      return llmd_scheduler_expire_requests(h_.get(), max_age_ms, &released, e);
    });
    return released;
  }
  size_t endpoint_count() const noexcept { return llmd_scheduler_endpoint_count(h_.get()); }
  // Requests picked and not yet completed.
  size_t open_requests() const noexcept { return llmd_scheduler_open_requests(h_.get()); }
  // The most requests held open between pick and completion.
  size_t open_requests_limit() const noexcept { return llmd_scheduler_open_requests_limit(h_.get()); }
  // Prometheus text of the token-level metrics, for the host's /metrics.
  std::string render_metrics() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_scheduler_render_metrics(h_.get(), out, e);
    });
  }
  // What loading the config did, as JSON (llmd_scheduler_config_report_json).
  std::string config_report_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_scheduler_config_report_json(h_.get(), out, e);
    });
  }
  const llmd_scheduler* get() const noexcept { return h_.get(); }

 private:
  explicit Scheduler(llmd_scheduler* raw) : h_(raw) {}
  void put_endpoint(const EndpointSpec& ep, bool replace) const {
    std::vector<llmd_kv> labels;
    for (const auto& [k, v] : ep.labels) labels.push_back({detail::str(k), detail::str(v)});
    std::vector<llmd_str> loras;
    for (const auto& l : ep.lora_adapters) loras.push_back(detail::str(l));
    llmd_endpoint_desc d{detail::str(ep.name), detail::str(ep.address), detail::opt_str(ep.model),
                         labels.data(), labels.size(), loras.data(), loras.size()};
    detail::call([&](llmd_error** e) {
      return replace ? llmd_scheduler_replace_endpoint(h_.get(), &d, e)
                     : llmd_scheduler_add_endpoint(h_.get(), &d, e);
    });
  }
  detail::Handle<llmd_scheduler, llmd_scheduler_free> h_;
};

// A pod for Feed to follow (see llmd_pod_desc).
struct Pod {
  // Endpoint name; registered in the scheduler unless it is.
  std::string name;
  // `host:port` of the pod's OpenAI server.
  std::string address;
  // KV-event endpoint (`tcp://host:port`); none: none, or
  // `tcp://<host>:<socketPort>` when the config discovers pods.
  std::optional<std::string> events = std::nullopt;
  // Replay endpoint; none: gaps are not replayed.
  std::optional<std::string> replay = std::nullopt;
  // `/metrics` URL; none: `http://<address>/metrics`.
  std::optional<std::string> metrics_url = std::nullopt;
  // Do not scrape `/metrics`.
  bool no_scrape = false;
  // Data-parallel ranks publishing on consecutive ports (0 means 1).
  uint16_t data_parallel_size = 0;
};

namespace detail {
// A pod's C descriptor, borrowing from the Pod.
inline llmd_pod_desc pod_desc(const Pod& p) noexcept {
  llmd_pod_desc d{};
  d.name = str(p.name);
  d.address = str(p.address);
  d.events = opt_str(p.events);
  d.replay = opt_str(p.replay);
  d.metrics_url = opt_str(p.metrics_url);
  d.no_scrape = p.no_scrape ? 1 : 0;
  d.data_parallel_size = p.data_parallel_size;
  return d;
}
}  // namespace detail

// The live data plane of a scheduler: KV events over ZMQ, /metrics scrapes,
// pod discovery (see llmd_feed_new). Nothing runs until start(); the
// destructor stops every thread. All methods are const and thread-safe.
class Feed {
 public:
  // `options_json`: the host's settings over the configuration's (see
  // llmd_feed_new_with_options); empty: the configuration's.
  explicit Feed(const Scheduler& s, std::string_view options_json = {}) {
    llmd_feed* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return options_json.empty()
                 ? llmd_feed_new(s.get(), &raw, e)
                 : llmd_feed_new_with_options(s.get(), options_json.data(), options_json.size(), &raw, e);
    });
    h_.reset(raw);
  }
  void add_pod(const Pod& p) const {
    llmd_pod_desc d = detail::pod_desc(p);
    detail::call([&](llmd_error** e) { return llmd_feed_add_pod(h_.get(), &d, e); });
  }
  // Makes the followed pods exactly `pods` (new added, missing removed,
  // changed replaced); pods from DNS or file discovery are left alone.
  void sync_pods(const std::vector<Pod>& pods) const {
    std::vector<llmd_pod_desc> descs;
    descs.reserve(pods.size());
    for (const auto& p : pods) descs.push_back(detail::pod_desc(p));
    detail::call([&](llmd_error** e) {
      return llmd_feed_sync_pods(h_.get(), descs.data(), descs.size(), e);
    });
  }
  // Stops following a pod and removes it from the scheduler; throws
  // (status LLMD_STATUS_UNKNOWN_ENDPOINT) for a pod not followed.
  void remove_pod(std::string_view name) const {
    detail::call([&](llmd_error** e) { return llmd_feed_remove_pod(h_.get(), name.data(), name.size(), e); });
  }
  // Follows every address `host` resolves to, as pods at `<ip>:<port>`,
  // resolving again every `interval_ms` (at least 1).
  void discover_dns(std::string_view host, uint16_t port, uint64_t interval_ms) const {
    detail::call([&](llmd_error** e) {
      return llmd_feed_discover_dns(h_.get(), host.data(), host.size(), port, interval_ms, e);
    });
  }
  // Follows the pods of llm-d's endpoint file, re-read on change when `watch`.
  void watch_file(std::string_view path, bool watch = true) const {
    detail::call([&](llmd_error** e) {
      return llmd_feed_watch_file(h_.get(), path.data(), path.size(), watch, e);
    });
  }
  // Binds a socket for pods that dial in (`tcp://*:5557`; port 0 picks
  // one); returns the bound endpoint.
  std::string bind_events(std::string_view endpoint) const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_feed_bind_events(h_.get(), endpoint.data(), endpoint.size(), out, e);
    });
  }
  // Starts the threads (a stopped feed cannot start again).
  void start() const {
    detail::call([&](llmd_error** e) { return llmd_feed_start(h_.get(), e); });
  }
  // Stops every thread and closes every socket; waits for them.
  void stop() const noexcept { llmd_feed_stop(h_.get()); }
  bool running() const noexcept { return llmd_feed_running(h_.get()); }
  // Messages on a bound socket from publishers no followed pod names.
  uint64_t unknown_publisher_messages() const noexcept {
    return llmd_feed_unknown_publisher_messages(h_.get());
  }
  // The endpoints bound for pods that dial in, as a JSON list of strings,
  // as this host dials them (see llmd_feed_bound_endpoints_json).
  std::string bound_endpoints_json() const {
    return detail::text(
        [&](llmd_string** out, llmd_error** e) { return llmd_feed_bound_endpoints_json(h_.get(), out, e); });
  }
  // The followed pods' names, as a JSON list.
  std::string pods_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) { return llmd_feed_pods_json(h_.get(), out, e); });
  }
  // Per-pod counters, as JSON (see llmd_feed_stats_json).
  std::string stats_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) { return llmd_feed_stats_json(h_.get(), out, e); });
  }
  // The configuration settings the feed executes or not, as JSON.
  std::string settings_json() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_feed_settings_json(h_.get(), out, e);
    });
  }
  // The feed's metrics, as Prometheus text.
  std::string render_metrics() const {
    return detail::text([&](llmd_string** out, llmd_error** e) {
      return llmd_feed_render_metrics(h_.get(), out, e);
    });
  }
  const llmd_feed* get() const noexcept { return h_.get(); }

 private:
  detail::Handle<llmd_feed, llmd_feed_free> h_;
};

// Sends decisions' spans to an OTLP/HTTP collector from a thread of its own
// (see llmd_otlp_exporter_new). Thread-safe; the destructor sends what is
// queued and stops the thread.
class OtlpExporter {
 public:
  // `options`: queue, batch, flush interval and POST timeout; null: defaults.
  explicit OtlpExporter(std::string_view endpoint, std::string_view service_name = {},
                        double sampling_ratio = 1.0, const llmd_otlp_options* options = nullptr) {
    llmd_otlp_exporter* raw = nullptr;
    detail::call([&](llmd_error** e) {
      return llmd_otlp_exporter_new_with_options(endpoint.data(), endpoint.size(),
                                                 detail::opt_json(service_name), service_name.size(),
                                                 sampling_ratio, options, &raw, e);
    });
    h_.reset(raw);
  }
  // Queues the decision's spans, timed from `start_unix_ns` to
  // `end_unix_ns`; false when not queued (no sampled trace context, outside
  // the sampling ratio, or beyond the queue: counted in stats()).
  bool export_decision(const Decision& d, uint64_t start_unix_ns, uint64_t end_unix_ns) const noexcept {
    return llmd_otlp_export_decision(h_.get(), d.get(), start_unix_ns, end_unix_ns);
  }
  // Waits until the queue is sent, at most `timeout_ms`; whether it drained.
  bool flush(uint32_t timeout_ms) const noexcept { return llmd_otlp_flush(h_.get(), timeout_ms); }
  llmd_otlp_stats stats() const noexcept { return llmd_otlp_stats_get(h_.get()); }

 private:
  detail::Handle<llmd_otlp_exporter, llmd_otlp_exporter_free> h_;
};

// The KV-block index on its own. All methods are const and thread-safe.
class Index {
 public:
  explicit Index(const llmd_index_config* cfg = nullptr) {
    llmd_index* raw = nullptr;
    detail::call([&](llmd_error** e) { return llmd_index_new(cfg, &raw, e); });
    h_.reset(raw);
  }
  uint16_t register_endpoint(std::string_view name) const {
    uint16_t id = 0;
    detail::call([&](llmd_error** e) {
      return llmd_index_register_endpoint(h_.get(), name.data(), name.size(), &id, e);
    });
    return id;
  }
  void remove_endpoint(uint16_t id) const {
    detail::call([&](llmd_error** e) { return llmd_index_remove_endpoint(h_.get(), id, e); });
  }
  // Drops every block endpoint `id` holds (its engine restarted), as an
  // AllBlocksCleared event would; the slot stays registered.
  void clear_endpoint(uint16_t id) const {
    detail::call([&](llmd_error** e) { return llmd_index_clear_endpoint(h_.get(), id, e); });
  }
  // Expires the speculative entries whose lifetime ended by `now_ns` (the
  // clock record_routing is given); call it every few hundred milliseconds.
  void tick(uint64_t now_ns) const {
    detail::call([&](llmd_error** e) { return llmd_index_tick(h_.get(), now_ns, e); });
  }
  llmd_index_apply_report apply(uint16_t id, std::string_view model, const EventBatch& b) const {
    llmd_index_apply_report r{};
    detail::call([&](llmd_error** e) {
      return llmd_index_apply_batch(h_.get(), id, model.data(), model.size(), b.get(), &r, e);
    });
    return r;
  }
  std::vector<uint64_t> prompt_keys(std::string_view model, const std::vector<uint32_t>& tokens,
                                    const HashExtras* extras = nullptr) const {
    // A moved-from HashExtras would hash as a text-only request: refused.
    if (extras && !extras->get())
      throw Error(LLMD_STATUS_NULL_ARGUMENT, "null_argument", "a moved-from HashExtras");
    std::vector<uint64_t> keys(tokens.size());
    size_t n = 0;
    detail::call([&](llmd_error** e) {
      return llmd_index_prompt_keys(h_.get(), model.data(), model.size(), tokens.data(),
                                    tokens.size(), extras ? extras->get() : nullptr, keys.data(),
                                    keys.size(), &n, e);
    });
    keys.resize(n);
    return keys;
  }
  std::vector<llmd_endpoint_match> match_prefix(std::string_view model,
                                                const std::vector<uint64_t>& keys) const {
    // Sized by the registered endpoints, doubled while endpoints registered
    // or being removed meanwhile make it too small.
    std::vector<llmd_endpoint_match> out(stats().endpoints + 8);
    for (;;) {
      size_t n = 0;
      llmd_error* err = nullptr;
      llmd_status st = llmd_index_match_prefix(h_.get(), model.data(), model.size(), keys.data(),
                                               keys.size(), out.data(), out.size(), &n, &err);
      if (st == LLMD_STATUS_BUFFER_TOO_SMALL && out.size() < (size_t{1} << 17)) {
        llmd_error_free(err);
        out.resize(out.size() * 2);
        continue;
      }
      detail::check(st, err);
      out.resize(n);
      return out;
    }
  }
  void record_routing(uint16_t id, std::string_view model, const std::vector<uint64_t>& keys,
                      uint64_t now_ns) const {
    detail::call([&](llmd_error** e) {
      return llmd_index_record_routing(h_.get(), id, model.data(), model.size(), keys.data(),
                                       keys.size(), now_ns, e);
    });
  }
  llmd_index_stats stats() const {
    llmd_index_stats st{};
    detail::call([&](llmd_error** e) { return llmd_index_get_stats(h_.get(), &st, e); });
    return st;
  }

 private:
  detail::Handle<llmd_index, llmd_index_free> h_;
};

}  // namespace llmd

#endif  // LLMD_HPP
