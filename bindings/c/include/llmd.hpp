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

// Throws llmd::Error for a non-OK status, taking ownership of `err`.
inline void check(llmd_status status, llmd_error* err) {
  if (status == LLMD_STATUS_OK) return;
  std::string code = llmd_error_code(err);
  std::string message = err ? llmd_error_message(err) : llmd_status_name(status);
  llmd_error_free(err);
  throw Error(status, std::move(code), message);
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

}  // namespace llmd

#endif  // LLMD_HPP
