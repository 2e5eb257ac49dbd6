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

}  // namespace llmd

#endif  // LLMD_HPP
